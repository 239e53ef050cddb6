using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.OnnxRuntime;
using Recur.Graphs;
using Recur.Graphs.Weights;
using Recur.Runtime.Execution;
using Recur.Runtime.Ort;

namespace Recur.Cli.Commands.Bench;

/// <summary>The nodes ONNX Runtime ran in one decode step after <c>Depth</c> positions: in all, by op (count, and kernel
/// microseconds: per op the median over the profiled steps, so one step the machine stalled does not rule), and per layer.</summary>
internal sealed record DecodeNodes(int Depth, int Total, int InLayers, int Layers, IReadOnlyDictionary<string, int> ByOp,
    IReadOnlyDictionary<string, long> MicrosByOp)
{
    public double PerLayer => Layers == 0 ? 0 : (double)InLayers / Layers;
    public int OutsideLayers => Total - InLayers;
}

/// <summary>Measurements bench takes beside the model: the machine's GEMM peak, and what a decode step runs.</summary>
internal static partial class BenchProbes
{
    /// <summary>
    /// FLOP/s of one large float32 MatMul ([m, k] x [k, n]) through ONNX Runtime with the session settings of the
    /// model: the ceiling a prefill (matrix products over many tokens) can reach on this machine. Best of 3 runs.
    /// </summary>
    public static double GemmPeak(SessionConfig config, int m = 1024, int k = 4096, int n = 4096)
    {
        var b = new GraphBuilder("gemm_peak");
        b.Output(b.MatMul(b.Input("a", TensorDType.Float32, m, k), b.Input("b", TensorDType.Float32, k, n)), "c");
        string path = Path.Combine(Path.GetTempPath(), $"recur-gemm-{Guid.NewGuid():N}.onnx");
        byte[] model;
        try
        {
            ModelWriter.Write(b, path, new ModelWriteOptions { ExternalData = ExternalDataMode.Never });
            model = File.ReadAllBytes(path);
        }
        finally
        {
            File.Delete(path);
        }
        using var session = SessionFactory.Open(model, config with { ProfilePrefix = null, OptimizedModelPath = null });
        var random = new Random(5);
        float[] Fill(int count)
        {
            var values = new float[count];
            for (int i = 0; i < count; i++) values[i] = (float)random.NextDouble() - 0.5f;
            return values;
        }
        using var a = OrtValue.CreateTensorValueFromMemory(Fill(m * k), [m, k]);
        using var bv = OrtValue.CreateTensorValueFromMemory(Fill(k * n), [k, n]);
        using var options = new RunOptions();
        double best = 0;
        for (int round = 0; round < 4; round++) // the first round warms up
        {
            var clock = Stopwatch.StartNew();
            using var results = session.Session.Run(options, ["a", "b"], [a, bv], ["c"]);
            double seconds = clock.Elapsed.TotalSeconds;
            if (round > 0) best = Math.Max(best, 2.0 * m * k * n / seconds);
        }
        return best;
    }

    /// <summary>
    /// Runs a prompt of <paramref name="depth"/> tokens and decode steps with ONNX Runtime's profiler on and counts the
    /// kernels of the last decode step (subgraph nodes included) and their time by op. A node belongs to a layer when a scope of its name ends in ".N"
    /// (layers.3/..., decoder.block.3/...); nodes that ORT's fusions renamed count outside the layers.
    /// </summary>
    public static DecodeNodes CountDecodeNodes(string package, SessionConfig config, int depth)
    {
        string prefix = Path.Combine(Path.GetTempPath(), $"recur-bench-profile-{Guid.NewGuid():N}");
        string? file = null, encoderFile = null;
        try
        {
            using var runner = ModelRunner.Open(package, config with { ProfilePrefix = prefix, OptimizedModelPath = null });
            using (var state = runner.CreateState(1))
            {
                int vocab = Math.Max(2, runner.VocabSize);
                long[] ids = Enumerable.Range(1, depth).Select(i => (long)(i % vocab)).ToArray();
                if (runner.Package.IsEncoderDecoder) runner.Encode(state, ids, ids.Length);
                runner.ForwardLast(state, ids, ids.Length);
                for (int step = 0; step < ProfiledSteps + 2; step++) runner.ForwardLast(state, [1], 1); // two warm-up steps

            }
            file = runner.Decoder.EndProfiling();
            encoderFile = runner.Encoder?.EndProfiling(); // profiled too (same options): ended here so its file is removed
            return Parse(File.ReadAllText(file), depth);
        }
        finally
        {
            if (file is not null) File.Delete(file);
            if (encoderFile is not null) File.Delete(encoderFile);
        }
    }

    private const int ProfiledSteps = 7;

    private static DecodeNodes Parse(string profile, int depth)
    {
        using var doc = JsonDocument.Parse(profile);
        var events = doc.RootElement.EnumerateArray().ToList();
        // The last model_runs are the profiled decode steps; their kernels fall inside their time spans.
        var runs = events.Where(e => e.GetProperty("cat").GetString() == "Session" && e.GetProperty("name").GetString() == "model_run")
            .TakeLast(ProfiledSteps).ToList();
        var steps = runs.Select(r => Step(events, r)).ToList();
        var micros = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (string op in steps.SelectMany(s => s.Micros.Keys).Distinct())
        {
            var times = steps.Select(s => s.Micros.GetValueOrDefault(op)).Order().ToList();
            micros[op] = times[times.Count / 2];
        }
        var last = steps[^1];
        return new DecodeNodes(depth, last.Total, last.InLayers, last.Layers, last.ByOp, micros);
    }

    private static (int Total, int InLayers, int Layers, SortedDictionary<string, int> ByOp, Dictionary<string, long> Micros) Step(List<JsonElement> events, JsonElement run)
    {
        long start = run.GetProperty("ts").GetInt64(), end = start + run.GetProperty("dur").GetInt64();
        var byOp = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var micros = new Dictionary<string, long>(StringComparer.Ordinal);
        var layers = new HashSet<string>(StringComparer.Ordinal);
        int total = 0, inLayers = 0;
        foreach (var e in events)
        {
            if (e.GetProperty("cat").GetString() != "Node") continue;
            string name = e.GetProperty("name").GetString() ?? "";
            if (!name.EndsWith("_kernel_time", StringComparison.Ordinal)) continue;
            long ts = e.GetProperty("ts").GetInt64();
            if (ts < start || ts > end) continue;
            total++;
            string op = e.TryGetProperty("args", out var args) && args.TryGetProperty("op_name", out var o) ? o.GetString() ?? "?" : "?";
            byOp[op] = byOp.GetValueOrDefault(op) + 1;
            micros[op] = micros.GetValueOrDefault(op) + e.GetProperty("dur").GetInt64();
            var layer = LayerScope().Match(name);
            if (layer.Success)
            {
                inLayers++;
                layers.Add(layer.Groups[1].Value);
            }
        }
        return (total, inLayers, layers.Count, byOp, micros);
    }

    [GeneratedRegex(@"^(?:[^/]*/)*?([^/]*\.\d+)/")]
    private static partial Regex LayerScope();
}
