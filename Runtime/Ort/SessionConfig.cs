using Microsoft.ML.OnnxRuntime;

namespace Recur.Runtime.Ort;

/// <summary>ONNX Runtime's <c>GraphOptimizationLevel</c>.</summary>
public enum GraphOptimization
{
    Disabled = 0,
    Basic = 1,
    Extended = 2,
    All = 99,
}

/// <summary>How to build an ONNX Runtime session: threads, optimisation, provider, config entries, profiling.</summary>
public sealed record SessionConfig
{
    /// <summary>Threads inside one operator; 0 lets ORT choose (one per physical core).</summary>
    public int IntraOpThreads { get; init; }

    /// <summary>Threads running independent operators; 0 lets ORT choose. Only used in parallel execution mode.</summary>
    public int InterOpThreads { get; init; }

    public GraphOptimization Optimization { get; init; } = GraphOptimization.All;

    /// <summary>
    /// "cpu", "cuda", "tensorrt", "dml" (DirectML, Windows builds only), or any name ORT's generic provider call
    /// accepts ("XNNPACK", ...); case-insensitive.
    /// </summary>
    public string ExecutionProvider { get; init; } = "cpu";

    /// <summary>True: a provider that cannot be added is an error. False: run on CPU and record a warning.</summary>
    public bool ProviderRequired { get; init; }

    /// <summary>Device index for providers that take one (CUDA, TensorRT, DirectML).</summary>
    public int DeviceId { get; init; }

    /// <summary>
    /// Session configuration entries passed to AddSessionConfigEntry as they are, e.g.
    /// <c>session.intra_op.allow_spinning = 0</c> (ORT's onnxruntime_session_options_config_keys.h lists them).
    /// </summary>
    public IReadOnlyDictionary<string, string> ConfigEntries { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// Entries applied unless <see cref="ConfigEntries"/> sets the same key. Intra-op threads do not spin
    /// between operators: a decode step runs hundreds of small nodes, and on a machine shared with other
    /// work a spinning pool thread takes the core the next node needs. The 46M Gemma bench on the 2-core
    /// machine: under load (load average 4-7) 1.1-1.7x prefill and 1.4-1.8x decode without spinning; idle
    /// (load average 0.5) spinning was 5-10% faster. Set the key to 1 on dedicated cores.
    /// </summary>
    public static IReadOnlyDictionary<string, string> Defaults { get; } = new Dictionary<string, string>
    {
        ["session.intra_op.allow_spinning"] = "0",
    };

    /// <summary>When set, ORT writes a chrome-tracing profile of every run to a file starting with this prefix.</summary>
    public string? ProfilePrefix { get; init; }

    /// <summary>When set, ORT saves the graph it runs (after its optimisations) to this path, for inspection.</summary>
    public string? OptimizedModelPath { get; init; }

    /// <summary>Session options for CPU; the provider is added by <see cref="SessionFactory"/>.</summary>
    internal SessionOptions CreateOptions()
    {
        var options = new SessionOptions
        {
            IntraOpNumThreads = IntraOpThreads,
            InterOpNumThreads = InterOpThreads,
            GraphOptimizationLevel = Optimization switch
            {
                GraphOptimization.Disabled => GraphOptimizationLevel.ORT_DISABLE_ALL,
                GraphOptimization.Basic => GraphOptimizationLevel.ORT_ENABLE_BASIC,
                GraphOptimization.Extended => GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                _ => GraphOptimizationLevel.ORT_ENABLE_ALL,
            },
        };
        try
        {
            foreach (var (key, value) in Defaults)
                if (!ConfigEntries.ContainsKey(key)) options.AddSessionConfigEntry(key, value);
            foreach (var (key, value) in ConfigEntries) options.AddSessionConfigEntry(key, value);
            if (ProfilePrefix is not null)
            {
                options.EnableProfiling = true;
                options.ProfileOutputPathPrefix = ProfilePrefix;
            }
            if (OptimizedModelPath is not null) options.OptimizedModelFilePath = OptimizedModelPath;
            return options;
        }
        catch
        {
            options.Dispose();
            throw;
        }
    }
}
