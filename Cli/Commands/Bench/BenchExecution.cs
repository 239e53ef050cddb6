using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Recur.Cli.Common;
using Recur.Runtime.Execution;
using Recur.Runtime.Ort;

namespace Recur.Cli.Commands.Bench;

/// <summary>
/// Prefill and decode throughput of a package against the limits of this machine, measured in the same run: a
/// decode step cannot beat read bandwidth / the bytes it reads (<see cref="StepCost"/>: weights as a step reads
/// them, plus the state), a prefill cannot beat the GEMM peak over its matrix FLOPs per token. A context sweep
/// times decode after longer histories, alternating the depths round by round.
/// </summary>
internal static class BenchExecution
{
    public static int Run(BenchRequest request, SessionConfig config, CliContext context)
    {
        if (request.PromptLength < 1 || request.NewTokens < 1 || request.Batch < 1 || request.Repeat < 1)
            throw new UsageException("--prompt-length, --new-tokens, --batch and --repeat must be at least 1");
        foreach (int c in request.Contexts)
            if (c < 1) throw new UsageException($"--context {c}: a context length must be at least 1");
        using var runner = ModelRunner.Open(request.Package, config);
        RuntimeOptions.ReportWarnings(runner.Warnings, context);
        var cost = StepCost.Read(runner.Package);
        // The bandwidth probe's buffer: as large as the files a step reads from, so caches do not flatter it.
        string decoderPath = runner.Package.GraphPath("decoder");
        long fileBytes = new[] { decoderPath, decoderPath + ".data" }.Where(File.Exists).Sum(f => new FileInfo(f).Length);
        int vocab = runner.VocabSize > 0 ? runner.VocabSize : 2;
        var random = new Random(1234);
        long[] RandomIds(int n) => Enumerable.Range(0, n).Select(_ => (long)random.Next(vocab)).ToArray();
        var encoderIds = RandomIds(request.Batch * request.PromptLength);

        // Prefill `depth` tokens, then time the decode steps; returns (prefill tokens/s, decode tokens/s).
        (double Prefill, double Decode) Round(int depth)
        {
            using var state = runner.CreateState(request.Batch);
            if (runner.Package.IsEncoderDecoder) runner.Encode(state, encoderIds, request.PromptLength);
            var ids = RandomIds(request.Batch * depth);
            var clock = Stopwatch.StartNew();
            runner.ForwardLast(state, ids, depth);
            double prefillSeconds = clock.Elapsed.TotalSeconds;
            var next = RandomIds(request.Batch);
            clock.Restart();
            for (int s = 0; s < request.NewTokens; s++) runner.ForwardLast(state, next, 1);
            double decodeSeconds = clock.Elapsed.TotalSeconds;
            return (request.Batch * depth / prefillSeconds, request.Batch * request.NewTokens / decodeSeconds);
        }

        var prefill = new List<double>();
        var decode = new List<double>();
        var depths = request.Contexts.Distinct().ToList();
        var atDepth = depths.ToDictionary(d => d, _ => new List<double>());
        Round(request.PromptLength); // warm-up, not counted
        for (int r = 0; r < request.Repeat; r++)
        {
            var (p, d) = Round(request.PromptLength);
            prefill.Add(p);
            decode.Add(d);
            foreach (int depth in depths) atDepth[depth].Add(Round(depth).Decode);
        }
        int threads = Math.Max(1, config.IntraOpThreads == 0 ? Environment.ProcessorCount : config.IntraOpThreads);
        double bandwidth = MeasureReadBandwidth(Math.Max(fileBytes, 64L << 20), threads);
        double gemmPeak = BenchProbes.GemmPeak(config);
        // Profiled at the deepest context asked for, where the history's share of a step shows.
        var nodes = BenchProbes.CountDecodeNodes(request.Package, config, depths.Count == 0 ? request.PromptLength : depths.Max());

        // A step at depth P reads the weights and the state as it stands midway through the timed steps.
        double weightBytes = cost.WeightBytes(request.Batch);
        double StepBytes(int depth) => weightBytes + cost.StateBytes(request.Batch, depth + request.NewTokens / 2);
        double Bound(int depth) => bandwidth / StepBytes(depth) * request.Batch;
        double prefillMedian = Median(prefill), decodeMedian = Median(decode);
        // A ForwardLast prefill runs the head for one position per row.
        double prefillFlopsPerToken = cost.MatrixFlopsPerToken + cost.KeptPositionFlops / request.PromptLength;
        double prefillBound = prefillFlopsPerToken > 0 ? gemmPeak / prefillFlopsPerToken : double.NaN;
        var sweep = depths.Select(d => new
        {
            context = d, decode_tokens_per_s = Median(atDepth[d]), bytes_per_step = StepBytes(d), decode_bound_tokens_per_s = Bound(d),
            decode_fraction_of_bound = Median(atDepth[d]) / Bound(d),
        }).ToList();

        if (request.Json)
        {
            context.Out.WriteLine(JsonSerializer.Serialize(new
            {
                package = request.Package, model_type = runner.Package.ModelType, dtype = runner.Package.DType, provider = runner.ExecutionProvider,
                batch = request.Batch, prompt_length = request.PromptLength, new_tokens = request.NewTokens, repeat = request.Repeat,
                file_bytes = fileBytes, weight_bytes_per_step = weightBytes, state_bytes_per_step = StepBytes(request.PromptLength) - weightBytes,
                prefill_tokens_per_s = prefillMedian, decode_tokens_per_s = decodeMedian,
                read_bandwidth_bytes_per_s = bandwidth, decode_bound_tokens_per_s = Bound(request.PromptLength),
                decode_fraction_of_bound = decodeMedian / Bound(request.PromptLength),
                gemm_peak_flops = gemmPeak, matrix_flops_per_token = cost.MatrixFlopsPerToken, head_flops_per_kept_position = cost.KeptPositionFlops,
                prefill_matrix_flops_per_token = prefillFlopsPerToken, prefill_bound_tokens_per_s = prefillBound,
                prefill_fraction_of_gemm_peak = prefillMedian / prefillBound,
                context_sweep = sweep,
                graph_nodes = cost.GraphNodes,
                decode_step_nodes = new
                {
                    context = nodes.Depth, total = nodes.Total, layers = nodes.Layers, per_layer = nodes.PerLayer, outside_layers = nodes.OutsideLayers,
                    by_op = nodes.ByOp, kernel_microseconds_by_op = nodes.MicrosByOp,
                },
            }, new JsonSerializerOptions { WriteIndented = true }));
            return ExitCodes.Ok;
        }
        var o = context.Out;
        string F(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
        o.WriteLine(F($"{runner.Package.ModelType} ({runner.Package.DType}) on {runner.ExecutionProvider}, batch {request.Batch}, median of {request.Repeat}"));
        o.WriteLine(F($"  read per decode step {weightBytes / 1048576.0:F1} MiB of weights (files {fileBytes / 1048576.0:F1} MiB) + {(StepBytes(request.PromptLength) - weightBytes) / 1048576.0:F2} MiB of state"));
        o.WriteLine(F($"  read bandwidth       {bandwidth / 1e9:F1} GB/s (measured now) -> decode bound {Bound(request.PromptLength):F1} tokens/s"));
        o.WriteLine(F($"  GEMM peak            {gemmPeak / 1e9:F1} GFLOP/s (1024x4096x4096 float32 MatMul, now) over {prefillFlopsPerToken / 1e6:F1} MFLOP/token -> prefill bound {prefillBound:F0} tokens/s"));
        o.WriteLine(F($"  prefill {request.PromptLength,5} tokens {prefillMedian,10:F1} tokens/s = {prefillMedian / prefillBound:P0} of the GEMM bound"));
        o.WriteLine(F($"  decode  {request.NewTokens,5} steps  {decodeMedian,10:F1} tokens/s = {decodeMedian / Bound(request.PromptLength):P0} of the bound"));
        foreach (var s in sweep)
            o.WriteLine(F($"  decode after {s.context,5}  {s.decode_tokens_per_s,10:F1} tokens/s = {s.decode_fraction_of_bound:P0} of its bound ({s.decode_bound_tokens_per_s:F1})"));
        o.WriteLine(F($"  decode step nodes    {nodes.Total} run by ONNX Runtime: {nodes.PerLayer:F1} per layer x {nodes.Layers} layers + {nodes.OutsideLayers} outside ({cost.GraphNodes} in the file)"));
        long kernelMicros = nodes.MicrosByOp.Values.Sum();
        o.WriteLine(F($"  profiled step after {nodes.Depth}: {kernelMicros / 1000.0:F2} ms in kernels; most: {string.Join(", ", nodes.MicrosByOp.OrderByDescending(kv => kv.Value).Take(6).Select(kv => $"{kv.Key} {100.0 * kv.Value / Math.Max(1, kernelMicros):F0}%"))}"));
        return ExitCodes.Ok;
    }

    /// <summary>Bytes per second summing a buffer of the given size on the given number of threads (best of 3).</summary>
    private static double MeasureReadBandwidth(long bytes, int threads)
    {
        var buffer = new long[bytes / 8];
        new Random(7).NextBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(buffer.AsSpan()));
        double best = 0;
        for (int round = 0; round < 3; round++)
        {
            var clock = Stopwatch.StartNew();
            long total = 0;
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, () => 0L, (t, _, local) =>
            {
                int start = (int)(buffer.LongLength * t / threads), end = (int)(buffer.LongLength * (t + 1) / threads);
                long sum = 0;
                var slice = buffer.AsSpan(start, end - start);
                var vectors = System.Runtime.InteropServices.MemoryMarshal.Cast<long, System.Numerics.Vector<long>>(slice);
                var acc = System.Numerics.Vector<long>.Zero;
                foreach (var v in vectors) acc += v;
                sum += System.Numerics.Vector.Sum(acc);
                return local + sum;
            }, local => Interlocked.Add(ref total, local));
            double seconds = clock.Elapsed.TotalSeconds;
            GC.KeepAlive(total);
            best = Math.Max(best, bytes / seconds);
        }
        return best;
    }

    private static double Median(List<double> values)
    {
        values.Sort();
        return values.Count % 2 == 1 ? values[values.Count / 2] : (values[values.Count / 2 - 1] + values[values.Count / 2]) / 2;
    }
}
