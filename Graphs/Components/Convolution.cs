using Recur.Graphs.Ir;
using Recur.Graphs.Weights;

namespace Recur.Graphs;

public sealed partial class GraphBuilder
{
    /// <summary>
    /// Causal depthwise conv1d (Mamba's and Griffin's short convolution) with its window as state.
    /// <code>
    /// x      [B, T, C]           the new positions
    /// window [B, C, K-1]         the previous call's last K-1 inputs (zeros at the start)
    /// weight [C, 1, K] (HF nn.Conv1d(groups=C).weight), bias [C] optional
    /// out    [B, T, C]           out[t] = bias + sum_k weight[k] * in[t - (K-1) + k]
    /// window' [B, C, K-1]        the last K-1 inputs of [window, x]
    /// </code>
    /// Written as K shifted multiply-adds over [B, K-1+T, C] rather than a Conv with group = C: ONNX
    /// Runtime's CPU Conv runs a grouped convolution group by group (an im2col and a GEMM per channel),
    /// which for thousands of channels cost more per decode step than the rest of the layer's elementwise work.
    /// </summary>
    public (Value Output, Value Window) CausalConv1d(Value x, Value window, string weightName, string? biasName, long channels, long kernel)
    {
        using var _ = Scope("conv1d");
        if (kernel < 2) throw Error("CausalConv1d", $"kernel {kernel} has no window; need at least 2");
        RequireWeights().Entry(weightName, [channels, 1, kernel]); // shape checked here; the taps read it at conversion
        var sequence = Concat(1, Transpose(window, 0, 2, 1), x);                  // [B, K-1+T, C]
        Value? output = biasName is null ? null : Weight(biasName, [channels]);
        for (long k = 0; k < kernel; k++)
        {
            // Tap k of every channel, gathered from [C, 1, K] at conversion.
            long tap = k;
            var weight = Derived($"{weightName}.tap{k}", TensorDType.Float32, [channels], [weightName], read =>
            {
                var w = read(weightName);
                var column = new float[channels];
                for (long c = 0; c < channels; c++) column[c] = w[c * kernel + tap];
                return column;
            });
            long end = k - (kernel - 1);                                            // in[t - (K-1) + k] for t = 0 .. T-1
            var shifted = Slice(sequence, [k], [end == 0 ? long.MaxValue : end], [1]);  // [B, T, C]
            var term = Mul(shifted, weight);
            output = output is null ? term : Add(term, output);
        }
        var next = Transpose(Slice(sequence, [-(kernel - 1)], [long.MaxValue], [1]), 0, 2, 1);  // [B, C, K-1]
        return (output!, next);
    }
}
