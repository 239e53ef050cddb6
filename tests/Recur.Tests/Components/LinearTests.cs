using Recur.Graphs;
using Recur.Graphs.Weights;
using Recur.Tests.Support;

namespace Recur.Tests.Components;

/// <summary>nn.Linear (float32 and float16 weights) and the gated MLP against matrix loops in double.</summary>
public sealed class LinearTests
{
    private const int B = 2, T = 3, In = 7, Out = 5;
    // float32: dot products of 7 O(1) terms, a few ulps.
    private const double Atol = 1e-5, Rtol = 1e-5;

    [Theory]
    [InlineData(false, 1f)]
    [InlineData(true, 0.5f)]   // a bias, and a scale folded into the weight
    public void Float32_linear_is_x_times_w_transposed_plus_bias(bool bias, float scale)
    {
        var random = new Random(bias ? 1 : 2);
        var x = Numerics.Uniform(random, B * T * In, -2, 2);
        var w = Numerics.Uniform(random, Out * In);
        var bs = Numerics.Uniform(random, Out);
        var weights = new MemoryTensors().Add("proj.weight", w, Out, In).Add("proj.bias", bs, Out);
        var b = new GraphBuilder("linear", weights: weights.Puller());
        b.Output(b.Linear(b.Input("x", TensorDType.Float32, B, "sequence", In), "proj.weight", In, Out, bias ? "proj.bias" : null, scale), "y");
        using var graph = GraphRun.Open(b);
        var y = graph.Run(("x", HostTensor.Of(x, B, T, In)))["y"];

        var expected = new double[B * T * Out];
        for (int row = 0; row < B * T; row++)
            for (int o = 0; o < Out; o++)
            {
                double sum = bias ? bs[o] : 0;
                for (int i = 0; i < In; i++) sum += x[row * In + i] * (double)w[o * In + i] * scale;
                expected[row * Out + o] = sum;
            }
        Assert.Equal(new long[] { B, T, Out }, y.Shape);
        Numerics.AssertClose(expected, y.Floats, Atol, Rtol, "y");
    }

    [Fact]
    public void Float16_linear_matches_a_float16_rounded_reference()
    {
        var random = new Random(3);
        var x = Numerics.Uniform(random, B * T * In, -2, 2);
        var w = Numerics.Uniform(random, Out * In);
        var bs = Numerics.Uniform(random, Out);
        var weights = new MemoryTensors().Add("proj.weight", w, Out, In).Add("proj.bias", bs, Out);
        var b = new GraphBuilder("linear16", weights: weights.Puller()) { MatrixWeightType = TensorDType.Float16 };
        b.Output(b.Linear(b.Input("x", TensorDType.Float32, B, "sequence", In), "proj.weight", In, Out, "proj.bias"), "y");
        using var graph = GraphRun.Open(b);
        var y = graph.Run(("x", HostTensor.Of(x, B, T, In)))["y"].Floats;

        // The weight is stored as float16, so the reference rounds W to float16. What happens to x depends on the
        // provider's kernels, and each way has a tight reference:
        // - a float16 MatMul kernel: x rounded to float16 too, the sum rounded to float16 (within the standard bound of a
        //   float16 sum of In products and its rounding, (In + 1) * 2^-11 * sum |x_i w_i|), so y - bias is a float16 value;
        // - none (x86 CPU): ONNX Runtime wraps the MatMul in casts to float32 and then drops the float32 -> float16 ->
        //   float32 pair around x, so float32 x meets the float16-rounded W in a float32 MatMul (a few float32 ulps).
        int mismatchedFromFloat32 = 0;
        for (int row = 0; row < B * T; row++)
            for (int o = 0; o < Out; o++)
            {
                double halves = 0, magnitude = 0, float32 = 0, halfWeights = 0;
                for (int i = 0; i < In; i++)
                {
                    double xi = x[row * In + i], wi = w[o * In + i], wh = (double)(Half)w[o * In + i];
                    halves += (double)(Half)x[row * In + i] * wh;
                    magnitude += Math.Abs(xi * wh);
                    float32 += xi * wi;
                    halfWeights += xi * wh;
                }
                double actual = y[row * Out + o], product = actual - bs[o];
                bool floatPath = Math.Abs(actual - (halfWeights + bs[o])) <= Atol;
                bool halfPath = Math.Abs(product - halves) <= (In + 1) * Math.Pow(2, -11) * magnitude + 1e-6
                    && Math.Abs(product - (double)(Half)product) <= Math.Pow(2, -23) * Math.Max(Math.Abs(actual), Math.Abs(bs[o]));
                Assert.True(floatPath || halfPath,
                    $"y[{row}, {o}] = {actual:R}: neither float32 x times float16 W ({halfWeights + bs[o]:R}) nor a float16 product near {halves + bs[o]:R}");
                if (Math.Abs(actual - (float32 + bs[o])) > 1e-5) mismatchedFromFloat32++;
            }
        Assert.True(mismatchedFromFloat32 > 0, "float16 weights should round some outputs away from the float32 ones");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void GatedMlp_is_down_of_act_gate_times_up(bool biases)
    {
        const int hidden = 5, intermediate = 7;
        var random = new Random(biases ? 4 : 5);
        var x = Numerics.Uniform(random, B * T * hidden, -2, 2);
        var weights = new MemoryTensors();
        var mats = new Dictionary<string, float[]>();
        var vecs = new Dictionary<string, float[]>();
        foreach (var (proj, rows, cols) in new[] { ("gate_proj", intermediate, hidden), ("up_proj", intermediate, hidden), ("down_proj", hidden, intermediate) })
        {
            mats[proj] = Numerics.Uniform(random, rows * cols);
            vecs[proj] = biases ? Numerics.Uniform(random, rows) : new float[rows];
            weights.Add($"mlp.{proj}.weight", mats[proj], rows, cols);
            if (biases) weights.Add($"mlp.{proj}.bias", vecs[proj], rows);
        }
        var puller = weights.Puller();
        var b = new GraphBuilder("mlp", weights: puller);
        b.Output(b.GatedMlp(b.Input("x", TensorDType.Float32, B, "sequence", hidden), "mlp", hidden, intermediate, "gelu_pytorch_tanh", biases), "y");
        using var graph = GraphRun.Open(b);
        var y = graph.Run(("x", HostTensor.Of(x, B, T, hidden)))["y"].Floats;
        Assert.Empty(puller.Unused()); // every projection (and bias) was pulled by its name

        double[] Project(string proj, double[] v, int rows, int cols)
        {
            var result = new double[rows];
            for (int r = 0; r < rows; r++)
            {
                result[r] = vecs[proj][r];
                for (int c = 0; c < cols; c++) result[r] += mats[proj][r * cols + c] * v[c];
            }
            return result;
        }
        static double GeluTanh(double v) => 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
        var expected = new double[B * T * hidden];
        for (int row = 0; row < B * T; row++)
        {
            var v = Enumerable.Range(0, hidden).Select(i => (double)x[row * hidden + i]).ToArray();
            var gate = Project("gate_proj", v, intermediate, hidden);
            var up = Project("up_proj", v, intermediate, hidden);
            var down = Project("down_proj", gate.Zip(up, (g, u) => GeluTanh(g) * u).ToArray(), hidden, intermediate);
            Array.Copy(down, 0, expected, row * hidden, hidden);
        }
        Numerics.AssertClose(expected, y, Atol, Rtol, "y");
    }
}
