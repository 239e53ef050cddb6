using Recur.Graphs.Ir;
using Recur.Graphs.Weights;

namespace Recur.Graphs;

public sealed partial class GraphBuilder
{
    /// <summary>[B, T, heads * headDim] -> [B, heads, T, headDim].</summary>
    public Value SplitHeads(Value x, long heads, long headDim) => Transpose(Reshape(x, 0, 0, heads, headDim), 0, 2, 1, 3);

    /// <summary>[B, heads, T, headDim] -> [B, T, heads * headDim].</summary>
    public Value MergeHeads(Value x)
    {
        long width = (x[1].Size ?? throw Error("MergeHeads", $"heads must be known: {x}")) * (x[3].Size ?? throw Error("MergeHeads", $"head dim must be known: {x}"));
        return Reshape(Transpose(x, 0, 2, 1, 3), 0, 0, width);
    }

    /// <summary>
    /// softmax(q k^T * scale [soft-capped] + bias) v, in float32, for every attention in Recur.
    /// <code>
    /// q    [B, H,   T, D]      k, v [B, Hkv, S, D]   (H a multiple of Hkv: grouped / multi-query)
    /// bias broadcastable to [B, H, T, S]: additive mask (0 or a large negative) and/or position bias
    /// out  [B, H, T, D]
    /// </code>
    /// Grouped-query heads are expanded by reshaping q to [B, Hkv, H/Hkv * T, D], so k and v are never copied.
    /// </summary>
    public Value ScaledDotProductAttention(Value q, Value k, Value v, float scale, Value? bias = null, float? softCap = null) =>
        ScaledDotProductAttention(q, [(k, v)], scale, bias, softCap);

    /// <summary>
    /// The same attention over keys and values given in segments along S (a cache buffer and the new positions):
    /// one softmax over the scores of every segment, then the sum of each segment's probabilities times its values,
    /// so no segment is copied into a joined key or value tensor. bias spans all segments in order.
    /// </summary>
    public Value ScaledDotProductAttention(Value q, IReadOnlyList<(Value K, Value V)> segments, float scale, Value? bias = null, float? softCap = null)
    {
        using var _ = Scope("sdpa");
        long heads = q[1].Size ?? throw Error("Attention", $"query heads must be known: {q}");
        long kvHeads = segments[0].K[1].Size ?? throw Error("Attention", $"key heads must be known: {segments[0].K}");
        long headDim = q[3].Size ?? throw Error("Attention", $"head dim must be known: {q}");
        if (heads % kvHeads != 0) throw Error("Attention", $"{heads} query heads are not a multiple of {kvHeads} key/value heads");
        long group = heads / kvHeads;

        // [B, H, T, D] -> [B, Hkv, group, T, D]: query heads h = kv * group + g share key/value head kv (HF's repeat_kv order).
        var qg = group == 1 ? q : Reshape(q, 0, kvHeads, group, -1, headDim);
        Value Grouped(Value x) => group == 1 ? x : Unsqueeze(x, 2);
        var parts = segments.Select(s => MatMul(qg, Transpose(Grouped(s.K), group == 1 ? [0, 1, 3, 2] : [0, 1, 2, 4, 3]))).ToArray();
        var scores = parts.Length == 1 ? parts[0] : Concat(-1, parts);
        if (scale != 1f) scores = Mul(scores, scale);
        if (softCap is float cap) scores = SoftCap(scores, cap);
        if (bias is not null)
        {
            // bias [B|1, H|1, T, S] -> match the grouped layout.
            var b = bias;
            if (group != 1)
                b = bias[1].IsFixed && bias[1].Size == heads
                    ? Reshape(bias, Concat(0, Shape(bias, 0, 1), Ints(kvHeads, group), Shape(bias, 2, 4)))
                    : Unsqueeze(bias, 2);
            scores = Add(scores, b);
        }
        var probs = Softmax(scores, -1);
        var output = MatMul(segments.Count == 1 ? probs : Slice(probs, Ints(0), DimOf(segments[0].K, 2), [-1]), Grouped(segments[0].V));
        var start = DimOf(segments[0].K, 2);
        foreach (var (k, v) in segments.Skip(1))
        {
            var end = Add(start, DimOf(k, 2));
            output = Add(output, MatMul(Slice(probs, start, end, [-1]), Grouped(v)));
            start = end;
        }
        return group == 1 ? output : Reshape(output, 0, heads, -1, headDim);
    }
}
