using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;

namespace Recur.Runtime.Ort;

/// <summary>
/// Where ONNX Runtime's native library comes from, once per process. By default it is the one Microsoft's
/// package put next to the binaries (CPU, or CUDA in the GPU flavor). <c>--ort-library PATH</c> or
/// $RECUR_ORT_LIBRARY redirect the managed package's native import to another build (ROCm, a custom CUDA
/// build) through a DllImport resolver, which must be in place before anything touches ONNX Runtime.
/// </summary>
public static class OrtLibrary
{
    public const string EnvironmentVariable = "RECUR_ORT_LIBRARY";

    /// <summary>The library name Microsoft.ML.OnnxRuntime's DllImports ask for.</summary>
    private const string ImportName = "onnxruntime";

    private static readonly Lock s_gate = new();
    private static string? s_redirected;
    private static bool s_initialized;

    /// <summary>
    /// Loads ONNX Runtime from <paramref name="explicitPath"/>, else from $RECUR_ORT_LIBRARY, else the packaged
    /// library, and creates the process-wide environment with ORT's own logger quiet (every error already reaches
    /// the caller as an exception). Calling again is a no-op unless it names a different library.
    /// </summary>
    /// <exception cref="OrtLibraryException">The named library is missing or does not load.</exception>
    public static void Initialize(string? explicitPath = null)
    {
        lock (s_gate)
        {
            string? path = explicitPath ?? NullIfEmpty(Environment.GetEnvironmentVariable(EnvironmentVariable));
            string source = explicitPath is not null ? "--ort-library" : "$" + EnvironmentVariable;
            if (s_initialized)
            {
                if (explicitPath is not null && !SamePath(LibraryPath, Path.GetFullPath(explicitPath)))
                    throw new OrtLibraryException($"--ort-library {explicitPath}: ONNX Runtime is already loaded from {LibraryPath}; one process uses one library");
                return;
            }
            if (path is not null) Redirect(Path.GetFullPath(path), source);
            var options = new EnvironmentCreationOptions { logId = "recur", logLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
            try
            {
                OrtEnv.CreateInstanceWithOptions(ref options);
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or BadImageFormatException)
            {
                throw new OrtLibraryException($"{path ?? "the packaged ONNX Runtime library"}: not a usable ONNX Runtime library ({e.Message})");
            }
            s_initialized = true;
        }
    }

    /// <summary>The library in use: the redirected path, or the packaged one found next to the binaries.</summary>
    public static string LibraryPath => s_redirected ?? FindPackaged() ?? "(packaged library, resolved by the system loader)";

    /// <summary>ONNX Runtime's version string, e.g. "1.31.1".</summary>
    public static string Version
    {
        get
        {
            Initialize();
            return OrtEnv.Instance().GetVersionString();
        }
    }

    /// <summary>Providers compiled into the library; listed is not loadable (CUDA is listed without CUDA on the host).</summary>
    public static IReadOnlyList<string> CompiledProviders
    {
        get
        {
            Initialize();
            return OrtEnv.Instance().GetAvailableProviders();
        }
    }

    /// <summary>The folder the provider libraries of the loaded ONNX Runtime live in.</summary>
    internal static string LibraryDirectory => Path.GetDirectoryName(s_redirected ?? FindPackaged() ?? Path.Combine(AppContext.BaseDirectory, "x"))!;

    private static void Redirect(string path, string source)
    {
        if (Directory.Exists(path)) throw new OrtLibraryException($"{source} {path}: is a folder; name the library file (libonnxruntime.so)");
        if (!File.Exists(path)) throw new OrtLibraryException($"{source} {path}: no such file");
        if (!NativeLibrary.TryLoad(path, out var handle))
            throw new OrtLibraryException($"{source} {path}: the system loader cannot load it (not a shared library for this platform, or a dependency is missing)");
        if (!NativeLibrary.TryGetExport(handle, "OrtGetApiBase", out _))
            throw new OrtLibraryException($"{source} {path}: not an ONNX Runtime library (it exports no OrtGetApiBase)");
        // Microsoft's package installs its own resolver on first use unless told not to; ours then answers alone.
        OrtEnv.DisableDllImportResolver = true;
        try
        {
            NativeLibrary.SetDllImportResolver(typeof(OrtEnv).Assembly, (name, _, _) => name == ImportName ? handle : IntPtr.Zero);
        }
        catch (InvalidOperationException)
        {
            throw new OrtLibraryException($"{source} {path}: ONNX Runtime was already loaded in this process; the library must be chosen first");
        }
        s_redirected = path;
    }

    private static string? FindPackaged()
    {
        foreach (var name in (string[])["libonnxruntime.so", "libonnxruntime.dylib", "onnxruntime.dll"])
        {
            var candidate = Path.Combine(AppContext.BaseDirectory, name);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    private static bool SamePath(string? a, string b) => a is not null && string.Equals(a, b, StringComparison.Ordinal);

    private static string? NullIfEmpty(string? s) => string.IsNullOrWhiteSpace(s) ? null : s;
}

/// <summary>The ONNX Runtime library cannot be found or loaded: an input error (exit 2), naming the path.</summary>
public sealed class OrtLibraryException(string message) : Exception(message);
