using Recur.Graphs.Ir;

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
    /// </summary>
    public (Value Output, Value Window) CausalConv1d(Value x, Value window, string weightName, string? biasName, long channels, long kernel)
    {
        using var _ = Scope("conv1d");
        if (kernel < 2) throw Error("CausalConv1d", $"kernel {kernel} has no window; need at least 2");
        var weight = Weight(weightName, [channels, 1, kernel]);
        var bias = biasName is null ? null : Weight(biasName, [channels]);
        var sequence = Concat(2, window, Transpose(x, 0, 2, 1));          // [B, C, K-1+T]
        var output = Conv(sequence, weight, bias, group: channels);        // [B, C, T]
        var next = Slice(sequence, [-(kernel - 1)], [long.MaxValue], [2]);  // [B, C, K-1]
        return (Transpose(output, 0, 2, 1), next);
    }
}
