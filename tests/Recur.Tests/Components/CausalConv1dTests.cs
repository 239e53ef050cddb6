using Recur.Graphs;
using Recur.Graphs.Weights;
using Recur.Tests.Support;

namespace Recur.Tests.Components;

/// <summary>The depthwise causal conv1d against a loop over [window, x] per channel.</summary>
public sealed class CausalConv1dTests
{
    private const int B = 2, C = 5, K = 4;
    // float32: each output is a sum of K products of O(1) values plus a bias; a few ulps.
    private const double Atol = 1e-5;

    [Theory]
    [InlineData(1, true)]   // fewer new positions than the window holds
    [InlineData(6, true)]
    [InlineData(3, false)]
    public void Matches_the_windowed_sum(int t, bool bias)
    {
        var random = new Random(30 + t);
        var weights = Weights(random, bias);
        var x = Numerics.Uniform(random, B * t * C);
        var window = Numerics.Uniform(random, B * C * (K - 1));
        using var graph = Graph(weights, bias);
        var result = graph.Run(("x", HostTensor.Of(x, B, t, C)), ("window", HostTensor.Of(window, B, C, K - 1)));

        var w = weights.ReadFloat32("conv1d.weight");
        var bs = bias ? weights.ReadFloat32("conv1d.bias") : new float[C];
        var expected = new double[B * t * C];
        var expectedWindow = new float[B * C * (K - 1)];
        for (int b = 0; b < B; b++)
            for (int c = 0; c < C; c++)
            {
                // The previous K-1 inputs, then the new ones.
                float In(int j) => j < K - 1 ? window[(b * C + c) * (K - 1) + j] : x[(b * t + j - (K - 1)) * C + c];
                for (int p = 0; p < t; p++)
                {
                    double sum = bs[c];
                    for (int k = 0; k < K; k++) sum += w[c * K + k] * In(p + k);
                    expected[(b * t + p) * C + c] = sum;
                }
                for (int j = 0; j < K - 1; j++) expectedWindow[(b * C + c) * (K - 1) + j] = In(t + j);
            }
        Assert.Equal(new long[] { B, t, C }, result["y"].Shape);
        Numerics.AssertClose(expected, result["y"].Floats, Atol, what: "y");
        Assert.Equal(expectedWindow, result["window_out"].Floats); // a copy of inputs: exact
    }

    [Fact]
    public void Whole_sequence_equals_one_position_at_a_time()
    {
        const int t = 7;
        var random = new Random(39);
        var weights = Weights(random, bias: true);
        var x = Numerics.Uniform(random, B * t * C);
        using var graph = Graph(weights, bias: true);
        var window = new float[B * C * (K - 1)];
        var whole = graph.Run(("x", HostTensor.Of(x, B, t, C)), ("window", HostTensor.Of(window, B, C, K - 1)));
        for (int p = 0; p < t; p++)
        {
            var step = graph.Run(("x", HostTensor.Of(Numerics.SliceTime(x, B, t, C, p, p + 1), B, 1, C)), ("window", HostTensor.Of(window, B, C, K - 1)));
            Numerics.AssertClose(Numerics.SliceTime(whole["y"].Floats, B, t, C, p, p + 1), step["y"].Floats, 1e-6, what: $"y at {p}");
            window = step["window_out"].Floats;
        }
        Assert.Equal(whole["window_out"].Floats, window);
    }

    private static MemoryTensors Weights(Random random, bool bias)
    {
        var weights = new MemoryTensors().Add("conv1d.weight", Numerics.Uniform(random, C * K), C, 1, K);
        if (bias) weights.Add("conv1d.bias", Numerics.Uniform(random, C), C);
        return weights;
    }

    private static GraphRun Graph(MemoryTensors weights, bool bias)
    {
        var b = new GraphBuilder("conv", weights: weights.Puller());
        var (y, window) = b.CausalConv1d(b.Input("x", TensorDType.Float32, B, "sequence", C), b.Input("window", TensorDType.Float32, B, C, K - 1),
            "conv1d.weight", bias ? "conv1d.bias" : null, C, K);
        b.Output(y, "y");
        b.Output(window, "window_out");
        return GraphRun.Open(b);
    }
}
