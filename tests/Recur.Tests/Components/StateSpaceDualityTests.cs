using Recur.Graphs;
using Recur.Graphs.Ir;
using Recur.Graphs.Weights;
using Recur.Tests.Support;

namespace Recur.Tests.Components;

/// <summary>
/// Mamba-2's chunked SSD scan against a loop over h = exp(dt A) h + dt x (outer) B, y = h . C + D x per head,
/// head h reading group h / (H / G): chunk sizes that divide the length and ones that do not, one chunk, a
/// single position (the decode branch), a given initial state, and calls split anywhere.
/// </summary>
public sealed class StateSpaceDualityTests
{
    private const int B = 2, H = 4, P = 3, G = 2, N = 5;
    // float32 graph summing up to T * N products of O(1) terms in another order than the loop.
    private const double Atol = 2e-5, Rtol = 2e-5;

    private sealed record Inputs(float[] X, float[] Dt, float[] A, float[] Bm, float[] Cm, float[] D);

    [Theory]
    [InlineData(11, 4, false)]   // 3 chunks, the last padded
    [InlineData(11, 3, true)]
    [InlineData(12, 4, true)]    // chunks that divide the length
    [InlineData(13, 8, true)]    // evened out: 2 chunks of 7, the last padded by one
    [InlineData(11, 1, false)]   // one position per chunk: all in the scan over chunks
    [InlineData(11, 11, true)]   // one chunk: no scan
    [InlineData(7, 64, true)]    // a chunk longer than the call
    [InlineData(1, 4, true)]     // one position: the recurrence itself
    public void Matches_the_recurrence(int t, int chunk, bool givenState)
    {
        var random = new Random(1000 * t + chunk);
        var inputs = Random(random, t);
        var h0 = givenState ? Numerics.Uniform(random, B * H * P * N, -2, 2) : new float[B * H * P * N];
        using var graph = Graph(chunk);
        var result = Run(graph, inputs, t, 0, t, h0);
        var (y, h) = Reference(inputs, t, h0);
        Assert.Equal(new long[] { B, t, H, P }, result["y"].Shape);
        Assert.Equal(new long[] { B, H, P, N }, result["h"].Shape);
        Numerics.AssertClose(y, result["y"].Floats, Atol, Rtol, "y");
        Numerics.AssertClose(h, result["h"].Floats, Atol, Rtol, "h");
    }

    [Theory]
    [InlineData(3, 5)]
    [InlineData(1, 9)]
    [InlineData(8, 1)]
    public void Calls_split_anywhere_pass_the_state(int first, int chunk)
    {
        const int t = 13;
        var inputs = Random(new Random(7 + first), t);
        var zeros = new float[B * H * P * N];
        using var graph = Graph(chunk);
        var a = Run(graph, inputs, t, 0, first, zeros);
        var b = Run(graph, inputs, t, first, t, a["h"].Floats);
        var (y, h) = Reference(inputs, t, zeros);
        Numerics.AssertClose(SliceT(y, t, H * P, 0, first), a["y"].Floats, Atol, Rtol, "y, first call");
        Numerics.AssertClose(SliceT(y, t, H * P, first, t), b["y"].Floats, Atol, Rtol, "y, second call");
        Numerics.AssertClose(h, b["h"].Floats, Atol, Rtol, "h");
    }

    [Fact]
    public void Strong_decay_over_a_long_chunk_stays_finite()
    {
        // dt A down to -60 per position: exp of the summed decay underflows to 0 across the chunk; a decay
        // mask taken as exp(cum_t - cum_s) would meet exp(+large) = inf above the diagonal, and inf * 0 = NaN.
        const int t = 32;
        var random = new Random(5);
        var inputs = Random(random, t) with { Dt = Numerics.Uniform(random, B * t * H, 5, 20), A = Numerics.Uniform(random, H, -3, -1) };
        using var graph = Graph(32);
        var result = Run(graph, inputs, t, 0, t, new float[B * H * P * N]);
        var (y, h) = Reference(inputs, t, new float[B * H * P * N]);
        Numerics.AssertClose(y, result["y"].Floats, 1e-4, 1e-4, "y");
        Numerics.AssertClose(h, result["h"].Floats, 1e-4, 1e-4, "h");
    }

    private static (double[] Y, double[] H) Reference(Inputs x, int t, float[] h0)
    {
        var y = new double[B * t * H * P];
        var h = h0.Select(v => (double)v).ToArray();
        for (int b = 0; b < B; b++)
            for (int p = 0; p < t; p++)
                for (int head = 0; head < H; head++)
                {
                    int g = head / (H / G);
                    double dt = x.Dt[(b * t + p) * H + head], decay = Math.Exp(dt * x.A[head]);
                    for (int i = 0; i < P; i++)
                    {
                        double xi = x.X[((b * t + p) * H + head) * P + i], sum = x.D[head] * xi;
                        for (int n = 0; n < N; n++)
                        {
                            int state = ((b * H + head) * P + i) * N + n, group = ((b * t + p) * G + g) * N + n;
                            h[state] = decay * h[state] + dt * xi * x.Bm[group];
                            sum += h[state] * x.Cm[group];
                        }
                        y[((b * t + p) * H + head) * P + i] = sum;
                    }
                }
        return (y, h);
    }

    private static Inputs Random(Random random, int t) => new(
        X: Numerics.Uniform(random, B * t * H * P, -2, 2),
        Dt: Numerics.Uniform(random, B * t * H, 0.01, 1),     // after softplus: positive
        A: Numerics.Uniform(random, H, -3, -0.1),             // -exp(A_log): negative, one per head
        Bm: Numerics.Uniform(random, B * t * G * N),
        Cm: Numerics.Uniform(random, B * t * G * N),
        D: Numerics.Uniform(random, H));

    private static GraphRun Graph(int chunk)
    {
        var b = new GraphBuilder("ssd");
        Value In(string name, params Dim[] shape) => b.Input(name, TensorDType.Float32, shape);
        var (y, h) = b.StateSpaceDuality(In("x", B, "sequence", H, P), In("dt", B, "sequence", H), In("a", H),
            In("bm", B, "sequence", G, N), In("cm", B, "sequence", G, N), In("d", H), In("h0", B, H, P, N), chunk);
        b.Output(y, "y");
        b.Output(h, "h");
        return GraphRun.Open(b);
    }

    /// <summary>Runs positions from..to of sequences of length t.</summary>
    private static IReadOnlyDictionary<string, HostTensor> Run(GraphRun graph, Inputs x, int t, int from, int to, float[] h0)
    {
        int len = to - from;
        return graph.Run(("x", HostTensor.Of(SliceT(x.X, t, H * P, from, to), B, len, H, P)), ("dt", HostTensor.Of(SliceT(x.Dt, t, H, from, to), B, len, H)),
            ("a", HostTensor.Of(x.A, H)), ("bm", HostTensor.Of(SliceT(x.Bm, t, G * N, from, to), B, len, G, N)),
            ("cm", HostTensor.Of(SliceT(x.Cm, t, G * N, from, to), B, len, G, N)), ("d", HostTensor.Of(x.D, H)), ("h0", HostTensor.Of(h0, B, H, P, N)));
    }

    private static T[] SliceT<T>(T[] x, int t, int c, int from, int to) => Numerics.SliceTime(x, B, t, c, from, to);
}
