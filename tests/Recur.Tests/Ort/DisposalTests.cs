using Recur.Runtime.Ort;
using static Recur.Tests.Ort.OnnxModels;

namespace Recur.Tests.Ort;

public sealed class DisposalTests
{
    public DisposalTests() => OrtTestLibrary.EnsureInitialized();

    [Fact]
    public void DisposedValue_ThrowsObjectDisposed()
    {
        var value = OrtValue.FromArray(new float[] { 1, 2 }, [2]);
        Assert.Equal(2, value.ElementCount);
        value.Dispose();
        value.Dispose(); // twice is fine

        Assert.Throws<ObjectDisposedException>(() => value.AsSpan<float>());
        Assert.Throws<ObjectDisposedException>(() => value.Shape);
        Assert.Throws<ObjectDisposedException>(() => value.ElementType);
        Assert.Throws<ObjectDisposedException>(() => value.ElementCount);
    }

    [Fact]
    public void DisposedRunOutput_ThrowsObjectDisposed()
    {
        using var session = Session(Doubler(2));
        using var x = OrtValue.FromArray(new float[] { 1, 2 }, [2]);
        var y = session.Run(["x"], [x], ["y"])[0];
        y.Dispose();

        // Never read its layout before disposal: the lazy path must check too.
        Assert.Throws<ObjectDisposedException>(() => y.Shape);
        Assert.Throws<ObjectDisposedException>(() => y.AsSpan<float>());
    }

    [Fact]
    public void DisposedSession_ThrowsObjectDisposed()
    {
        var session = Session(Doubler(2));
        using var x = OrtValue.FromArray(new float[] { 1, 2 }, [2]);
        session.Dispose();
        session.Dispose();

        Assert.Throws<ObjectDisposedException>(() => session.Run(["x"], [x], ["y"]));
        // What was read at load time stays readable.
        Assert.Equal("x", session.Inputs[0].Name);
    }

    [Fact]
    public void DisposedInputOrOutput_PassedToRun_ThrowsObjectDisposed()
    {
        using var session = Session(Doubler(2));
        var x = OrtValue.FromArray(new float[] { 1, 2 }, [2]);
        x.Dispose();
        Assert.Throws<ObjectDisposedException>(() => session.Run(["x"], [x], ["y"]));

        using var live = OrtValue.FromArray(new float[] { 1, 2 }, [2]);
        var output = OrtValue.Allocate(TensorElementType.Float, [2]);
        output.Dispose();
        Assert.Throws<ObjectDisposedException>(() => session.Run(["x"], [live], ["y"], new OrtValue?[] { output }));

        // The session is still usable afterwards.
        using var y = session.Run(["x"], [live], ["y"])[0];
        Assert.Equal([2f, 4f], y.AsSpan<float>().ToArray());
    }

    [Fact]
    public void UndisposedValues_AreReleasedByTheFinalizer()
    {
        // Values over managed arrays unpin and release when collected; nothing crashes or leaks a pin.
        using var session = Session(Doubler(64));
        for (int i = 0; i < 200; i++)
        {
            var x = OrtValue.FromArray(new float[64], [64]);
            _ = session.Run(["x"], [x], ["y"]);
        }
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        using var check = OrtValue.FromArray(Enumerable.Repeat(1.5f, 64).ToArray(), [64]);
        using var y = session.Run(["x"], [check], ["y"])[0];
        Assert.All(y.AsSpan<float>().ToArray(), v => Assert.Equal(3f, v));
    }
}
