using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Recur.Cli.Common;
using Recur.Runtime.Execution;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Recur.Runtime.Ort;

namespace Recur.Cli.Commands.Bench;

/// <summary>
/// Prefill and decode throughput of a package, reported with the baseline that bounds decoding: a
/// decode step reads every weight once, so tokens/s cannot beat read bandwidth / weight bytes. The
/// bandwidth is measured here, in the same run, on a buffer as large as the weights.
/// </summary>
internal static class BenchExecution
{
    public static int Run(BenchRequest request, SessionConfig config, CliContext context)
    {
        if (request.PromptLength < 1 || request.NewTokens < 1 || request.Batch < 1 || request.Repeat < 1)
            throw new UsageException("--prompt-length, --new-tokens, --batch and --repeat must be at least 1");
        using var runner = ModelRunner.Open(request.Package, config);
        RuntimeOptions.ReportWarnings(runner.Warnings, context);
        // What a decode step can read: the decoder graph and its external data (an encoder runs once per prompt).
        string decoderPath = runner.Package.GraphPath("decoder");
        long weightBytes = new[] { decoderPath, decoderPath + ".data" }.Where(File.Exists).Sum(f => new FileInfo(f).Length);
        int vocab = runner.VocabSize > 0 ? runner.VocabSize : 2;
        var random = new Random(1234);
        long[] RandomIds(int n) => Enumerable.Range(0, n).Select(_ => (long)random.Next(vocab)).ToArray();
        var encoderIds = RandomIds(request.Batch * request.PromptLength);

        var prefill = new List<double>();
        var decode = new List<double>();
        for (int r = 0; r < request.Repeat + 1; r++) // the first round warms up and is not counted
        {
            using var state = runner.CreateState(request.Batch);
            if (runner.Package.IsEncoderDecoder) runner.Encode(state, encoderIds, request.PromptLength);
            var ids = RandomIds(request.Batch * request.PromptLength);
            var clock = Stopwatch.StartNew();
            runner.ForwardLast(state, ids, request.PromptLength);
            double prefillSeconds = clock.Elapsed.TotalSeconds;
            var next = RandomIds(request.Batch);
            clock.Restart();
            for (int s = 0; s < request.NewTokens; s++) runner.ForwardLast(state, next, 1);
            double decodeSeconds = clock.Elapsed.TotalSeconds;
            if (r == 0) continue;
            prefill.Add(request.Batch * request.PromptLength / prefillSeconds);
            decode.Add(request.Batch * request.NewTokens / decodeSeconds);
        }
        double bandwidth = MeasureReadBandwidth(Math.Max(weightBytes, 64L << 20), Math.Max(1, config.IntraOpThreads == 0 ? Environment.ProcessorCount : config.IntraOpThreads));
        double bound = bandwidth / weightBytes * request.Batch;
        double prefillMedian = Median(prefill), decodeMedian = Median(decode);

        if (request.Json)
        {
            context.Out.WriteLine(JsonSerializer.Serialize(new
            {
                package = request.Package, provider = runner.ExecutionProvider, batch = request.Batch, prompt_length = request.PromptLength,
                new_tokens = request.NewTokens, weight_bytes = weightBytes, prefill_tokens_per_s = prefillMedian, decode_tokens_per_s = decodeMedian,
                read_bandwidth_bytes_per_s = bandwidth, decode_bound_tokens_per_s = bound, decode_fraction_of_bound = decodeMedian / bound,
            }, new JsonSerializerOptions { WriteIndented = true }));
            return ExitCodes.Ok;
        }
        var o = context.Out;
        o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{runner.Package.ModelType} on {runner.ExecutionProvider}, batch {request.Batch}, median of {request.Repeat}"));
        o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  weights            {weightBytes / 1048576.0:F1} MiB"));
        o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  read bandwidth     {bandwidth / 1e9:F1} GB/s (measured now) -> decode bound {bound:F1} tokens/s"));
        o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  prefill {request.PromptLength,5} tokens {prefillMedian,10:F1} tokens/s"));
        o.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  decode  {request.NewTokens,5} steps  {decodeMedian,10:F1} tokens/s = {decodeMedian / bound:P0} of the bound"));
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
