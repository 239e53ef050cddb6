using Recur.Graphs.Ir;

namespace Recur.Graphs;

public sealed partial class GraphBuilder
{
    /// <summary>
    /// The gated feed-forward of Gemma and Griffin: down(act(gate(x)) * up(x)), weights
    /// <c>{prefix}.gate_proj / up_proj / down_proj</c>, each with a bias when <paramref name="biases"/>.
    /// </summary>
    public Value GatedMlp(Value x, string prefix, long hidden, long intermediate, string activation, bool biases = false)
    {
        string? Bias(string proj) => biases ? $"{prefix}.{proj}.bias" : null;
        var gate = Activation(activation, Linear(x, $"{prefix}.gate_proj.weight", hidden, intermediate, Bias("gate_proj")));
        var up = Linear(x, $"{prefix}.up_proj.weight", hidden, intermediate, Bias("up_proj"));
        return Linear(Mul(gate, up), $"{prefix}.down_proj.weight", intermediate, hidden, Bias("down_proj"));
    }
}
