using Recur.Runtime.Ort;
using static Recur.Tests.Ort.OnnxModels;

namespace Recur.Tests.Ort;

public sealed class IoBindingTests
{
    public IoBindingTests() => OrtTestLibrary.EnsureInitialized();

    [Fact]
    public void BoundInputAndOutput_AreReusedAcrossRuns()
    {
        using var session = Session(Doubler(3));
        var input = new float[] { 1, 2, 3 };
        var output = new float[3];
        using var x = OrtValue.FromArray(input, [3]);
        using var y = OrtValue.FromArray(output, [3]);
        using var binding = new IoBinding(session);
        binding.BindInput("x", x);
        binding.BindOutput("y", y);

        binding.Run();
        Assert.Equal([2f, 4f, 6f], output);

        input[0] = 10; // same pinned memory, no rebinding needed
        binding.Run();
        Assert.Equal([20f, 4f, 6f], output);
    }

    [Fact]
    public void OutputBoundToCpu_IsAllocatedByOrt()
    {
        using var session = Session(Doubler(2));
        using var x = OrtValue.FromArray(new float[] { 0.5f, -1 }, [2]);
        using var binding = new IoBinding(session);
        binding.BindInput("x", x);
        binding.BindOutputToCpu("y");

        binding.Run();
        var outputs = binding.GetOutputValues();

        using var y = Assert.Single(outputs);
        Assert.Equal([1f, -2f], y.AsSpan<float>().ToArray());
    }

    [Fact]
    public void UnknownName_ThrowsOrtException()
    {
        using var session = Session(Doubler(2));
        using var x = OrtValue.FromArray(new float[] { 1, 2 }, [2]);
        using var binding = new IoBinding(session);

        var e = Assert.Throws<OrtException>(() => binding.BindInput("nope", x));
        Assert.Contains("nope", e.Message);
    }
}
