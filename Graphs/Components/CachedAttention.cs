using Recur.Graphs.Ir;
using Recur.Graphs.Weights;

namespace Recur.Graphs;

// Self-attention over an explicit key/value cache, masked from token positions: causal, optionally
// windowed (local attention), with left padding. The projections and rotary embedding stay with the
// architecture; this is the part every cached decoder shares.
public sealed partial class GraphBuilder
{
    /// <summary>
    /// Positions of every token from the attention mask history (1 = token, 0 = padding):
    /// <code>
    /// mask [B, S] int64  ->  positions [B, S] int64 = cumsum(mask) - 1, padding set to 1
    /// </code>
    /// so a left-padded row counts its positions from its first real token, as when it runs alone.
    /// Padding gets 1 as Hugging Face's generate does (masked_fill(mask == 0, 1)); its value never
    /// reaches a real token, since padding keys are masked out.
    /// </summary>
    public Value MaskPositions(Value attentionMask)
    {
        using var _ = Scope("positions");
        RequireType(attentionMask, TensorDType.Int64, "MaskPositions");
        var counted = Sub(CumSum(attentionMask, 1), Constant(1L));
        return Where(Equal(attentionMask, Constant(0L)), Constant(1L), counted);
    }

    /// <summary>
    /// The additive attention bias for queries at <paramref name="queryPositions"/> [B, T] over keys at
    /// <paramref name="keyPositions"/> [B, S]: 0 where key k is visible to query q, float32 min elsewhere.
    /// <code>
    /// visible = kp &lt;= qp  and  keyMask != 0  [and  kp &gt; qp - window]      bias [B, 1, T, S]
    /// </code>
    /// A window W lets position p see keys p-W+1..p (W keys including itself). The masked value is
    /// float32's lowest finite number, as Hugging Face uses: finite, so a row with every key masked
    /// (a padding query) gets a uniform softmax instead of NaN, and a real row's masked keys weigh exactly 0.
    /// </summary>
    public Value AttentionBias(Value queryPositions, Value keyPositions, Value keyMask, long? window = null)
    {
        using var _ = Scope("mask");
        var qp = Unsqueeze(queryPositions, 1, 3);                           // [B, 1, T, 1]
        var kp = Unsqueeze(keyPositions, 1, 2);                             // [B, 1, 1, S]
        var isToken = Unsqueeze(Not(Equal(keyMask, ScalarLike(keyMask, 0))), 1, 2);
        var visible = And(LessOrEqual(kp, qp), isToken);
        if (window is long w)
        {
            if (w < 1) throw Error("AttentionBias", $"window {w} must be at least 1");
            visible = And(visible, Greater(kp, Sub(qp, Constant(w))));
        }
        return Where(visible, Constant(0f), Constant(float.MinValue));
    }

    /// <summary>
    /// Attention of new queries over the cached keys/values plus the new ones.
    /// <code>
    /// q [B, H, T, D]; k, v [B, Hkv, T, D]             new positions, rotary already applied
    /// pastKey, pastValue [B, Hkv, P, D]               the cache (P = 0 on the first call)
    /// queryPositions [B, T], keyPositions [B, P+T]    int64 (see MaskPositions)
    /// keyMask [B, P+T] int64                          1 = token, 0 = padding
    /// key = [pastKey, k], value = [pastValue, v] along the sequence axis
    /// out = softmax(cap(q key^T * scale) + bias) value   [B, H, T, D]
    /// </code>
    /// Returns the output and the present key/value [B, Hkv, P+T, D], which become the next call's cache.
    /// A window only masks: the cache keeps every position, so its length stays equal to the mask history's.
    /// </summary>
    public (Value Output, Value Key, Value Value) CachedAttention(Value q, Value k, Value v, Value pastKey, Value pastValue,
        Value queryPositions, Value keyPositions, Value keyMask, float scale, float? softCap = null, long? window = null)
    {
        using var _ = Scope("cached_attention");
        // A float16 cache (convert --kv-dtype fp16) holds the keys and values rounded to float16, the new ones too, so
        // a split call sees exactly what one whole call sees; the attention itself runs in the keys' own float32.
        bool narrow = pastKey.Type != k.Type;
        var key = Concat(2, pastKey, narrow ? Cast(k, pastKey.Type) : k);
        var value = Concat(2, pastValue, narrow ? Cast(v, pastValue.Type) : v);
        var bias = AttentionBias(queryPositions, keyPositions, keyMask, window);
        var attended = narrow
            ? ScaledDotProductAttention(q, Cast(key, k.Type), Cast(value, v.Type), scale, bias, softCap)
            : ScaledDotProductAttention(q, key, value, scale, bias, softCap);
        return (attended, key, value);
    }

