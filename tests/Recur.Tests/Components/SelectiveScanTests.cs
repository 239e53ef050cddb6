using Recur.Graphs;
using Recur.Graphs.Ir;
using Recur.Graphs.Weights;
using Recur.Tests.Support;

namespace Recur.Tests.Components;

/// <summary>Mamba's selective scan against a double loop over h = exp(dt A) h + dt B x, y = C.h + D x.</summary>
public sealed class SelectiveScanTests
{
    private const int B = 2, I = 5, N = 3;
    // float32 graph; h stays O(1..10) and y sums N products, so a few float32 ulps of |y| plus 1e-5 absolute.
    private const double Atol = 1e-5, Rtol = 1e-5;

    private sealed record Inputs(float[] X, float[] Dt, float[] A, float[] Bm, float[] Cm, float[] D);

    [Theory]
    [InlineData(1, false)]
    [InlineData(6, false)]
    [InlineData(4, true)]
    public void Matches_the_recurrence(int t, bool givenState)
    {
        var random = new Random(100 + t);
        var inputs = Random(random, t);
        var h0 = givenState ? Numerics.Uniform(random, B * I * N, -2, 2) : new float[B * I * N];
        using var graph = Graph();
        var result = Run(graph, inputs, t, 0, t, h0);

        var expectedY = new double[B * t * I];
        var expectedH = new double[B * I * N];
        for (int b = 0; b < B; b++)
        {
            var h = new double[I, N];
            for (int i = 0; i < I; i++)
                for (int n = 0; n < N; n++) h[i, n] = h0[(b * I + i) * N + n];
            for (int p = 0; p < t; p++)
                for (int i = 0; i < I; i++)
                {
                    int xi = (b * t + p) * I + i;
                    double dt = inputs.Dt[xi], x = inputs.X[xi], y = inputs.D[i] * x;
                    for (int n = 0; n < N; n++)
                    {
                        int bi = (b * t + p) * N + n;
                        h[i, n] = Math.Exp(dt * inputs.A[i * N + n]) * h[i, n] + dt * inputs.Bm[bi] * x;
                        y += inputs.Cm[bi] * h[i, n];
                    }
                    expectedY[xi] = y;
                }
            for (int i = 0; i < I; i++)
                for (int n = 0; n < N; n++) expectedH[(b * I + i) * N + n] = h[i, n];
        }
        Assert.Equal(new long[] { B, t, I }, result["y"].Shape);
        Numerics.AssertClose(expectedY, result["y"].Floats, Atol, Rtol, "y");
        Numerics.AssertClose(expectedH, result["h"].Floats, Atol, Rtol, "h");
    }

    [Fact]
    public void Whole_sequence_equals_two_chunks_passing_the_state()
    {
        const int t = 7, first = 4;
        var inputs = Random(new Random(9), t);
        using var graph = Graph();
        var zeros = new float[B * I * N];
        var whole = Run(graph, inputs, t, 0, t, zeros);
        var a = Run(graph, inputs, t, 0, first, zeros);
        var b = Run(graph, inputs, t, first, t, a["h"].Floats);
        // Same float32 steps in the same order: equal up to an ulp.
        Numerics.AssertClose(SliceT(whole["y"].Floats, t, I, 0, first), a["y"].Floats, 1e-6, what: "y, first chunk");
        Numerics.AssertClose(SliceT(whole["y"].Floats, t, I, first, t), b["y"].Floats, 1e-6, what: "y, second chunk");
        Numerics.AssertClose(whole["h"].Floats, b["h"].Floats, 1e-6, what: "h");
    }

    private static Inputs Random(Random random, int t) => new(
        X: Numerics.Uniform(random, B * t * I, -2, 2),
        Dt: Numerics.Uniform(random, B * t * I, 0.01, 1),     // after softplus: positive
        A: Numerics.Uniform(random, I * N, -3, -0.1),         // -exp(A_log): negative
        Bm: Numerics.Uniform(random, B * t * N),
        Cm: Numerics.Uniform(random, B * t * N),
        D: Numerics.Uniform(random, I));

    private static GraphRun Graph()
    {
        var b = new GraphBuilder("ssm");
        Value In(string name, params Dim[] shape) => b.Input(name, TensorDType.Float32, shape);
        var (y, h) = b.SelectiveScan(In("x", B, "sequence", I), In("dt", B, "sequence", I), In("a", I, N),
            In("bm", B, "sequence", N), In("cm", B, "sequence", N), In("d", I), In("h0", B, I, N));
        b.Output(y, "y");
        b.Output(h, "h");
        return GraphRun.Open(b);
    }

    /// <summary>Runs positions from..to of sequences of length t.</summary>
    private static IReadOnlyDictionary<string, HostTensor> Run(GraphRun graph, Inputs x, int t, int from, int to, float[] h0)
    {
        int len = to - from;
        return graph.Run(("x", HostTensor.Of(SliceT(x.X, t, I, from, to), B, len, I)), ("dt", HostTensor.Of(SliceT(x.Dt, t, I, from, to), B, len, I)),
            ("a", HostTensor.Of(x.A, I, N)), ("bm", HostTensor.Of(SliceT(x.Bm, t, N, from, to), B, len, N)),
            ("cm", HostTensor.Of(SliceT(x.Cm, t, N, from, to), B, len, N)), ("d", HostTensor.Of(x.D, I)), ("h0", HostTensor.Of(h0, B, I, N)));
    }

    private static float[] SliceT(float[] x, int t, int c, int from, int to) => Numerics.SliceTime(x, B, t, c, from, to);
}
