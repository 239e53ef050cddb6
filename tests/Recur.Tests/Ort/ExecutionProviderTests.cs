using Google.Protobuf;
using Recur.Tests.Support;
using static Recur.Tests.Ort.OnnxModels;

namespace Recur.Tests.Ort;

/// <summary>
/// These machines have no GPU: every accelerator must fall back to CPU with one warning that says why (this build
/// has no CUDA provider, or which host library is missing), or fail with that reason when required.
/// </summary>
public sealed class ExecutionProviderTests
{
    /// <summary>The GPU flavor (make GPU=cuda) carries the CUDA provider library; the CPU flavor does not.</summary>
    private static bool GpuFlavor => File.Exists(Path.Combine(AppContext.BaseDirectory, "libonnxruntime_providers_cuda.so"));

    [Fact]
    public void The_flavor_library_is_the_one_loaded()
    {
        // A CPU libonnxruntime.so in the CUDA flavor's output (pulled in by onnxruntime-genai) would silently win.
        Assert.Equal(GpuFlavor, OrtLibrary.CompiledProviders.Contains("CUDAExecutionProvider"));
        Assert.Contains("CPUExecutionProvider", OrtLibrary.CompiledProviders);
    }

    [Theory]
    [InlineData("cuda", "cuda")]
    [InlineData("CUDA", "cuda")]
    [InlineData("tensorrt", "tensorrt")]
    public void A_gpu_provider_falls_back_to_cpu_with_one_warning_naming_the_cause(string requested, string reported)
    {
        using var session = SessionFactory.Open(Doubler(3).ToByteArray(), new SessionConfig { ExecutionProvider = requested, DeviceId = 1 });

        Assert.Equal("cpu", session.ExecutionProvider);
        var warning = Assert.Single(session.Warnings);
        Assert.StartsWith($"execution provider '{reported}' could not be loaded (", warning);
        Assert.EndsWith("); running on CPU", warning);
        Assert.DoesNotContain('\n', warning);
        if (GpuFlavor)
        {
            // The GPU build is there; the host's CUDA is not: the warning names the first libraries and what to install.
            Assert.Contains("libcuda.so.1", warning);
            Assert.Contains("install an NVIDIA driver and CUDA 13 and cuDNN 9", warning);
        }
        else Assert.Contains("(CPU build); build recur with `make GPU=cuda`", warning);
        AssertDoubles(session.Session);
    }

    [Theory]
    [InlineData("dml")]
    [InlineData("DirectML")]
    public void DirectML_on_linux_says_it_is_windows_only(string requested)
    {
        using var session = SessionFactory.Open(Doubler(3).ToByteArray(), new SessionConfig { ExecutionProvider = requested });
        var warning = Assert.Single(session.Warnings);
        Assert.Equal("execution provider 'dml' could not be loaded (DirectML is Windows-only (a Windows build with the Microsoft.ML.OnnxRuntime.DirectML package)); running on CPU", warning);
    }

    [Fact]
    public void An_unknown_provider_falls_back_with_ort_own_reason()
    {
        using var session = SessionFactory.Open(Doubler(3).ToByteArray(), new SessionConfig { ExecutionProvider = "NoSuchProvider" });
        var warning = Assert.Single(session.Warnings);
        Assert.StartsWith("execution provider 'nosuchprovider' could not be loaded (", warning);
        AssertDoubles(session.Session);
    }

    [Theory]
    [InlineData("cuda")]
    [InlineData("tensorrt")]
    [InlineData("dml")]
    [InlineData("NoSuchProvider")]
    public void A_required_provider_that_cannot_load_throws_naming_it(string requested)
    {
        var config = new SessionConfig { ExecutionProvider = requested, ProviderRequired = true };
        var e = Assert.Throws<ProviderUnavailableException>(() => SessionFactory.Open(Doubler(3).ToByteArray(), config));
        Assert.Equal(requested.ToLowerInvariant(), e.Provider);
        Assert.StartsWith($"execution provider '{requested.ToLowerInvariant()}' cannot be used: ", e.Message);
    }

    [Fact]
    public void Cpu_has_no_warnings()
    {
        using var session = SessionFactory.Open(Doubler(3).ToByteArray(), new SessionConfig { ExecutionProvider = "CPU", ProviderRequired = true });
        Assert.Equal("cpu", session.ExecutionProvider);
        Assert.Empty(session.Warnings);
        AssertDoubles(session.Session);
    }

    [Fact]
    public void An_empty_provider_name_is_an_argument_error() =>
        Assert.Throws<ArgumentException>(() => SessionFactory.Open(Doubler(3).ToByteArray(), new SessionConfig { ExecutionProvider = " " }));

    private static void AssertDoubles(InferenceSession session)
    {
        using var x = OrtValue.FromArray(new float[] { 1, 2, -3 }, [3]);
        var y = session.Run(["x"], [x], ["y"]);
        using var result = y[0];
        Assert.Equal([2f, 4f, -6f], result.AsSpan<float>().ToArray());
    }
}
