using Recur.Runtime.Ort;
using static Recur.Tests.Ort.OnnxModels;

namespace Recur.Tests.Ort;

/// <summary>This machine has no GPU and the library has no DirectML: every accelerator must fall back to CPU.</summary>
public sealed class ExecutionProviderTests
{
    public ExecutionProviderTests() => OrtTestLibrary.EnsureInitialized();

    [Theory]
    [InlineData("cuda", "cuda")]
    [InlineData("CUDA", "cuda")]
    [InlineData("dml", "dml")]
    [InlineData("DirectML", "dml")]
    [InlineData("NoSuchProvider", "nosuchprovider")]
    public void UnavailableProvider_FallsBackToCpu_WithOneWarning(string requested, string reported)
    {
        using var session = Session(Doubler(3), new SessionConfig { ExecutionProvider = requested });

        Assert.Equal("cpu", session.ExecutionProvider);
        var warning = Assert.Single(session.Warnings);
        Assert.StartsWith($"execution provider '{reported}' could not be loaded (", warning);
        Assert.EndsWith("); running on CPU", warning);
        Assert.DoesNotContain('\n', warning);
        AssertDoubles(session);
    }

    [Theory]
    [InlineData("cuda")]
    [InlineData("dml")]
    [InlineData("NoSuchProvider")]
    public void UnavailableProvider_WhenRequired_ThrowsNamingIt(string requested)
    {
        var config = new SessionConfig { ExecutionProvider = requested, ProviderRequired = true, DeviceId = 0 };

        var e = Assert.Throws<OrtException>(() => Session(Doubler(3), config));

        Assert.Contains($"execution provider '{requested.ToLowerInvariant()}' could not be added: ", e.Message);
        Assert.NotEqual(OrtErrorCode.ORT_OK, e.Code);
        Assert.IsType<OrtException>(e.InnerException);
    }

    [Fact]
    public void Cuda_WithDeviceId_StillFallsBack()
    {
        using var session = Session(Doubler(3), new SessionConfig { ExecutionProvider = "cuda", DeviceId = 1 });
        Assert.Equal("cpu", session.ExecutionProvider);
        Assert.Single(session.Warnings);
        AssertDoubles(session);
    }

    [Fact]
    public void Cpu_HasNoWarnings()
    {
        using var session = Session(Doubler(3), new SessionConfig { ExecutionProvider = "CPU", ProviderRequired = true });
        Assert.Equal("cpu", session.ExecutionProvider);
        Assert.Empty(session.Warnings);
        AssertDoubles(session);
    }

    [Fact]
    public void EmptyProviderName_Throws()
    {
        Assert.Throws<ArgumentException>(() => Session(Doubler(3), new SessionConfig { ExecutionProvider = " " }));
    }

    private static void AssertDoubles(InferenceSession session)
    {
        using var x = OrtValue.FromArray(new float[] { 1, 2, -3 }, [3]);
        using var y = session.Run(["x"], [x], ["y"])[0];
        Assert.Equal([2f, 4f, -6f], y.AsSpan<float>().ToArray());
    }
}
