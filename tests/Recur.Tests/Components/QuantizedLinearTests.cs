using Recur.Graphs;
using Recur.Graphs.Weights;
using Recur.Tests.Support;

namespace Recur.Tests.Components;

/// <summary>
/// int8 / int4 nn.Linear through MatMulNBits against a C# reference: the weights the quantiser claims to store
/// (dequantised in C#) times x in double. At accuracy_level 0 the op multiplies in float32, so the two agree to
/// float32 noise, which pins down the packing (low nibble first, padding of K, default zero point 2^(bits-1)).
/// </summary>
public sealed class QuantizedLinearTests
{
    private const int B = 2, T = 3;
    // float32 dot products of up to 70 O(1) terms: a few ulps of the sum of |x w|.
    private const double Atol = 2e-5, Rtol = 1e-5;

    [Theory]
    [InlineData(8, 32, true, 64, 5)]
    [InlineData(4, 32, true, 64, 5)]
    [InlineData(4, 32, true, 70, 9)]    // K not a multiple of the block: the last block is padded
    [InlineData(4, 16, false, 40, 6)]   // asymmetric, with zero points packed two per byte
    [InlineData(8, 16, false, 23, 3)]   // K smaller than two blocks, asymmetric 8-bit
    [InlineData(4, 64, true, 17, 4)]    // one padded block (K < block size)
    public void Quantized_linear_is_x_times_the_dequantised_weight(int bits, int blockSize, bool symmetric, int inFeatures, int outFeatures)
    {
        var q = new WeightQuantization(bits, blockSize, symmetric, accuracyLevel: 0);
        var random = new Random(bits * 1000 + blockSize + inFeatures);
        var x = Numerics.Uniform(random, B * T * inFeatures, -2, 2);
        var w = Numerics.Uniform(random, outFeatures * inFeatures);
        var bias = Numerics.Uniform(random, outFeatures);
        const float scale = 0.5f;
        var weights = new MemoryTensors().Add("proj.weight", w, outFeatures, inFeatures).Add("proj.bias", bias, outFeatures);
        var b = new GraphBuilder("linear_q", weights: weights.Puller()) { Quantization = q };
        b.Output(b.Linear(b.Input("x", TensorDType.Float32, B, "sequence", inFeatures), "proj.weight", inFeatures, outFeatures, "proj.bias", scale), "y");
        Assert.Contains(GraphBuilder.MicrosoftDomain, b.Domains);
        using var graph = GraphRun.Open(b);
        var y = graph.Run(("x", HostTensor.Of(x, B, T, inFeatures)))["y"];

        var scaled = w.Select(v => v * scale).ToArray();
        var dequantised = q.Dequantize(q.Quantize(scaled, outFeatures, inFeatures), outFeatures, inFeatures);
        var expected = new double[B * T * outFeatures];
        for (int row = 0; row < B * T; row++)
            for (int o = 0; o < outFeatures; o++)
            {
                double sum = bias[o];
                for (int i = 0; i < inFeatures; i++) sum += x[row * inFeatures + i] * (double)dequantised[o * inFeatures + i];
                expected[row * outFeatures + o] = sum;
            }
        Assert.Equal(new long[] { B, T, outFeatures }, y.Shape);
        Numerics.AssertClose(expected, y.Floats, Atol, Rtol, "y");
    }

    [Theory]
    [InlineData(8, true)]
    [InlineData(8, false)]
    [InlineData(4, true)]
    [InlineData(4, false)]
    public void Dequantised_weights_are_within_one_step_and_really_rounded(int bits, bool symmetric)
    {
        const int n = 7, k = 50;
        var q = new WeightQuantization(bits, 16, symmetric);
        var w = Numerics.Uniform(new Random(bits + (symmetric ? 10 : 20)), n * k, -3, 3);
        w[5] = 0; // zero is a code in both schemes, so it comes back exact
        var m = q.Quantize(w, n, k);
        Assert.Equal(n * q.Blocks(k) * q.BlobSize, m.Codes.Length);
        Assert.Equal(n * q.Blocks(k), m.Scales.Length);
        Assert.Equal(symmetric ? 0 : n * q.ZeroPointBytes(k), m.ZeroPoints?.Length ?? 0);
        var d = q.Dequantize(m, n, k);
        int moved = 0;
        for (int r = 0; r < n; r++)
            for (int c = 0; c < k; c++)
            {
                double step = Math.Abs(m.Scales[r * q.Blocks(k) + c / 16]);
                double err = Math.Abs(d[r * k + c] - w[r * k + c]);
                // A symmetric block's extreme is exact and the opposite end may clamp one step short; else half a step.
                Assert.True(err <= step * (1 + 1e-6), $"w[{r}, {c}] = {w[r * k + c]} came back as {d[r * k + c]} (step {step})");
                if (err > 1e-7) moved++;
            }
        Assert.Equal(0f, d[5]);
        Assert.True(moved > n * k / 2, $"only {moved} of {n * k} weights changed: not quantised?");
    }

    [Fact]
    public void Tied_table_is_gathered_in_float32_and_multiplied_quantised()
    {
        const int vocab = 11, hidden = 40;
        var table = Numerics.Uniform(new Random(7), vocab * hidden);
        var weights = new MemoryTensors().Add("embed.weight", table, vocab, hidden);
        var puller = weights.Puller();
        var q = new WeightQuantization(4, accuracyLevel: 0);
        var b = new GraphBuilder("tied_q", weights: puller) { Quantization = q };
        var tables = b.Embeddings("embed.weight", vocab, hidden, tied: true, "lm_head.weight");
        var ids = b.Input("ids", TensorDType.Int64, 1, "sequence");
        var embedded = b.Embed(tables, ids);
        b.Output(embedded, "embedded");
        b.Output(b.LmHead(tables, embedded), "logits");
        Assert.Empty(puller.Unused());
        using var graph = GraphRun.Open(b);
        long[] tokens = [3, 0, 10];
        var outputs = graph.Run(("ids", HostTensor.Of(tokens, 1, tokens.Length)));

        var dequantised = q.Dequantize(q.Quantize(table, vocab, hidden), vocab, hidden);
        var expectedRows = tokens.SelectMany(t => table.AsSpan((int)t * hidden, hidden).ToArray()).ToArray();
        Assert.Equal(expectedRows, outputs["embedded"].Floats); // the gather reads the float table: exact
        var expectedLogits = new double[tokens.Length * vocab];
        for (int p = 0; p < tokens.Length; p++)
            for (int v = 0; v < vocab; v++)
                for (int i = 0; i < hidden; i++)
                    expectedLogits[p * vocab + v] += expectedRows[p * hidden + i] * (double)dequantised[v * hidden + i];
        Numerics.AssertClose(expectedLogits, outputs["logits"].Floats, Atol, Rtol, "logits");
    }
}
