using Recur.Graphs;
using Recur.Graphs.Ir;
using Recur.Graphs.Weights;
using Recur.Tests.Support;

namespace Recur.Tests.Components;

/// <summary>
/// TokenShift and RWKV-4's WKV, as a Scan over positions (chunk null) and in parallel chunks, against a double loop over the
/// unscaled recurrence (num_t = e^w num_{t-1} + e^k_t v_t, out_t = (num + e^(u+k_t) v_t) / (den + e^(u+k_t))), which needs no
/// running max in double.
/// </summary>
public sealed class RecurrenceTests
{
    private const int B = 2, A = 5;
    // The graph is float32; every output is a weighted mean of v (|v| <= 1) after a few exps and one divide per step,
    // a few float32 ulps (~1e-7 each) at most, so 1e-5 is loose enough for rounding and far below any wrong term.
    private const double Atol = 1e-5;
    // The state the graph carries is (num, den) scaled by e^-max; its unscaled value can be ~e^100, so compare it relatively:
    // 1e-5 for the arithmetic, plus the exponent's own rounding: each step rounds max + w to float32, an absolute error of up to
    // half an ulp of |max| (2^-24 |max|) that e^max turns into the same relative error, accumulating over the steps.
    private static double StateRtol(int t, float[] k) => 1e-5 + t * k.Max(Math.Abs) * Math.Pow(2, -24);

    private static readonly float[] FreshNum = new float[B * A], FreshDen = new float[B * A];
    // The -1e38 a fresh state starts its running max at (Hugging Face's value), so the first step's max is u + k.
    private static readonly float[] FreshMax = Enumerable.Repeat(-1e38f, B * A).ToArray();

    // Chunk lengths: the Scan (null), 1, one that divides 6 and 12, ones that do not (4, 5), one longer than every sequence here (16).
    public static TheoryData<int?> Chunks => new() { null, 1, 2, 3, 4, 5, 16 };

    public static TheoryData<int, int?> LengthsAndChunks()
    {
        var data = new TheoryData<int, int?>();
        foreach (int t in new[] { 1, 6, 12 })
            foreach (int? chunk in Chunks) data.Add(t, chunk);
        return data;
    }

    [Theory]
    [MemberData(nameof(LengthsAndChunks))]
    public void Wkv_from_a_fresh_state_matches_the_unscaled_recurrence(int t, int? chunk)
    {
        var random = new Random(11 + t);
        var (k, v, u, w) = Inputs(random, t, keyLow: -1, keyHigh: 1);
        using var graph = WkvGraph(chunk);
        CheckAgainstReference(graph, t, k, v, u, w, FreshNum, FreshDen, FreshMax);
    }

    [Theory]
    [MemberData(nameof(Chunks))]
    public void Wkv_continues_from_a_given_state(int? chunk)
    {
        var random = new Random(5);
        const int t = 7;
        var (k, v, u, w) = Inputs(random, t, keyLow: -1, keyHigh: 1);
        var num = Numerics.Uniform(random, B * A);
        var den = Numerics.Uniform(random, B * A, 0.5, 2);
        var max = Numerics.Uniform(random, B * A, -2, 2);
        using var graph = WkvGraph(chunk);
        CheckAgainstReference(graph, t, k, v, u, w, num, den, max);
    }

    [Theory]
    [MemberData(nameof(Chunks))]
    public void Wkv_keys_too_large_for_float32_exp_stay_finite_through_the_running_max(int? chunk)
    {
        // e^100 overflows float32 (max ~e^88.7); only the running max keeps the graph finite. The double reference does not need it.
        var random = new Random(7);
        const int t = 9;
        var (k, v, u, w) = Inputs(random, t, keyLow: 60, keyHigh: 100);
        using var graph = WkvGraph(chunk);
        CheckAgainstReference(graph, t, k, v, u, w, FreshNum, FreshDen, FreshMax);
    }

    [Fact]
    public void Wkv_keys_spread_wider_than_float32_exp_and_fast_decay_stay_exact_in_chunks()
    {
        // Keys from -100 to 100 and decays to e^-30 per step: within one chunk, weights span far more than float32's exp range
        // (the chunked form hands such a prompt to the Scan over positions).
        var random = new Random(13);
        const int t = 12;
        var k = Numerics.Uniform(random, B * t * A, -100, 100);
        var v = Numerics.Uniform(random, B * t * A);
        var u = Numerics.Uniform(random, A, -1, 1);
        var w = Numerics.Uniform(random, A, -30, -0.01);
        foreach (int? chunk in new int?[] { null, 4, 5, 16 })
        {
            using var graph = WkvGraph(chunk);
            CheckAgainstReference(graph, t, k, v, u, w, FreshNum, FreshDen, FreshMax);
        }
    }

