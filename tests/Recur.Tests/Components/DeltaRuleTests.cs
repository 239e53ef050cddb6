using Recur.Graphs;
using Recur.Graphs.Ir;
using Recur.Graphs.Weights;
using Recur.Tests.Support;

namespace Recur.Tests.Components;

/// <summary>
/// RWKV-7's generalised delta rule against a naive loop over every head, value row i and key column j:
/// S[i, j] = S[i, j] w[j] + (sum_l S[i, l] a[l]) b[j] + v[i] k[j];  y[i] = sum_j S[i, j] r[j].
/// </summary>
public sealed class DeltaRuleTests
{
    private const int B = 2, H = 2, N = 3, C = H * N;
    // float32 graph against a double loop; S stays O(1..10) and each y sums N products.
    private const double Atol = 1e-5, Rtol = 1e-5;

    private sealed record Inputs(float[] R, float[] W, float[] K, float[] V, float[] A, float[] Bv);

    [Theory]
    [InlineData(1, false)]
    [InlineData(6, false)]
    [InlineData(4, true)]
    public void Matches_the_recurrence(int t, bool givenState)
    {
        var random = new Random(700 + t);
        var x = Random(random, t);
        var s0 = givenState ? Numerics.Uniform(random, B * H * N * N, -2, 2) : new float[B * H * N * N];
        using var graph = Graph();
        var result = Run(graph, x, t, 0, t, s0);

        var expectedY = new double[B * t * C];
        var expectedS = new double[B * H * N * N];
        for (int b = 0; b < B; b++)
            for (int h = 0; h < H; h++)
            {
                var s = new double[N, N];
                for (int i = 0; i < N; i++)
                    for (int j = 0; j < N; j++) s[i, j] = s0[((b * H + h) * N + i) * N + j];
                for (int p = 0; p < t; p++)
                {
                    int o = (b * t + p) * C + h * N;
                    var sa = new double[N];
                    for (int i = 0; i < N; i++)
                        for (int l = 0; l < N; l++) sa[i] += s[i, l] * x.A[o + l];
                    for (int i = 0; i < N; i++)
                        for (int j = 0; j < N; j++) s[i, j] = s[i, j] * x.W[o + j] + sa[i] * x.Bv[o + j] + x.V[o + i] * x.K[o + j];
                    for (int i = 0; i < N; i++)
                    {
                        double y = 0;
                        for (int j = 0; j < N; j++) y += s[i, j] * x.R[o + j];
                        expectedY[o + i] = y;
                    }
                }
                for (int i = 0; i < N; i++)
                    for (int j = 0; j < N; j++) expectedS[((b * H + h) * N + i) * N + j] = s[i, j];
            }
        Assert.Equal(new long[] { B, t, C }, result["y"].Shape);
        Numerics.AssertClose(expectedY, result["y"].Floats, Atol, Rtol, "y");
        Numerics.AssertClose(expectedS, result["s"].Floats, Atol, Rtol, "state");
    }

    [Fact]
    public void Whole_sequence_equals_two_chunks_passing_the_state()
    {
        const int t = 7, first = 3;
        var x = Random(new Random(17), t);
        using var graph = Graph();
        var zeros = new float[B * H * N * N];
        var whole = Run(graph, x, t, 0, t, zeros);
        var a = Run(graph, x, t, 0, first, zeros);
        var b = Run(graph, x, t, first, t, a["s"].Floats);
        // Same float32 steps in the same order: equal up to an ulp.
        Numerics.AssertClose(Numerics.SliceTime(whole["y"].Floats, B, t, C, 0, first), a["y"].Floats, 1e-6, what: "y, first chunk");
        Numerics.AssertClose(Numerics.SliceTime(whole["y"].Floats, B, t, C, first, t), b["y"].Floats, 1e-6, what: "y, second chunk");
        Numerics.AssertClose(whole["s"].Floats, b["s"].Floats, 1e-6, what: "state");
    }

    /// <summary>Values in RWKV-7's ranges: decay w in (0.545, 1), a = -kk and b = kk * rate with kk of unit-ish size.</summary>
    private static Inputs Random(Random random, int t) => new(
        R: Numerics.Uniform(random, B * t * C),
        W: Numerics.Uniform(random, B * t * C, 0.55, 1),
        K: Numerics.Uniform(random, B * t * C),
        V: Numerics.Uniform(random, B * t * C, -2, 2),
        A: Numerics.Uniform(random, B * t * C, -0.6, 0.6),
        Bv: Numerics.Uniform(random, B * t * C, -0.6, 0.6));

    private static GraphRun Graph()
    {
        var b = new GraphBuilder("delta_rule");
        Value In(string name) => b.Input(name, TensorDType.Float32, B, "sequence", C);
        var (y, s) = b.DeltaRuleScan(In("r"), In("w"), In("k"), In("v"), In("a"), In("b"),
            b.Input("s0", TensorDType.Float32, B, H, N, N), H, N);
        b.Output(y, "y");
        b.Output(s, "s");
        return GraphRun.Open(b);
    }

    /// <summary>Runs positions from..to of sequences of length t.</summary>
    private static IReadOnlyDictionary<string, HostTensor> Run(GraphRun graph, Inputs x, int t, int from, int to, float[] s0)
    {
        int len = to - from;
        HostTensor Slice(float[] v) => HostTensor.Of(Numerics.SliceTime(v, B, t, C, from, to), B, len, C);
        return graph.Run(("r", Slice(x.R)), ("w", Slice(x.W)), ("k", Slice(x.K)), ("v", Slice(x.V)), ("a", Slice(x.A)), ("b", Slice(x.Bv)),
            ("s0", HostTensor.Of(s0, B, H, N, N)));
    }
}
