using System.CommandLine;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Recur.Runtime.Ort;

namespace Recur.Cli.Common;

/// <summary>Options every verb that runs a model shares: which ONNX Runtime library, provider and threads.</summary>
public sealed class RuntimeOptions
{
    public Option<string?> OrtLibrary { get; } = new("--ort-library")
    {
        Description = $"Another ONNX Runtime shared library to use (a ROCm or custom CUDA build; default: ${Runtime.Ort.OrtLibrary.EnvironmentVariable}, then the one packaged with recur)",
    };
    public Option<string> Provider { get; } = new("--provider")
    {
        Description = "Execution provider: cpu, cuda, tensorrt (GPU build: make GPU=cuda), dml (Windows builds), or another name ONNX Runtime knows; falls back to CPU with a warning",
        DefaultValueFactory = _ => "cpu",
    };
    public Option<bool> RequireProvider { get; } = new("--require-provider")
    {
        Description = "Fail instead of falling back to CPU when the provider cannot be used",
    };
    public Option<int> DeviceId { get; } = new("--device-id")
    {
        Description = "GPU index for cuda, tensorrt and dml",
        DefaultValueFactory = _ => 0,
    };
    /// <summary>ONNX Runtime makes a thread per count without a bound of its own; far past the cores it only thrashes.</summary>
    public const int MaxThreads = 1024;

    public Option<int> Threads { get; } = new("--threads")
    {
        Description = $"Intra-op threads, 0 to {MaxThreads} (0 = ONNX Runtime's default, one per core)",
        DefaultValueFactory = _ => 0,
    };

    public Option<string[]> SessionEntries { get; } = new("--session-config")
    {
        Description = "An ONNX Runtime session config entry KEY=VALUE (repeatable), e.g. session.intra_op.allow_spinning=0",
        AllowMultipleArgumentsPerToken = false,
    };

    public void AddTo(Command command)
    {
        command.Options.Add(SessionEntries);
        command.Options.Add(OrtLibrary);
        command.Options.Add(Provider);
        command.Options.Add(RequireProvider);
        command.Options.Add(DeviceId);
        command.Options.Add(Threads);
    }

    /// <summary>Loads the library and returns the session settings the user asked for.</summary>
    public SessionConfig Resolve(ParseResult result, CliContext context)
    {
        int threads = result.GetValue(Threads);
        if (threads is < 0 or > MaxThreads) throw new UsageException($"--threads {threads}: expected 0 (ONNX Runtime's default) to {MaxThreads}");
        string? library = result.GetValue(OrtLibrary);
        // The loader would block on a pipe; a missing file is the library loader's to explain.
        if (library is not null && Package.Files.InputFiles.KindOf(library) is not Package.Files.InputFiles.Kind.Missing)
            Package.Files.InputFiles.RequireRegular(library, "--ort-library");
        Runtime.Ort.OrtLibrary.Initialize(library);
        var entries = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in result.GetValue(SessionEntries) ?? [])
        {
            int at = entry.IndexOf('=');
            if (at <= 0) throw new UsageException($"--session-config takes KEY=VALUE, got '{entry}'");
            entries[entry[..at]] = entry[(at + 1)..];
        }
        return new SessionConfig
        {
            ConfigEntries = entries,
            ExecutionProvider = result.GetValue(Provider) ?? "cpu",
            ProviderRequired = result.GetValue(RequireProvider),
            DeviceId = result.GetValue(DeviceId) >= 0 ? result.GetValue(DeviceId) : throw new UsageException($"--device-id must be 0 or more, got {result.GetValue(DeviceId)}"),
            IntraOpThreads = threads,
        };
    }

    public static void ReportWarnings(IEnumerable<string> warnings, CliContext context)
    {
        foreach (var w in warnings) context.Err.WriteLine($"warning: {w}");
    }
}
