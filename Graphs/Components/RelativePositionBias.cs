using Recur.Graphs.Ir;
using Recur.Graphs.Weights;

namespace Recur.Graphs;

public sealed partial class GraphBuilder
{
    /// <summary>
    /// T5's bucketed relative position bias (HF T5Attention._relative_position_bucket and compute_bias),
    /// computed in the graph from the positions so a decode step with a cache gets the right buckets.
    /// <code>
    /// queryPositions [T], keyPositions [S] int64; table [buckets, H] (relative_attention_bias.weight)
    /// rel = key - query                                  [T, S]
    /// bidirectional: n = buckets / 2, bucket = n * (rel > 0), rel = |rel|;  causal: n = buckets, rel = max(-rel, 0)
    /// exact = n / 2: bucket += rel                                           if rel &lt; exact
    ///                bucket += min(exact + int(log(rel / exact) / log(max_distance / exact) * (n - exact)), n - 1)
    /// out = table[bucket] as [1, H, T, S]
    /// </code>
    /// The log branch runs in float32 and truncates toward zero, as HF's .to(torch.long) does.
    /// </summary>
    public Value RelativePositionBias(Value queryPositions, Value keyPositions, Value table, bool bidirectional, int buckets, int maxDistance)
    {
        using var _ = Scope("relative_position_bias");
        int n = bidirectional ? buckets / 2 : buckets;
        int exact = n / 2;
        if (exact < 1 || maxDistance <= exact)
            throw Error("RelativePositionBias", $"{buckets} buckets and max distance {maxDistance} leave no exact or no log-spaced bucket");
        var rel = Sub(Unsqueeze(RequireType(keyPositions, TensorDType.Int64, "RelativePositionBias"), 0),
            Unsqueeze(RequireType(queryPositions, TensorDType.Int64, "RelativePositionBias"), 1)); // [T, S]
        Value? offset = null;
        if (bidirectional)
        {
            offset = Mul(Cast(Greater(rel, Constant(0L)), TensorDType.Int64), Constant((long)n));
            rel = Abs(rel);
        }
        else rel = Neg(Min(rel, Constant(0L)));

        var isSmall = Less(rel, Constant((long)exact));
        // Positions below `exact` take the other branch; clamping them keeps log away from 0 (whose -inf
        // would be cast to an undefined integer) without touching the branch that is used.
        var relFloat = Max(Cast(rel, TensorDType.Float32), Constant((float)exact));
        // HF divides a float32 tensor by Python floats: the constants round to float32 once.
        var logRatio = Div(Log(Div(relFloat, (float)exact)), (float)Math.Log((double)maxDistance / exact));
        var large = Add(Cast(Mul(logRatio, (float)(n - exact)), TensorDType.Int64), Constant((long)exact));
        large = Min(large, Constant((long)(n - 1)));
        var bucket = Where(isSmall, rel, large);
        if (offset is not null) bucket = Add(bucket, offset);

        var values = Gather(table, bucket);                 // [T, S, H]
        return Unsqueeze(Transpose(values, 2, 0, 1), 0);   // [1, H, T, S]
    }
}