    [Theory]
    [InlineData(59, false)]
    [InlineData(61, true)]
    public void Wkv_in_chunks_falls_back_to_the_scan_only_when_keys_spread_too_far(double spread, bool falls)
    {
        // One row's own exponent u + k_t lies `spread` below its chunk's largest key: past GraphBuilder.MaxKeySpread the chunked
        // form would flush that row's weights, so it runs the Scan over positions, bit for bit; within it, its own arithmetic.
        Assert.Equal(60f, GraphBuilder.MaxKeySpread);
        var random = new Random(17);
        const int t = 8;
        var (k, v, u, w) = Inputs(random, t, keyLow: -1, keyHigh: 1);
        Array.Fill(u, 0f);
        k[3 * A] = (float)(k[2 * A] + spread);                 // row 0, positions 2 and 3 of the first chunk of 4, channel 0
        k[2 * A] = k[3 * A] - (float)spread;
        using var scan = WkvGraph(null);
        using var chunked = WkvGraph(4);
        var expected = RunWkv(scan, t, k, v, u, w, FreshNum, FreshDen, FreshMax)["out"].Floats;
        var actual = RunWkv(chunked, t, k, v, u, w, FreshNum, FreshDen, FreshMax)["out"].Floats;
        Numerics.AssertClose(expected, actual, Atol, what: "out");
        Assert.Equal(falls, expected.AsSpan().SequenceEqual(actual));
        CheckAgainstReference(chunked, t, k, v, u, w, FreshNum, FreshDen, FreshMax);
    }

