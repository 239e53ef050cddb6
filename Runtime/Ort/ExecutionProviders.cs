using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;

namespace Recur.Runtime.Ort;

/// <summary>
/// Adds the execution provider a <see cref="SessionConfig"/> names to session options, or says precisely why it
/// cannot: not in this build, not on this platform, or a library of the host (CUDA, cuDNN, TensorRT) missing.
/// ORT itself only says "Failed to load shared library", and lists CUDA among its providers even when it cannot
/// load, so the reason is found here by trying the host libraries the provider needs.
/// </summary>
internal static class ExecutionProviders
{
    internal const string Cpu = "cpu";

    /// <summary>What the CUDA provider of Microsoft.ML.OnnxRuntime.Gpu.Linux 1.31 needs from the host (its ELF
    /// NEEDED entries, plus cuDNN, which it opens at run time), with the install hint for each.</summary>
    private static readonly (string Library, string From)[] CudaHostLibraries =
    [
        ("libcuda.so.1", "an NVIDIA driver"),
        ("libcudart.so.13", "CUDA 13"),
        ("libcublas.so.13", "CUDA 13"),
        ("libcublasLt.so.13", "CUDA 13"),
        ("libcurand.so.10", "CUDA 13"),
        ("libcudnn.so.9", "cuDNN 9"),
    ];

    private static readonly (string Library, string From)[] TensorRtHostLibraries =
        [.. CudaHostLibraries, ("libnvinfer.so.10", "TensorRT 10"), ("libnvonnxparser.so.10", "TensorRT 10")];

    /// <summary>Lower-case name used in messages; DirectML is spelled "dml".</summary>
    internal static string Normalize(string provider)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(provider);
        var name = provider.Trim().ToLowerInvariant();
        return name == "directml" ? "dml" : name;
    }

    /// <summary>Appends the provider, or throws <see cref="ProviderUnavailableException"/> saying why not.</summary>
    internal static void Append(SessionOptions options, string provider, int deviceId)
    {
        string name = Normalize(provider);
        switch (name)
        {
            case Cpu:
                return; // ORT always keeps its CPU provider as the last resort.
            case "cuda":
                RequireGpuBuild(name, "libonnxruntime_providers_cuda.so");
                RequireHostLibraries(name, CudaHostLibraries);
                Try(name, () => options.AppendExecutionProvider_CUDA(deviceId));
                return;
            case "tensorrt":
                RequireGpuBuild(name, "libonnxruntime_providers_tensorrt.so");
                RequireHostLibraries(name, TensorRtHostLibraries);
                Try(name, () => options.AppendExecutionProvider_Tensorrt(deviceId));
                return;
            case "dml":
                if (!OperatingSystem.IsWindows())
                    throw new ProviderUnavailableException(name, "DirectML is Windows-only (a Windows build with the Microsoft.ML.OnnxRuntime.DirectML package)");
                Try(name, () => options.AppendExecutionProvider_DML(deviceId));
                return;
            default:
                // ORT's generic call takes its own spelling ("XNNPACK"), passed as the user wrote it.
                Try(name, () => options.AppendExecutionProvider(provider.Trim(), new Dictionary<string, string>()));
                return;
        }
    }

    private static void RequireGpuBuild(string name, string providerLibrary)
    {
        if (OperatingSystem.IsLinux() && !File.Exists(Path.Combine(OrtLibrary.LibraryDirectory, providerLibrary)))
            throw new ProviderUnavailableException(name,
                $"this ONNX Runtime has no {providerLibrary} (CPU build); build recur with `make GPU=cuda`, or pass --ort-library with a GPU build");
    }

    private static void RequireHostLibraries(string name, (string Library, string From)[] needed)
    {
        if (!OperatingSystem.IsLinux()) return;
        var missing = needed.Where(n => !CanLoad(n.Library)).ToList();
        if (missing.Count == 0) return;
        var install = string.Join(" and ", missing.Select(m => m.From).Distinct());
        throw new ProviderUnavailableException(name,
            $"{string.Join(", ", missing.Select(m => m.Library))} not found; install {install} (or add their folder to LD_LIBRARY_PATH)");
    }

    private static bool CanLoad(string library)
    {
        if (!NativeLibrary.TryLoad(library, out var handle)) return false;
        NativeLibrary.Free(handle);
        return true;
    }

    private static void Try(string name, Action append)
    {
        try
        {
            append();
        }
        catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
        {
            throw new ProviderUnavailableException(name, e.Message.ReplaceLineEndings(" ").Trim());
        }
    }
}

/// <summary>An execution provider cannot be used here; <see cref="Reason"/> says why and what to install.</summary>
public sealed class ProviderUnavailableException(string provider, string reason)
    : Exception($"execution provider '{provider}' cannot be used: {reason}")
{
    public string Provider { get; } = provider;
    public string Reason { get; } = reason;
}
