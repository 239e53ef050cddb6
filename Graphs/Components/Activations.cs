using Recur.Graphs.Ir;

namespace Recur.Graphs;

public sealed partial class GraphBuilder
{
    /// <summary>GELU, tanh approximation (PyTorch's approximate="tanh", HF's gelu_pytorch_tanh / gelu_new).</summary>
    public Value GeluTanh(Value x)
    {
        using var _ = Scope("GeluTanh");
        var inner = Mul(Add(x, Mul(Mul(Mul(x, x), x), 0.044715f)), MathF.Sqrt(2f / MathF.PI));
        return Mul(Mul(x, 0.5f), Add(Tanh(inner), 1f));
    }

    /// <summary>Exact GELU: x * (1 + erf(x / sqrt 2)) / 2.</summary>
    public Value Gelu(Value x)
    {
        using var _ = Scope("Gelu");
        return Mul(Mul(x, 0.5f), Add(Erf(Mul(x, 1f / MathF.Sqrt(2f))), 1f));
    }

    public Value Silu(Value x) => Mul(x, Sigmoid(x));

    /// <summary>
    /// torch's softplus, which returns x itself above its threshold of 20; doing the same keeps any runtime's
    /// log(1 + exp(x)) from overflowing to infinity for large x.
    /// </summary>
    public Value TorchSoftplus(Value x) => Where(Greater(x, ScalarLike(x, 20)), x, Softplus(x));

    /// <summary>Soft cap: tanh(x / cap) * cap (Gemma 2's attention and final logits).</summary>
    public Value SoftCap(Value x, float cap)
    {
        using var _ = Scope("SoftCap");
        return Mul(Tanh(Div(x, cap)), cap);
    }

    /// <summary>The activation named by a Hugging Face config's hidden_act / dense_act_fn.</summary>
    public Value Activation(string name, Value x) => name switch
    {
        "gelu_pytorch_tanh" or "gelu_new" or "gelu_fast" or "gelu_tanh" => GeluTanh(x),
        "gelu" => Gelu(x),
        "relu" => Relu(x),
        "silu" or "swish" => Silu(x),
        _ => throw new NotSupportedException($"activation '{name}' is not supported (supported: gelu, gelu_new, gelu_pytorch_tanh, relu, silu)"),
    };

    public static bool IsKnownActivation(string name) =>
        name is "gelu_pytorch_tanh" or "gelu_new" or "gelu_fast" or "gelu_tanh" or "gelu" or "relu" or "silu" or "swish";
}
