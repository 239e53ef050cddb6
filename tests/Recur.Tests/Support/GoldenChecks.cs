using Recur.Export.Checkpoints;
using Recur.Runtime.Execution;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Recur.Runtime.Ort;

namespace Recur.Tests.Support;

/// <summary>Shared assertions for architecture tests against the goldens.</summary>
public static class GoldenChecks
{
    /// <summary>fp32 parity target on the goldens (HF's own fp32-vs-fp64 noise is <= 1.1e-5).</summary>
    public const double Fp32Atol = 1e-4;

    /// <summary>`recur validate` through the CLI: exit 0 and a last line reporting a diff within tolerance.</summary>
    public static double Validate(string package, string caseName, int? split = null, double atol = Fp32Atol)
    {
        var args = new List<string> { "validate", package, "--expected", ConvertedPackages.Expected(caseName), "--atol", atol.ToString("R", System.Globalization.CultureInfo.InvariantCulture) };
        if (split is int n) args.AddRange(["--split", n.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        var result = CliRunner.Run([.. args]);
        Assert.True(result.Exit == 0, result.ToString());
        Assert.StartsWith("max_abs_diff=", result.LastLine);
        double diff = double.Parse(result.LastLine.Split(' ')[0]["max_abs_diff=".Length..], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(diff, 0, atol);
        return diff;
    }

    public static ModelRunner OpenRunner(string package)
    {
        OrtLibrary.Initialize();
        return ModelRunner.Open(package, new SessionConfig { IntraOpThreads = 1 });
    }

    public static (long[] Ids, long[] Shape) ReadIds(string caseName, string name)
    {
        using var file = SafetensorsFile.Open(ConvertedPackages.Expected(caseName));
        Assert.True(file.TryGetEntry(name, out var entry));
        var ids = new long[entry.ElementCount];
        file.ReadRaw(name, System.Runtime.InteropServices.MemoryMarshal.AsBytes(ids.AsSpan()));
        return (ids, entry.Shape);
    }

    public static float[] ReadFloats(string caseName, string name)
    {
        using var file = SafetensorsFile.Open(ConvertedPackages.Expected(caseName));
        return file.ReadFloat32(name);
    }

    public static double MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        double max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs((double)a[i] - b[i]));
        return max;
    }

    /// <summary>
    /// One layer's window of a Hugging Face Mamba-style conv cache [layers, 1, channels, K] (the last K conv inputs)
    /// as the state keeps it: [channels, K-1], the last K-1.
    /// </summary>
    public static float[] ConvWindow(float[] cache, int layer, int channels, int kernel)
    {
        var window = new float[channels * (kernel - 1)];
        for (int c = 0; c < channels; c++)
            for (int k = 1; k < kernel; k++)
                window[c * (kernel - 1) + k - 1] = cache[(layer * channels + c) * kernel + k];
        return window;
    }

    /// <summary>Feeds a batch-1 sequence one token per call and returns the logits of every position, concatenated.</summary>
    public static float[] Stepwise(ModelRunner runner, ModelState state, long[] ids) =>
        Chunked(runner, state, ids, Enumerable.Repeat(1, ids.Length).ToArray());

    /// <summary>Feeds a batch-1 sequence in calls of the given lengths (they must add up to it) and returns every position's logits.</summary>
    public static float[] Chunked(ModelRunner runner, ModelState state, long[] ids, params int[] chunks)
    {
        Assert.Equal(ids.Length, chunks.Sum());
        var all = new List<float>();
        int at = 0;
        foreach (int n in chunks)
        {
            all.AddRange(runner.Forward(state, ids.AsSpan(at, n), n).Data);
            at += n;
        }
        return [.. all];
    }

    /// <summary>
    /// Left padding on a model that takes attention_mask: row 0 holds 20 tokens of input_ids, row 1 12 tokens of
    /// input_ids_batch2[1] after 8 padding positions (id 7, masked). Each row's logits equal that row run alone and
    /// the golden ones; then 4 decode steps continue each row's golden sequence, the mask history growing by one column.
    /// </summary>
    public static void LeftPaddedRowsMatchAloneAndKeepDecoding(ModelRunner runner, string caseName)
    {
        var (a, _) = ReadIds(caseName, "input_ids");
        var (pair, _) = ReadIds(caseName, "input_ids_batch2");
        var goldenA = ReadFloats(caseName, "logits");
        var goldenPair = ReadFloats(caseName, "logits_batch2");
        int length = a.Length, vocab = goldenA.Length / length;
        const int longer = 20, shorter = 12, steps = 4;
        var rows = new[] { a[..longer], pair[length..(length + shorter)] };
        var futures = new[] { a[longer..(longer + steps)], pair[(length + shorter)..(length + shorter + steps)] };
        Func<int, int, ReadOnlySpan<float>> golden = (row, position) => row == 0
            ? goldenA.AsSpan(position * vocab, vocab)
            : goldenPair.AsSpan((length + position) * vocab, vocab);

        var ids = new long[2 * longer];
        var mask = new long[2 * longer];
        for (int r = 0; r < 2; r++)
        {
            int pad = longer - rows[r].Length;
            for (int t = 0; t < longer; t++)
            {
                ids[r * longer + t] = t < pad ? 7 : rows[r][t - pad];   // any id: a padded position must not reach a real one
                mask[r * longer + t] = t < pad ? 0 : 1;
            }
        }
        using var state = runner.CreateState(2);
        var padded = runner.Forward(state, ids, longer, mask);
        for (int r = 0; r < 2; r++)
        {
            using var aloneState = runner.CreateState(1);
            var alone = runner.Forward(aloneState, rows[r], rows[r].Length);
            int pad = longer - rows[r].Length;
            for (int t = 0; t < rows[r].Length; t++)
            {
                Assert.InRange(MaxAbsDiff(padded.At(r, pad + t), alone.At(0, t)), 0, Fp32Atol);
                Assert.InRange(MaxAbsDiff(padded.At(r, pad + t), golden(r, t)), 0, Fp32Atol);
            }
        }
        for (int s = 0; s < steps; s++)
        {
            var step = runner.Forward(state, [futures[0][s], futures[1][s]], 1, [1, 1]);
            for (int r = 0; r < 2; r++)
                Assert.InRange(MaxAbsDiff(step.At(r, 0), golden(r, rows[r].Length + s)), 0, Fp32Atol);
        }
    }
}
