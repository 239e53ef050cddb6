using Recur.Graphs.Ir;
using Recur.Graphs.Weights;

namespace Recur.Graphs;

public sealed partial class GraphBuilder
{
    /// <summary>
    /// Griffin's Real-Gated Linear Recurrent Unit (HF RecurrentGemmaRglru), in float32.
    /// <code>
    /// x [B, T, W] (W = heads * block), reset [B, T] bool (true where the token is position 0), state [B, W]
    /// i = sigmoid(x_h @ input_gate_weight[h] + input_gate_bias[h])           block-diagonal per head
    /// r = sigmoid(x_h @ recurrent_gate_weight[h] + recurrent_gate_bias[h])
    /// log_a = -8 * r * softplus(recurrent_param);  a = exp(log_a)
    /// x_in  = x * i * sqrt(1 - exp(2 log_a)), or x * i where reset (multiplier 1)
    /// h_t   = a_t h_{t-1} + x_in_t, with a_t = 0 where reset (the old state is dropped)
    /// out [B, T, W] = h,  state' [B, W] = h at the last position
    /// </code>
    /// </summary>
    public (Value Output, Value State) RgLru(Value x, Value reset, Value state, string prefix, long width, long heads)
    {
        using var _ = Scope("rg_lru");
        if (width % heads != 0) throw Error("RgLru", $"width {width} is not a multiple of {heads} heads");
        long block = width / heads;

        // HF: softplus in float32 with PyTorch's threshold (x > 20 returns x); folded at conversion.
        var softplus = Weight($"{prefix}.recurrent_param", [width],
            fold: p => p > 20f ? p : (float)Math.Log(1 + Math.Exp(p)));
        var inputGate = Sigmoid(BlockDiagonal(x, $"{prefix}.input_gate_weight", $"{prefix}.input_gate_bias", heads, block));
        var recurrentGate = Sigmoid(BlockDiagonal(x, $"{prefix}.recurrent_gate_weight", $"{prefix}.recurrent_gate_bias", heads, block));

        var logA = Mul(Mul(recurrentGate, -8f), softplus);                          // [B, T, W]
        var a = Exp(logA);
        // HF takes sqrt(1 - exp(2 log_a)) rather than sqrt(1 - a^2): the same up to rounding, kept as HF does.
        var multiplier = Sqrt(Sub(Constant(1f), Exp(Mul(logA, 2f))));
        var resetW = Unsqueeze(reset, -1);                                           // [B, T, 1]
        multiplier = Where(resetW, Constant(1f), multiplier);
        var normalized = Mul(Mul(x, inputGate), multiplier);
        var decay = Where(resetW, Constant(0f), a);

        var results = ScanOrSingleStep([state], [decay, normalized], [1, 1], (b, s, step) =>
        {
            var h = b.Add(b.Mul(step[0], s[0]), step[1]);
            return new ScanStep([h], [h]);
        }, scanOutputAxes: [1]);
        return (results[1], results[0]);
    }

    /// <summary>
    /// A block-diagonal linear map per head, as HF's baddbmm: x [B, T, heads * block] viewed as
    /// [B, heads, T, block], times weight [heads, block, block] (x @ W[h]), plus bias [heads, block].
    /// </summary>
    private Value BlockDiagonal(Value x, string weightName, string biasName, long heads, long block)
    {
        using var _ = Scope(ShortName(weightName));
        var weight = Weight(weightName, [heads, block, block]);
        var bias = Weight(biasName, [heads, block], reshape: [heads, 1, block]);
        var perHead = Transpose(Reshape(x, 0, 0, heads, block), 0, 2, 1, 3);       // [B, heads, T, block]
        var y = Add(MatMul(perHead, weight), bias);                                 // [B, heads, T, block]
        return Reshape(Transpose(y, 0, 2, 1, 3), 0, 0, heads * block);              // [B, T, W]
    }
}
