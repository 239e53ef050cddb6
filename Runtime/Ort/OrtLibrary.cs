using System.Runtime.InteropServices;

namespace Recur.Runtime.Ort;

/// <summary>
/// Finds, loads and binds the ONNX Runtime shared library, once per process.
/// Anything that needs the library calls <see cref="Initialize"/> with no path if nobody did first,
/// so an explicit path (a --ort-library option) must be passed before the first session or tensor.
/// </summary>
public static unsafe class OrtLibrary
{
    public const string EnvironmentVariable = "RECUR_ORT_LIBRARY";

    internal const string FixHint = "run `make native`, or pass --ort-library PATH, or set " + EnvironmentVariable;

    /// <summary>File names probed next to the binaries, in order (Linux, Linux unversioned, macOS, Windows).</summary>
    internal static readonly string[] DefaultFileNames =
        ["libonnxruntime.so.1", "libonnxruntime.so", "libonnxruntime.dylib", "onnxruntime.dll"];

    private static readonly Lock s_gate = new();
    private static volatile LoadedLibrary? s_loaded;
    private static volatile OrtEnvHandle? s_env;

    /// <summary>
    /// Loads the library from <paramref name="explicitPath"/>, else from $RECUR_ORT_LIBRARY, else from the
    /// application directory. Calling again is a no-op, unless it names a different library than the loaded one.
    /// </summary>
    /// <exception cref="OrtLibraryException">The library is missing, cannot be loaded, or is too old.</exception>
    /// <exception cref="InvalidOperationException">A different library is already loaded.</exception>
    public static void Initialize(string? explicitPath = null)
    {
        lock (s_gate)
        {
            if (s_loaded is { } loaded)
            {
                if (explicitPath is not null && !SamePath(Path.GetFullPath(explicitPath), loaded.Path))
                {
                    throw new InvalidOperationException(
                        $"ONNX Runtime is already loaded from {loaded.Path}; it cannot be switched to {explicitPath} in the same process");
                }
                return;
            }

            var resolution = Resolve(
                explicitPath, Environment.GetEnvironmentVariable(EnvironmentVariable), AppContext.BaseDirectory, File.Exists);
            s_loaded = Load(resolution.Found ?? throw new OrtLibraryException(resolution.NotFoundMessage));
        }
    }

    public static bool IsInitialized => s_loaded is not null;

    /// <summary>Full path of the loaded library.</summary>
    public static string LibraryPath => Loaded.Path;

    /// <summary>ONNX Runtime's version string, e.g. "1.30.0".</summary>
    public static string Version => Loaded.Version;

    /// <summary>
    /// Execution providers compiled into the library (e.g. CUDAExecutionProvider, CPUExecutionProvider);
    /// one being listed does not mean its drivers or hardware are present.
    /// </summary>
    public static IReadOnlyList<string> AvailableProviders => Loaded.Providers;

    /// <summary>The bound function table; loads the library with the default resolution on first use.</summary>
    internal static OrtApi Api => Loaded.Api;

    internal static nint NativeHandle => Loaded.Handle;

    /// <summary>ORT's default CPU allocator; owned by ORT for the life of the process.</summary>
    internal static nint DefaultAllocator => Loaded.DefaultAllocator;

    /// <summary>Describes plain CPU memory, for tensors over managed arrays.</summary>
    internal static OrtMemoryInfoHandle CpuMemoryInfo => Loaded.CpuMemoryInfo;

    /// <summary>
    /// The process-wide OrtEnv, created on first use with logging at Fatal: ORT's default logger would
    /// otherwise print warnings and errors to stderr, and every error already reaches the caller as an
    /// OrtException with ORT's message. It is never released: ORT needs the env to outlive every
    /// session, sessions may still be finalised while the process shuts down, and the OS reclaims it at exit.
    /// </summary>
    internal static OrtEnvHandle Env => s_env ?? CreateEnv();

    private static LoadedLibrary Loaded
    {
        get
        {
            if (s_loaded is { } loaded)
            {
                return loaded;
            }
            Initialize();
            return s_loaded!;
        }
    }

    /// <summary>
    /// Picks the library file without touching it: the first source given (explicit path, then the environment
    /// variable) is the only candidate, so a wrong path fails instead of silently loading another library;
    /// with neither, the default file names are probed in <paramref name="baseDirectory"/>.
    /// </summary>
    internal static LibraryResolution Resolve(
        string? explicitPath, string? environmentValue, string baseDirectory, Func<string, bool> fileExists)
    {
        LibraryCandidate[] candidates;
        if (!string.IsNullOrWhiteSpace(explicitPath))
        {
            candidates = [new(Path.GetFullPath(explicitPath), "explicit path")];
        }
        else if (!string.IsNullOrWhiteSpace(environmentValue))
        {
            candidates = [new(Path.GetFullPath(environmentValue), EnvironmentVariable)];
        }
        else
        {
            candidates = DefaultFileNames
                .Select(name => new LibraryCandidate(Path.GetFullPath(Path.Combine(baseDirectory, name)), "application directory"))
                .ToArray();
        }
        var found = candidates.FirstOrDefault(c => fileExists(c.Path));
        return new LibraryResolution(candidates, found?.Path);
    }