    [Theory]
    [MemberData(nameof(Chunks))]
    public void Wkv_whole_sequence_equals_two_calls_passing_the_state(int? chunk)
    {
        var random = new Random(3);
        const int t = 7, first = 3;
        var (k, v, u, w) = Inputs(random, t, keyLow: -2, keyHigh: 2);
        using var graph = WkvGraph(chunk);
        var whole = RunWkv(graph, t, k, v, u, w, FreshNum, FreshDen, FreshMax);
        var a = RunWkv(graph, first, SliceT(k, t, 0, first), SliceT(v, t, 0, first), u, w, FreshNum, FreshDen, FreshMax);
        var b = RunWkv(graph, t - first, SliceT(k, t, first, t), SliceT(v, t, first, t), u, w,
            a["num_out"].Floats, a["den_out"].Floats, a["max_out"].Floats);

        var chunked = new float[B * t * A];
        for (int r = 0; r < B; r++)
        {
            Array.Copy(a["out"].Floats, r * first * A, chunked, r * t * A, first * A);
            Array.Copy(b["out"].Floats, r * (t - first) * A, chunked, (r * t + first) * A, (t - first) * A);
        }
        // The Scan takes the same float32 steps in the same order: equal up to the last ulp. In chunks the sums group
        // differently per split: a few ulps of the weighted mean, and of the scaled state.
        double tolerance = chunk is null ? 1e-6 : 1e-5;
        Numerics.AssertClose(whole["out"].Floats, chunked, tolerance, what: "out");
        foreach (var name in new[] { "num_out", "den_out", "max_out" })
            Numerics.AssertClose(whole[name].Floats, b[name].Floats, 0, tolerance, name);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    public void TokenShift_gives_each_position_the_previous_one_and_keeps_the_last(int t)
    {
        const int c = 3;
        var random = new Random(t);
        var x = Numerics.Uniform(random, B * t * c);
        var previous = Numerics.Uniform(random, B * c);
        var b = new GraphBuilder("shift");
        var (shifted, last) = b.TokenShift(b.Input("x", TensorDType.Float32, B, "sequence", c), b.Input("previous", TensorDType.Float32, B, c));
        b.Output(shifted, "shifted");
        b.Output(last, "last");
        using var graph = GraphRun.Open(b);
        var result = graph.Run(("x", HostTensor.Of(x, B, t, c)), ("previous", HostTensor.Of(previous, B, c)));

        var expectedShifted = new float[B * t * c];
        var expectedLast = new float[B * c];
        for (int r = 0; r < B; r++)
            for (int ch = 0; ch < c; ch++)
            {
                for (int p = 0; p < t; p++)
                    expectedShifted[(r * t + p) * c + ch] = p == 0 ? previous[r * c + ch] : x[(r * t + p - 1) * c + ch];
                expectedLast[r * c + ch] = x[(r * t + t - 1) * c + ch];
            }
        Assert.Equal(new long[] { B, t, c }, result["shifted"].Shape);
        Assert.Equal(expectedShifted, result["shifted"].Floats);
        Assert.Equal(expectedLast, result["last"].Floats);
    }

    // ---- helpers ----

    private static (float[] K, float[] V, float[] U, float[] W) Inputs(Random random, int t, double keyLow, double keyHigh) =>
        (Numerics.Uniform(random, B * t * A, keyLow, keyHigh),
         Numerics.Uniform(random, B * t * A),
         Numerics.Uniform(random, A, -1, 1),
         // w = -exp(time_decay): negative, a decay per step of e^w.
         Numerics.Uniform(random, A, -2, -0.05));

    /// <summary>The WKV as a Scan over positions (chunk null) or in chunks of that many positions.</summary>
    private static GraphRun WkvGraph(int? chunk)
    {
        var b = new GraphBuilder("wkv");
        Value In(string name, params Dim[] shape) => b.Input(name, TensorDType.Float32, shape);
        Value k = In("k", B, "sequence", A), v = In("v", B, "sequence", A), u = In("u", A), w = In("w", A);
        Value num = In("num", B, A), den = In("den", B, A), max = In("max", B, A);
        var (output, numOut, denOut, maxOut) = chunk is int c ? b.WkvChunked(k, v, u, w, num, den, max, c) : b.WkvScan(k, v, u, w, num, den, max);
        b.Output(output, "out");
        b.Output(numOut, "num_out");
        b.Output(denOut, "den_out");
        b.Output(maxOut, "max_out");
        return GraphRun.Open(b);
    }

    private static IReadOnlyDictionary<string, HostTensor> RunWkv(GraphRun graph, int t, float[] k, float[] v, float[] u, float[] w,
        float[] num, float[] den, float[] max) =>
        graph.Run(("k", HostTensor.Of(k, B, t, A)), ("v", HostTensor.Of(v, B, t, A)), ("u", HostTensor.Of(u, A)), ("w", HostTensor.Of(w, A)),
            ("num", HostTensor.Of(num, B, A)), ("den", HostTensor.Of(den, B, A)), ("max", HostTensor.Of(max, B, A)));

    private static void CheckAgainstReference(GraphRun graph, int t, float[] k, float[] v, float[] u, float[] w,
        float[] num, float[] den, float[] max)
    {
        var result = RunWkv(graph, t, k, v, u, w, num, den, max);
        var expected = new double[B * t * A];
        var expectedNum = new double[B * A];
        var expectedDen = new double[B * A];
        for (int r = 0; r < B; r++)
            for (int c = 0; c < A; c++)
            {
                int s = r * A + c;
                // The state unscaled: what num and den stand for. e^-1e38 is 0 in double, as a fresh state is.
                double n = num[s] * Math.Exp(max[s]), d = den[s] * Math.Exp(max[s]);
                for (int p = 0; p < t; p++)
                {
                    int i = (r * t + p) * A + c;
                    double bonus = Math.Exp(u[c] + k[i]);
                    expected[i] = (n + bonus * v[i]) / (d + bonus);
                    n = Math.Exp(w[c]) * n + Math.Exp(k[i]) * v[i];
                    d = Math.Exp(w[c]) * d + Math.Exp(k[i]);
                }
                expectedNum[s] = n;
                expectedDen[s] = d;
            }
        Numerics.AssertClose(expected, result["out"].Floats, Atol, what: "out");

        var maxOut = result["max_out"].Floats;
        var numOut = result["num_out"].Floats;
        var denOut = result["den_out"].Floats;
        double rtol = StateRtol(t, k);
        for (int s = 0; s < B * A; s++)
        {
            Assert.True(float.IsFinite(numOut[s]) && float.IsFinite(denOut[s]) && float.IsFinite(maxOut[s]), $"state {s} is not finite");
            double unscaledNum = numOut[s] * Math.Exp(maxOut[s]), unscaledDen = denOut[s] * Math.Exp(maxOut[s]);
            // |num| <= den since |v| <= 1, so den is num's scale (num itself may cancel to near 0).
            Assert.True(Math.Abs(unscaledNum - expectedNum[s]) <= rtol * expectedDen[s],
                $"num * e^max [{s}]: expected {expectedNum[s]:R}, got {unscaledNum:R}");
            Assert.True(Math.Abs(unscaledDen - expectedDen[s]) <= rtol * expectedDen[s],
                $"den * e^max [{s}]: expected {expectedDen[s]:R}, got {unscaledDen:R}");
        }
    }

    private static float[] SliceT(float[] x, int t, int from, int to) => Numerics.SliceTime(x, B, t, A, from, to);
}
