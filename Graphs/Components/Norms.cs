using Recur.Graphs.Ir;
using Recur.Graphs.Weights;

namespace Recur.Graphs;

public sealed partial class GraphBuilder
{
    /// <summary>nn.LayerNorm over the last axis with weight and bias pulled by name.</summary>
    public Value LayerNorm(Value x, string weightName, string biasName, long features, float epsilon)
    {
        using var _ = Scope(ShortName(weightName));
        return LayerNormalization(x, Weight(weightName, [features]), Weight(biasName, [features]), epsilon);
    }

    /// <summary>
    /// nn.GroupNorm over the last axis of [.., groups * size] with weight and bias pulled by name: each group of
    /// <paramref name="size"/> channels is normalised on its own (LayerNormalization over the group), then the
    /// per-channel affine applies.
    /// </summary>
    public Value GroupNorm(Value x, string weightName, string biasName, long groups, long size, float epsilon)
    {
        using var _ = Scope(ShortName(weightName));
        var grouped = Reshape(x, [.. Enumerable.Repeat(0L, x.Rank - 1), groups, size]);
        // Unit scale and a zero bias: ONNX Runtime 1.30's CPU LayerNormalization crashed (segfault) on a graph without the bias input.
        var ones = Constant(Enumerable.Repeat(1f, (int)size).ToArray(), [size]);
        var zeros = Constant(new float[size], [size]);
        var normed = Reshape(LayerNormalization(grouped, ones, zeros, epsilon), [.. Enumerable.Repeat(0L, x.Rank - 1), groups * size]);
        return Add(Mul(normed, Weight(weightName, [groups * size])), Weight(biasName, [groups * size]));
    }

    /// <summary>
    /// RMS norm with its weight pulled by name; <paramref name="plusOne"/> is Gemma's (1 + weight),
    /// folded at conversion (exact: HF adds 1 in float32 too).
    /// </summary>
    public Value RmsNorm(Value x, string weightName, long features, float epsilon, bool plusOne = false)
    {
        using var _ = Scope(ShortName(weightName));
        return RmsNorm(x, Weight(weightName, [features], fold: plusOne ? w => 1f + w : null), epsilon);
    }

    /// <summary>
    /// RMS norm over the last axis, computed in float32 whatever x's dtype:
    /// y = x / sqrt(mean(x^2) + eps) * weight. Gemma-style "(1 + w)" is folded into the weight by the caller.
    /// </summary>
    public Value RmsNorm(Value x, Value weight, float epsilon)
    {
        using var _ = Scope("RmsNorm");
        return Mul(Normalize(x, epsilon), weight);
    }

    /// <summary>RMS normalisation without a weight (Falcon-Mamba's B, C and time step): x / sqrt(mean(x^2) + eps), float32.</summary>
    public Value RmsNormalize(Value x, float epsilon)
    {
        using var _ = Scope("RmsNormalize");
        return Normalize(x, epsilon);
    }

    private Value Normalize(Value x, float epsilon)
    {
        var x32 = Cast(x, TensorDType.Float32);
        var meanSquare = ReduceMean(Mul(x32, x32), [-1]);
        return Div(x32, Sqrt(Add(meanSquare, epsilon)));
    }
}
