using Recur.Graphs;
using Recur.Graphs.Ir;
using Recur.Graphs.Weights;
using Recur.Tests.Support;

namespace Recur.Tests.Components;

/// <summary>Griffin's RG-LRU against a double loop over the gates, the decay and the reset at position 0.</summary>
public sealed class RgLruTests
{
    // An odd width of three heads of five: the block-diagonal gates must not mix heads.
    private const int B = 2, Heads = 3, Block = 5, W = Heads * Block;
    // float32 graph: the gates and sqrt(1 - a^2) carry a few ulps each (the sqrt's argument stays >= ~0.05 for these
    // inputs, so it is not ill-conditioned) and h is a decaying sum of O(1) terms: 1e-5 absolute and relative.
    private const double Atol = 1e-5, Rtol = 1e-5;

    [Fact]
    public void Matches_the_gated_recurrence_with_resets()
    {
        const int t = 5;
        var random = new Random(21);
        var weights = RandomWeights(random);
        var x = Numerics.Uniform(random, B * t * W, -2, 2);
        // Row 0 starts a sequence (its given state must be dropped); row 1 continues its state and restarts at position 2.
        var reset = new bool[B * t];
        reset[0] = true;
        reset[t + 2] = true;
        var h0 = Numerics.Uniform(random, B * W, -3, 3);
        using var graph = Graph(weights);
        var result = graph.Run(("x", HostTensor.Of(x, B, t, W)), ("reset", HostTensor.Of(reset, B, t)), ("h0", HostTensor.Of(h0, B, W)));

        var (expected, expectedState) = Reference(weights, x, reset, h0, t);
        Numerics.AssertClose(expected, result["y"].Floats, Atol, Rtol, "y");
        Numerics.AssertClose(expectedState, result["h"].Floats, Atol, Rtol, "h");
    }

    [Fact]
    public void A_single_step_matches_the_reference()
    {
        var random = new Random(22);
        var weights = RandomWeights(random);
        var x = Numerics.Uniform(random, B * W, -2, 2);
        var reset = new[] { false, true };
        var h0 = Numerics.Uniform(random, B * W, -3, 3);
        using var graph = Graph(weights);
        var result = graph.Run(("x", HostTensor.Of(x, B, 1, W)), ("reset", HostTensor.Of(reset, B, 1)), ("h0", HostTensor.Of(h0, B, W)));
        var (expected, expectedState) = Reference(weights, x, reset, h0, 1);
        Numerics.AssertClose(expected, result["y"].Floats, Atol, Rtol, "y");
        Numerics.AssertClose(expectedState, result["h"].Floats, Atol, Rtol, "h");
    }

    [Fact]
    public void Whole_sequence_equals_two_chunks_passing_the_state()
    {
        const int t = 6, first = 2;
        var random = new Random(23);
        var weights = RandomWeights(random);
        var x = Numerics.Uniform(random, B * t * W, -2, 2);
        var reset = new bool[B * t];
        reset[0] = reset[t] = true;
        var zeros = new float[B * W];
        using var graph = Graph(weights);
        IReadOnlyDictionary<string, HostTensor> Run(int from, int to, float[] h) => graph.Run(
            ("x", HostTensor.Of(Numerics.SliceTime(x, B, t, W, from, to), B, to - from, W)),
            ("reset", HostTensor.Of(Numerics.SliceTime(reset, B, t, 1, from, to), B, to - from)), ("h0", HostTensor.Of(h, B, W)));
        var whole = Run(0, t, zeros);
        var a = Run(0, first, zeros);
        var b = Run(first, t, a["h"].Floats);
        Numerics.AssertClose(Numerics.SliceTime(whole["y"].Floats, B, t, W, 0, first), a["y"].Floats, 1e-6, what: "y, first chunk");
        Numerics.AssertClose(Numerics.SliceTime(whole["y"].Floats, B, t, W, first, t), b["y"].Floats, 1e-6, what: "y, second chunk");
        Numerics.AssertClose(whole["h"].Floats, b["h"].Floats, 1e-6, what: "h");
    }

    private static MemoryTensors RandomWeights(Random random)
    {
        var param = Numerics.Uniform(random, W, -2, 3);
        param[0] = 25f; // beyond PyTorch's softplus threshold of 20, where softplus(p) = p
        return new MemoryTensors()
            .Add("lru.recurrent_param", param, W)
            .Add("lru.input_gate_weight", Numerics.Uniform(random, Heads * Block * Block, -0.5, 0.5), Heads, Block, Block)
            .Add("lru.input_gate_bias", Numerics.Uniform(random, Heads * Block), Heads, Block)
            .Add("lru.recurrent_gate_weight", Numerics.Uniform(random, Heads * Block * Block, -0.5, 0.5), Heads, Block, Block)
            .Add("lru.recurrent_gate_bias", Numerics.Uniform(random, Heads * Block), Heads, Block);
    }

    private static GraphRun Graph(MemoryTensors weights)
    {
        var b = new GraphBuilder("rglru", weights: weights.Puller());
        var (y, h) = b.RgLru(b.Input("x", TensorDType.Float32, B, "sequence", W), b.Input("reset", TensorDType.Bool, B, "sequence"),
            b.Input("h0", TensorDType.Float32, B, W), "lru", W, Heads);
        b.Output(y, "y");
        b.Output(h, "h");
        return GraphRun.Open(b);
    }

    private static (double[] Y, double[] H) Reference(MemoryTensors weights, float[] x, bool[] reset, float[] h0, int t)
    {
        var param = weights.ReadFloat32("lru.recurrent_param");
        var wi = weights.ReadFloat32("lru.input_gate_weight");
        var bi = weights.ReadFloat32("lru.input_gate_bias");
        var wr = weights.ReadFloat32("lru.recurrent_gate_weight");
        var br = weights.ReadFloat32("lru.recurrent_gate_bias");
        static double Sigmoid(double v) => 1 / (1 + Math.Exp(-v));
        // x_h @ W[h] + b[h] for the head of channel `head * Block + j`.
        double Gate(float[] w, float[] bias, int row, int head, int j)
        {
            double sum = bias[head * Block + j];
            for (int i = 0; i < Block; i++) sum += x[row * W + head * Block + i] * w[(head * Block + i) * Block + j];
            return sum;
        }

        var y = new double[B * t * W];
        var state = new double[B * W];
        for (int b = 0; b < B; b++)
            for (int c = 0; c < W; c++)
            {
                int head = c / Block, j = c % Block;
                double softplus = Math.Log(1 + Math.Exp(param[c]));
                double h = h0[b * W + c];
                for (int p = 0; p < t; p++)
                {
                    int row = b * t + p;
                    double input = Sigmoid(Gate(wi, bi, row, head, j));
                    double recurrent = Sigmoid(Gate(wr, br, row, head, j));
                    double logA = -8 * recurrent * softplus;
                    double a = Math.Exp(logA);
                    bool r = reset[row];
                    double multiplier = r ? 1 : Math.Sqrt(1 - a * a);
                    h = (r ? 0 : a) * h + x[row * W + c] * input * multiplier;
                    y[row * W + c] = h;
                }
                state[b * W + c] = h;
            }
        return (y, state);
    }
}
