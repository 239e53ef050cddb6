using Recur.Graphs;
using Recur.Graphs.Weights;
using Recur.Tests.Support;

namespace Recur.Tests.Components;

/// <summary>Scaled dot-product attention against a loop over heads, with grouped key/value heads, soft cap and bias.</summary>
public sealed class AttentionTests
{
    private const int B = 2, T = 3, S = 5, D = 3;
    // float32: a softmax over S scores of O(1) and a weighted mean of values in [-1, 1]; a few ulps.
    private const double Atol = 1e-5;

    public enum Bias { None, PerRow, PerHead, SharedAcrossBatch }

    [Theory]
    [InlineData(4, 4, Bias.None, null)]
    [InlineData(4, 2, Bias.None, null)]
    [InlineData(4, 1, Bias.None, null)]
    [InlineData(4, 2, Bias.PerRow, null)]             // [B, 1, T, S], a mask
    [InlineData(4, 2, Bias.PerHead, 5f)]              // [B, H, T, S], with a soft cap
    [InlineData(4, 1, Bias.SharedAcrossBatch, 5f)]    // [1, H, T, S], as a relative position bias
    [InlineData(4, 4, Bias.PerHead, 2f)]
    public void Matches_softmax_attention(int heads, int kvHeads, Bias biasKind, float? softCap)
    {
        var random = new Random(heads * 100 + kvHeads * 10 + (int)biasKind);
        const float scale = 0.7f;
        var q = Numerics.Uniform(random, B * heads * T * D, -2, 2);
        var k = Numerics.Uniform(random, B * kvHeads * S * D, -2, 2);
        var v = Numerics.Uniform(random, B * kvHeads * S * D);
        (int Batch, int Heads) biasShape = biasKind switch
        {
            Bias.PerRow => (B, 1),
            Bias.PerHead => (B, heads),
            Bias.SharedAcrossBatch => (1, heads),
            _ => (0, 0),
        };
        var bias = Numerics.Uniform(random, biasShape.Batch * biasShape.Heads * T * S, -3, 3);

        var b = new GraphBuilder("sdpa");
        var biasInput = biasKind == Bias.None ? null : b.Input("bias", TensorDType.Float32, biasShape.Batch, biasShape.Heads, T, S);
        b.Output(b.ScaledDotProductAttention(b.Input("q", TensorDType.Float32, "batch", heads, T, D), b.Input("k", TensorDType.Float32, "batch", kvHeads, S, D),
            b.Input("v", TensorDType.Float32, "batch", kvHeads, S, D), scale, biasInput, softCap), "y");
        using var graph = GraphRun.Open(b);
        var feeds = new List<(string, HostTensor)>
        {
            ("q", HostTensor.Of(q, B, heads, T, D)), ("k", HostTensor.Of(k, B, kvHeads, S, D)), ("v", HostTensor.Of(v, B, kvHeads, S, D)),
        };
        if (biasKind != Bias.None) feeds.Add(("bias", HostTensor.Of(bias, biasShape.Batch, biasShape.Heads, T, S)));
        var y = graph.Run([.. feeds])["y"];

        var expected = new double[B * heads * T * D];
        int group = heads / kvHeads;
        for (int bi = 0; bi < B; bi++)
            for (int h = 0; h < heads; h++)
            {
                int kv = h / group; // query heads kv * group .. kv * group + group - 1 share a key/value head (HF's repeat_kv)
                for (int t = 0; t < T; t++)
                {
                    var scores = new double[S];
                    for (int s = 0; s < S; s++)
                    {
                        double dot = 0;
                        for (int d = 0; d < D; d++) dot += q[((bi * heads + h) * T + t) * D + d] * k[((bi * kvHeads + kv) * S + s) * D + d];
                        dot *= scale;
                        if (softCap is float cap) dot = Math.Tanh(dot / cap) * cap;
                        if (biasKind != Bias.None)
                            dot += bias[(((biasShape.Batch == 1 ? 0 : bi) * biasShape.Heads + (biasShape.Heads == 1 ? 0 : h)) * T + t) * S + s];
                        scores[s] = dot;
                    }
                    double max = scores.Max(), total = scores.Sum(z => Math.Exp(z - max));
                    for (int d = 0; d < D; d++)
                    {
                        double sum = 0;
                        for (int s = 0; s < S; s++) sum += Math.Exp(scores[s] - max) / total * v[((bi * kvHeads + kv) * S + s) * D + d];
                        expected[((bi * heads + h) * T + t) * D + d] = sum;
                    }
                }
            }
        Assert.Equal(new long[] { B, heads, T, D }, y.Shape);
        Numerics.AssertClose(expected, y.Floats, Atol, what: "y");
    }
}
