using Recur.Graphs;
using Recur.Graphs.Ir;
using Recur.Graphs.Weights;
using Recur.Tests.Support;

namespace Recur.Tests.Components;

/// <summary>
/// Attention over a key/value cache, with positions from the attention mask, against a loop that applies the rule
/// literally: query at position qp sees key s when the mask has a token there, its position is &lt;= qp and, with a
/// window W, &gt; qp - W. A query that sees no key (padding before any token) averages all values, as a softmax over
/// equal (float32 lowest) scores does.
/// </summary>
public sealed class CachedAttentionTests
{
    private const int B = 2, D = 3;
    private const float Scale = 0.6f;
    // float32 softmax and weighted mean of values in [-1, 1]: a few ulps.
    private const double Atol = 1e-5;

    // Row 0 is left-padded by two; row 1 is all tokens.
    private static readonly long[] Mask = [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1];
    private const int Total = 7;

    private sealed record Case(int Heads, int KvHeads, float? SoftCap, long? Window, float[] Q, float[] K, float[] V);

    [Theory]
    [InlineData(4, 2, null, null)]
    [InlineData(4, 1, 5f, null)]
    [InlineData(4, 2, null, 3L)]      // sliding window: each query sees itself and the two positions before
    [InlineData(2, 2, 5f, 1L)]        // a window of 1: only itself
    public void Whole_prompt_matches_the_masking_rule(int heads, int kvHeads, float? softCap, long? window)
    {
        var c = RandomCase(new Random(heads * 10 + kvHeads + (int)(window ?? 0)), heads, kvHeads, softCap, window);
        using var graph = Graph(c);
        var result = Call(graph, c, 0, Total, new float[0], new float[0]);
        CheckCall(c, result, 0, Total, new float[0], new float[0]);

        // Positions count from each row's first token; padding gets 1.
        Assert.Equal(new long[] { 1, 1, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6 }, result["positions"].Longs);
    }

    [Theory]
    [InlineData(4, 2, null, null)]
    [InlineData(4, 2, 5f, 3L)]
    public void Chunks_through_the_cache_equal_the_whole_prompt_on_every_token(int heads, int kvHeads, float? softCap, long? window)
    {
        var c = RandomCase(new Random(77), heads, kvHeads, softCap, window);
        using var graph = Graph(c);
        var whole = Call(graph, c, 0, Total, new float[0], new float[0]);

        // 2 positions (row 0: padding only, nothing to see), then 4, then a single decode step.
        int[] bounds = [0, 2, 6, Total];
        float[] pastKey = [], pastValue = [];
        for (int i = 0; i + 1 < bounds.Length; i++)
        {
            int from = bounds[i], to = bounds[i + 1];
            var result = Call(graph, c, from, to, pastKey, pastValue);
            CheckCall(c, result, from, to, pastKey, pastValue);
            // Real tokens see the same keys either way; padding queries do not (they see whatever the call holds).
            var y = result["y"].Floats;
            var wholeY = whole["y"].Floats;
            for (int b = 0; b < B; b++)
                for (int h = 0; h < heads; h++)
                    for (int t = from; t < to; t++)
                        if (Mask[b * Total + t] != 0)
                            for (int d = 0; d < D; d++)
                                Assert.Equal(wholeY[((b * heads + h) * Total + t) * D + d], y[((b * heads + h) * (to - from) + t - from) * D + d], 1e-6);
            pastKey = result["key"].Floats;
            pastValue = result["value"].Floats;
        }
        Assert.Equal(whole["key"].Floats, pastKey);
        Assert.Equal(whole["value"].Floats, pastValue);
    }

    private static Case RandomCase(Random random, int heads, int kvHeads, float? softCap, long? window) => new(heads, kvHeads, softCap, window,
        Numerics.Uniform(random, B * heads * Total * D, -2, 2), Numerics.Uniform(random, B * kvHeads * Total * D, -2, 2),
        Numerics.Uniform(random, B * kvHeads * Total * D));

    private static GraphRun Graph(Case c)
    {
        var b = new GraphBuilder("cached");
        Value In(string name, params Dim[] shape) => b.Input(name, TensorDType.Float32, shape);
        var q = In("q", B, c.Heads, "sequence", D);
        var mask = b.Input("attention_mask", TensorDType.Int64, B, "total");
        var keyPositions = b.MaskPositions(mask);
        var queryPositions = b.Slice(keyPositions, b.Sub(b.Ints(0), b.DimOf(q, 2)), b.Ints(long.MaxValue), [1]);
        var (y, key, value) = b.CachedAttention(q, In("k", B, c.KvHeads, "sequence", D), In("v", B, c.KvHeads, "sequence", D),
            In("past_key", B, c.KvHeads, "past", D), In("past_value", B, c.KvHeads, "past", D), queryPositions, keyPositions, mask,
            Scale, c.SoftCap, c.Window);
        b.Output(y, "y");
        b.Output(key, "key");
        b.Output(value, "value");
        b.Output(keyPositions, "positions");
        return GraphRun.Open(b);
    }

