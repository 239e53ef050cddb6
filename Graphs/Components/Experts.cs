using Recur.Graphs.Ir;
using Recur.Graphs.Weights;

namespace Recur.Graphs;

public sealed partial class GraphBuilder
{
    /// <summary>What a top-1 mixture-of-experts layer returns: its output and the router's decisions.</summary>
    public sealed record Top1Routing(Value Output, Value RouterLogits, Value Expert);

    /// <summary>
    /// One mixture-of-experts layer as the package records it: the node scope of each expert and how many experts a
    /// token reaches, so a reader of the graph knows which weights a token reads (bench's bytes per decode step).
    /// </summary>
    public sealed record ExpertRouting(IReadOnlyList<string> ExpertScopes, int ExpertsPerToken);

    /// <summary>
    /// Switch Transformers' top-1 mixture of experts in eval mode (HF SwitchTransformersTop1Router and
    /// SwitchTransformersSparseMLP, v4.46):
    /// <code>
    /// x [B, T, D]; logits = classifier(x) [B, T, E] and probs = softmax(logits), both float32
    /// expert = argmax(probs); p = max(probs)                                         [B, T]
    /// kept   = one_hot(expert) and cumsum_T(one_hot(expert)) &lt;= capacity             per batch row, in sequence order
    /// out    = p * expert_e(x) for kept tokens, p * x for tokens over capacity       [B, T, D]
    /// </code>
    /// Only routed tokens reach an expert: per expert, NonZero of its mask -> GatherND the tokens ->
    /// <paramref name="expert"/> -> ScatterND into a copy of x (so dropped tokens keep x, as HF's clone).
    /// Capacity is counted within one call, as HF counts it within one forward.
    /// </summary>
    public Top1Routing Top1Experts(Value x, string routerWeight, string? routerBias, long hidden, int experts, long capacity,
        Func<Value, int, Value> expert)
    {
        using var _ = Scope("moe");
        Value logits;
        using (Scope("router"))
        {
            // HF casts the classifier to router_dtype float32 ("selective precision"), whatever the other matrices
            // are stored in; ONNX Runtime folds the transpose of the initializer when it loads the model.
            logits = MatMul(x, Transpose(Weight(routerWeight, [experts, hidden]), 1, 0));
            if (routerBias is not null) logits = Add(logits, Weight(routerBias, [experts]));
        }
        var probs = Softmax(logits, -1);
        var chosen = ArgMax(probs, -1, keepDims: false);                        // [B, T]; ties pick the first, as torch.argmax
        var weight = ReduceMax(probs, [-1]);                                    // [B, T, 1]

        var ids = Constant(Enumerable.Range(0, experts).Select(e => (long)e).ToArray(), [experts]);
        var oneHot = Equal(Unsqueeze(chosen, -1), ids);                         // [B, T, E]
        var priority = CumSum(Cast(oneHot, TensorDType.Int64), 1);              // position of each token in its expert's queue
        var kept = And(oneHot, LessOrEqual(priority, Constant(capacity)));

        var next = x;
        var expertScopes = new List<string>(experts);
        for (int e = 0; e < experts; e++)
        {
            using var __ = Scope($"expert_{e}");
            expertScopes.Add(ScopePath);
            var mask = Squeeze(Slice(kept, [e], [e + 1], [2]), 2);             // [B, T]
            var where = Transpose(NonZero(mask), 1, 0);                         // [n, 2] (row, position)
            var routed = expert(GatherND(x, where), e);                         // [n, D]
            next = ScatterND(next, where, routed);
        }
        root.routing.Add(new ExpertRouting(expertScopes, 1));
        return new Top1Routing(Mul(next, weight), logits, chosen);
    }
}