    private static LoadedLibrary Load(string path)
    {
        nint library;
        try
        {
            library = NativeLibrary.Load(path);
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
        {
            throw new OrtLibraryException(
                $"ONNX Runtime library {path} could not be loaded ({LoaderReason(e.Message)}); {FixHint}", e);
        }

        try
        {
            if (!NativeLibrary.TryGetExport(library, "OrtGetApiBase", out var getApiBase))
            {
                throw new OrtLibraryException($"{path} is not ONNX Runtime: it exports no OrtGetApiBase; {FixHint}");
            }
            var apiBase = ((delegate* unmanaged[Cdecl]<OrtApiBase*>)getApiBase)();
            if (apiBase == null)
            {
                throw new OrtLibraryException($"{path} returned no OrtApiBase; {FixHint}");
            }
            var version = Marshal.PtrToStringUTF8((nint)apiBase->GetVersionString()) ?? "(unknown version)";
            var table = apiBase->GetApi(OrtApi.MinimumVersion);
            if (table == 0)
            {
                throw new OrtLibraryException(
                    $"ONNX Runtime {version} at {path} is too old: Recur needs C API version {OrtApi.MinimumVersion} " +
                    $"(ONNX Runtime 1.{OrtApi.MinimumVersion} or newer); {FixHint}");
            }

            var api = new OrtApi(table);
            nint allocator;
            api.Check(api.GetAllocatorWithDefaultOptions(&allocator));
            nint memoryInfo;
            api.Check(api.CreateCpuMemoryInfo(OrtApi.OrtDeviceAllocator, OrtApi.OrtMemTypeDefault, &memoryInfo));
            return new LoadedLibrary(
                library, api, path, version, ReadProviders(api), allocator, new OrtMemoryInfoHandle(memoryInfo));
        }
        catch
        {
            NativeLibrary.Free(library);
            throw;
        }
    }

    private static string[] ReadProviders(OrtApi api)
    {
        byte** names;
        int count;
        api.Check(api.GetAvailableProviders(&names, &count));
        try
        {
            var providers = new string[count];
            for (int i = 0; i < count; i++)
            {
                providers[i] = Marshal.PtrToStringUTF8((nint)names[i]) ?? string.Empty;
            }
            return providers;
        }
        finally
        {
            api.Check(api.ReleaseAvailableProviders(names, count));
        }
    }

    private static OrtEnvHandle CreateEnv()
    {
        var api = Api;
        lock (s_gate)
        {
            if (s_env is { } existing)
            {
                return existing;
            }
            nint env;
            // UTF-8 literals are stored with a trailing NUL, so this is a valid C string.
            fixed (byte* logId = "recur"u8)
            {
                api.Check(api.CreateEnv(OrtApi.OrtLoggingLevelFatal, logId, &env));
            }
            var handle = new OrtEnvHandle(env);
            s_env = handle;
            return handle;
        }
    }

    private static bool SamePath(string a, string b) =>
        string.Equals(a, b, OperatingSystem.IsLinux() ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The loader's own words: .NET puts generic advice first and the dlerror text ("invalid ELF header",
    /// "libstdc++.so.6: version `GLIBCXX_3.4.29' not found") on the last line.
    /// </summary>
    private static string LoaderReason(string message)
    {
        var lines = message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length == 0 ? "no reason given" : lines[^1];
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct OrtApiBase
    {
        public delegate* unmanaged[Cdecl]<uint, nint> GetApi;
        public delegate* unmanaged[Cdecl]<byte*> GetVersionString;
    }

    private sealed record LoadedLibrary(
        nint Handle,
        OrtApi Api,
        string Path,
        string Version,
        IReadOnlyList<string> Providers,
        nint DefaultAllocator,
        OrtMemoryInfoHandle CpuMemoryInfo);
}

internal sealed record LibraryCandidate(string Path, string Source);

/// <summary>Where the library was looked for, and the first candidate that exists (null if none).</summary>
internal sealed record LibraryResolution(IReadOnlyList<LibraryCandidate> Candidates, string? Found)
{
    /// <summary>One line: what was tried, and how to fix it.</summary>
    internal string NotFoundMessage =>
        $"ONNX Runtime library not found (tried {string.Join(", ", Candidates.Select(c => $"{c.Path} [{c.Source}]"))}); {OrtLibrary.FixHint}";
}