    /// <summary>
    /// Where a call's new keys go in caches of fixed capacity N, and what each cache slot holds: computed once per
    /// graph, shared by every layer's <see cref="CachedAttentionInPlace"/>.
    /// <code>
    /// P = mask length - T                                 positions already in the caches
    /// Indices   [B, Hkv, T, D] = P + t                    the slots the new keys and values are written to
    /// Positions [B, N + T], Mask [B, N + T]               the history's (padded to N slots with 0 = not a token), then the new
    /// </code>
    /// </summary>
    public sealed record CacheSlots(Value Indices, Value Positions, Value Mask);

    public CacheSlots InPlaceCacheSlots(Value ids, Value keyPositions, Value queryPositions, Value keyMask, long capacity, long kvHeads, long headDim)
    {
        using var _ = Scope("cache_slots");
        var length = DimOf(ids, 1);
        var past = Sub(DimOf(keyMask, 1), length);                                            // [1] P
        var slots = Add(Range(Constant(0L), Squeeze(length, 0), Constant(1L)), past);         // [T] P..P+T-1
        var indices = Expand(Reshape(slots, 1, 1, -1, 1), Concat(0, DimOf(ids, 0), Ints(kvHeads), length, Ints(headDim)));
        var pads = Concat(0, Ints(0, 0, 0), Sub(Ints(capacity), past));
        Value History(Value x) => Pad(Slice(x, Ints(0), past, [1]), pads);
        return new CacheSlots(indices,
            Concat(1, History(keyPositions), queryPositions),
            Concat(1, History(keyMask), Slice(keyMask, past, Ints(long.MaxValue), [1])));
    }

    /// <summary>
    /// Attention over a key/value cache of fixed capacity N that the call updates in place: the state input and its
    /// present output are one buffer (recur.json's in_place_axis), so no step copies the cache.
    /// <code>
    /// cacheKey, cacheValue [B, Hkv, N, D]     slots 0..P-1 hold the history (see <see cref="CacheSlots"/>)
    /// present = ScatterElements(cache, slots P..P+T-1 along axis 2, k | v)       written where the buffer is
    /// out     = softmax over the cache's slots and the new keys, segment by segment (ScaledDotProductAttention)
    /// </code>
    /// The attention reads the cache through the input, never the present: slots P.. are masked there, so whether
    /// the scatter has already written them does not change a value.
    /// </summary>
    public (Value Output, Value Key, Value Value) CachedAttentionInPlace(Value q, Value k, Value v, Value cacheKey, Value cacheValue,
        Value queryPositions, CacheSlots slots, float scale, float? softCap = null, long? window = null)
    {
        using var _ = Scope("cached_attention");
        var key = ScatterElements(cacheKey, slots.Indices, k, 2);
        var value = ScatterElements(cacheValue, slots.Indices, v, 2);
        var bias = AttentionBias(queryPositions, slots.Positions, slots.Mask, window);
        return (ScaledDotProductAttention(q, [(cacheKey, cacheValue), (k, v)], scale, bias, softCap), key, value);
    }
}
