using Recur.Graphs;
using Recur.Graphs.Ir;
using Recur.Graphs.Weights;
using Recur.Tests.Support;

namespace Recur.Tests.Components;

/// <summary>The norms and activations against their formulas evaluated in double.</summary>
public sealed class NormsAndActivationsTests
{
    private const int B = 2, T = 3, F = 7;
    // float32 graphs of a few elementwise ops or one mean over F values: a few ulps of O(1) outputs.
    private const double Atol = 1e-5, Rtol = 1e-5;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]   // Gemma's (1 + weight)
    public void RmsNorm_matches_x_over_rms_times_weight(bool plusOne)
    {
        var random = new Random(plusOne ? 1 : 2);
        var x = Numerics.Uniform(random, B * T * F, -3, 3);
        var w = Numerics.Uniform(random, F);
        const float eps = 1e-6f;
        var weights = new MemoryTensors().Add("norm.weight", w, F);
        var y = RunUnary(new GraphBuilder("rms", weights: weights.Puller()), x, F, (b, v) => b.RmsNorm(v, "norm.weight", F, eps, plusOne));

        var expected = new double[x.Length];
        for (int row = 0; row < B * T; row++)
        {
            double meanSquare = 0;
            for (int i = 0; i < F; i++) meanSquare += (double)x[row * F + i] * x[row * F + i] / F;
            for (int i = 0; i < F; i++) expected[row * F + i] = x[row * F + i] / Math.Sqrt(meanSquare + eps) * (plusOne ? 1 + (double)w[i] : w[i]);
        }
        Numerics.AssertClose(expected, y, Atol, Rtol, "rms norm");
    }

    [Fact]
    public void LayerNorm_matches_centred_and_scaled_by_the_biased_variance()
    {
        var random = new Random(3);
        var x = Numerics.Uniform(random, B * T * F, -3, 3);
        for (int i = 0; i < F; i++) x[i] += 10; // a row with a large mean: centring must happen before squaring
        var w = Numerics.Uniform(random, F);
        var bias = Numerics.Uniform(random, F);
        const float eps = 1e-5f;
        var weights = new MemoryTensors().Add("ln.weight", w, F).Add("ln.bias", bias, F);
        var y = RunUnary(new GraphBuilder("ln", weights: weights.Puller()), x, F, (b, v) => b.LayerNorm(v, "ln.weight", "ln.bias", F, eps));

        var expected = new double[x.Length];
        for (int row = 0; row < B * T; row++)
        {
            double mean = 0, variance = 0;
            for (int i = 0; i < F; i++) mean += x[row * F + i] / (double)F;
            for (int i = 0; i < F; i++) variance += Math.Pow(x[row * F + i] - mean, 2) / F;
            for (int i = 0; i < F; i++) expected[row * F + i] = (x[row * F + i] - mean) / Math.Sqrt(variance + eps) * w[i] + bias[i];
        }
        Numerics.AssertClose(expected, y, Atol, Rtol, "layer norm");
    }

    [Fact]
    public void GroupNorm_normalises_each_group_alone_then_applies_the_per_channel_affine()
    {
        const int groups = 3, size = 4, width = groups * size;
        var random = new Random(4);
        var x = Numerics.Uniform(random, B * T * width, -3, 3);
        for (int i = 0; i < size; i++) x[i] += 10; // one group with a large mean of its own
        var w = Numerics.Uniform(random, width);
        var bias = Numerics.Uniform(random, width);
        const float eps = 64e-5f;
        var weights = new MemoryTensors().Add("gn.weight", w, width).Add("gn.bias", bias, width);
        var y = RunUnary(new GraphBuilder("gn", weights: weights.Puller()), x, width, (b, v) => b.GroupNorm(v, "gn.weight", "gn.bias", groups, size, eps));

        var expected = new double[x.Length];
        for (int row = 0; row < B * T; row++)
            for (int g = 0; g < groups; g++)
            {
                int o = row * width + g * size;
                double mean = 0, variance = 0;
                for (int i = 0; i < size; i++) mean += x[o + i] / (double)size;
                for (int i = 0; i < size; i++) variance += Math.Pow(x[o + i] - mean, 2) / size;
                for (int i = 0; i < size; i++) expected[o + i] = (x[o + i] - mean) / Math.Sqrt(variance + eps) * w[g * size + i] + bias[g * size + i];
            }
        Numerics.AssertClose(expected, y, Atol, Rtol, "group norm");
    }

    public static TheoryData<string> Activations => ["gelu_pytorch_tanh", "gelu", "silu", "relu"];

    [Theory]
    [MemberData(nameof(Activations))]
    public void Activation_matches_its_formula(string name)
    {
        var x = Numerics.Uniform(new Random(4), B * T * F, -6, 6).Concat([0f, -10f, 10f, 1e-4f]).ToArray();
        var y = RunUnary(new GraphBuilder(name), x, x.Length, (b, v) => b.Activation(name, v));
        Func<double, double> f = name switch
        {
            "gelu_pytorch_tanh" => v => 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v))),
            "gelu" => v => 0.5 * v * (1 + Erf(v / Math.Sqrt(2))),
            "silu" => v => v / (1 + Math.Exp(-v)),
            "relu" => v => Math.Max(v, 0),
            _ => throw new ArgumentOutOfRangeException(nameof(name)),
        };
        Numerics.AssertClose(x.Select(v => f(v)).ToArray(), y, Atol, Rtol, name);
    }

    [Fact]
    public void SoftCap_is_tanh_of_x_over_cap_times_cap()
    {
        const float cap = 30f;
        var x = Numerics.Uniform(new Random(5), B * T * F, -200, 200);
        var y = RunUnary(new GraphBuilder("cap"), x, F, (b, v) => b.SoftCap(v, cap));
        // Outputs reach ~30, so 1e-5 relative is the meaningful part.
        Numerics.AssertClose(x.Select(v => Math.Tanh(v / cap) * cap).ToArray(), y, Atol, Rtol, "soft cap");
        Assert.All(y, v => Assert.InRange(v, -cap, cap));
    }

    /// <summary>
    /// erf by its Maclaurin series: 2/sqrt(pi) sum (-1)^n x^(2n+1) / (n! (2n+1)). The alternating terms peak near
    /// e^(x^2) in size, so for |x| &lt;= 5 at most ~1e-7 is lost to cancellation; beyond 5, erf is +-1 to 1.5e-12.
    /// </summary>
    private static double Erf(double x)
    {
        if (Math.Abs(x) > 5) return Math.Sign(x);
        double term = x, sum = x;
        for (int n = 1; n < 200 && Math.Abs(term) > 1e-18 * Math.Abs(sum); n++)
        {
            term *= -x * x / n;
            sum += term / (2 * n + 1);
        }
        return 2 / Math.Sqrt(Math.PI) * sum;
    }

    /// <summary>Runs op on x viewed as rows of <paramref name="width"/>.</summary>
    private static float[] RunUnary(GraphBuilder b, float[] x, int width, Func<GraphBuilder, Value, Value> op)
    {
        b.Output(op(b, b.Input("x", TensorDType.Float32, "rows", width)), "y");
        using var graph = GraphRun.Open(b);
        return graph.Run(("x", HostTensor.Of(x, x.Length / width, width)))["y"].Floats;
    }
}