    /// <summary>Feeds positions from..to with the cache of positions 0..from.</summary>
    private static IReadOnlyDictionary<string, HostTensor> Call(GraphRun graph, Case c, int from, int to, float[] pastKey, float[] pastValue) =>
        graph.Run(
            ("q", HostTensor.Of(Heads(c.Q, c.Heads, from, to), B, c.Heads, to - from, D)),
            ("k", HostTensor.Of(Heads(c.K, c.KvHeads, from, to), B, c.KvHeads, to - from, D)),
            ("v", HostTensor.Of(Heads(c.V, c.KvHeads, from, to), B, c.KvHeads, to - from, D)),
            ("past_key", HostTensor.Of(pastKey, B, c.KvHeads, from, D)),
            ("past_value", HostTensor.Of(pastValue, B, c.KvHeads, from, D)),
            ("attention_mask", HostTensor.Of(Numerics.SliceTime(Mask, B, Total, 1, 0, to), B, to)));

    /// <summary>Positions from..to of a [B, heads, Total, D] array.</summary>
    private static float[] Heads(float[] x, int heads, int from, int to) => Numerics.SliceTime(x, B * heads, Total, D, from, to);

    private static void CheckCall(Case c, IReadOnlyDictionary<string, HostTensor> result, int from, int to, float[] pastKey, float[] pastValue)
    {
        int t = to - from, total = to, group = c.Heads / c.KvHeads;
        // The mask history and each key's position (cumulative count of tokens - 1; padding 1).
        var position = new long[B * total];
        for (int b = 0; b < B; b++)
        {
            long count = 0;
            for (int s = 0; s < total; s++)
            {
                count += Mask[b * Total + s];
                position[b * total + s] = Mask[b * Total + s] == 0 ? 1 : count - 1;
            }
        }
        float Key(float[] now, float[] past, int b, int kv, int s, int d) =>
            s < from ? past[((b * c.KvHeads + kv) * from + s) * D + d] : now[((b * c.KvHeads + kv) * Total + s) * D + d];

        var expected = new double[B * c.Heads * t * D];
        for (int b = 0; b < B; b++)
            for (int h = 0; h < c.Heads; h++)
                for (int qi = from; qi < to; qi++)
                {
                    int kv = h / group;
                    long qp = position[b * total + qi];
                    var visible = new bool[total];
                    var scores = new double[total];
                    for (int s = 0; s < total; s++)
                    {
                        long kp = position[b * total + s];
                        visible[s] = Mask[b * Total + s] != 0 && kp <= qp && (c.Window is not long w || kp > qp - w);
                        double dot = 0;
                        for (int d = 0; d < D; d++) dot += c.Q[((b * c.Heads + h) * Total + qi) * D + d] * Key(c.K, pastKey, b, kv, s, d);
                        dot *= Scale;
                        if (c.SoftCap is float cap) dot = Math.Tanh(dot / cap) * cap;
                        scores[s] = dot;
                    }
                    bool any = visible.Any(v => v);
                    var weights = new double[total];
                    double max = Enumerable.Range(0, total).Where(s => visible[s]).Select(s => scores[s]).DefaultIfEmpty(0).Max();
                    for (int s = 0; s < total; s++) weights[s] = !any ? 1.0 / total : visible[s] ? Math.Exp(scores[s] - max) : 0;
                    double sum = weights.Sum();
                    for (int d = 0; d < D; d++)
                    {
                        double acc = 0;
                        for (int s = 0; s < total; s++) acc += weights[s] / sum * Key(c.V, pastValue, b, kv, s, d);
                        expected[((b * c.Heads + h) * t + qi - from) * D + d] = acc;
                    }
                }
        Assert.Equal(new long[] { B, c.Heads, t, D }, result["y"].Shape);
        Numerics.AssertClose(expected, result["y"].Floats, Atol, what: $"y of positions {from}..{to}");
        Assert.Equal(new long[] { B, c.KvHeads, total, D }, result["key"].Shape);
    }
}
