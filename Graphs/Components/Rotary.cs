using Recur.Graphs.Ir;
using Recur.Graphs.Weights;

namespace Recur.Graphs;

public sealed partial class GraphBuilder
{
    /// <summary>
    /// Rotary position embedding, rotate-half convention (HF's apply_rotary_pos_emb), on the first
    /// <paramref name="rotaryDim"/> channels of each head; the rest pass through (partial rotary).
    /// <code>
    /// x [B, H, T, D], positions [B, T] int64
    /// inv_freq[i] = 1 / theta^(2i / rotaryDim)      float32, folded at conversion as HF computes it
    /// angle = position * inv_freq, emb = [angle, angle];  x' = x * cos(emb) + rotate_half(x) * sin(emb)
    /// </code>
    /// </summary>
    public Value Rotary(Value x, Value positions, double theta, long rotaryDim)
    {
        using var _ = Scope("rotary");
        long headDim = x[3].Size ?? throw Error("Rotary", $"head dim must be known: {x}");
        if (rotaryDim % 2 != 0 || rotaryDim > headDim) throw Error("Rotary", $"rotary dim {rotaryDim} must be even and at most the head dim {headDim}");
        long half = rotaryDim / 2;
        // HF: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), in float32.
        var invFreq = new float[half];
        for (int i = 0; i < half; i++) invFreq[i] = 1f / MathF.Pow((float)theta, (float)(2 * i) / rotaryDim);
        var angles = Mul(Unsqueeze(Cast(positions, TensorDType.Float32), -1), Constant(invFreq, [half])); // [B, T, half]
        var emb = Unsqueeze(Concat(-1, angles, angles), 1);                                              // [B, 1, T, rotaryDim]
        var cos = Cos(emb);
        var sin = Sin(emb);

        Value rotated, pass = x;
        bool partial = rotaryDim < headDim;
        if (partial)
        {
            var parts = Split(x, -1, rotaryDim, headDim - rotaryDim);
            rotated = parts[0];
            pass = parts[1];
        }
        else rotated = x;
        var halves = Split(rotated, -1, half, half);
        var rotateHalf = Concat(-1, Neg(halves[1]), halves[0]);
        var result = Add(Mul(rotated, cos), Mul(rotateHalf, sin));
        return partial ? Concat(-1, result, pass) : result;
    }
}
