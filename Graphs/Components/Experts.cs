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
        var logits = RouterLogits(x, routerWeight, routerBias, hidden, experts);
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
            var (where, routed) = Dispatch(x, Squeeze(Slice(kept, [e], [e + 1], [2]), 2), e, expert);
            next = ScatterND(next, where, routed);
        }
        root.routing.Add(new ExpertRouting(expertScopes, 1));
        return new Top1Routing(Mul(next, weight), logits, chosen);
    }

    /// <summary>What a top-k mixture-of-experts layer returns: its output and the router's decisions.</summary>
    public sealed record TopKRouting(Value Output, Value RouterLogits, Value Experts);

    /// <summary>
    /// A top-k mixture of experts without capacity (HF JambaSparseMoeBlock, v4.46.1):
    /// <code>
    /// x [B, T, D]; logits = router(x) [B, T, E] and probs = softmax(logits), both float32
    /// p, chosen = topk(probs, k)                                      [B, T, k], descending
    /// out = sum over the chosen e of p_e * expert_e(x)                [B, T, D]; p NOT renormalised to sum 1
    /// </code>
    /// Only routed tokens reach an expert: per expert, NonZero of "chosen by this token" -> GatherND -> expert,
    /// scaled by its probability, then ScatterND(add) into the sum, in expert order as HF's index_add_.
    /// </summary>
    public TopKRouting TopKExperts(Value x, string routerWeight, string? routerBias, long hidden, int experts, int k,
        Func<Value, int, Value> expert)
    {
        using var _ = Scope("moe");
        if (k < 1 || k > experts) throw Error("TopKExperts", $"top {k} of {experts} experts is not a choice");
        var logits = RouterLogits(x, routerWeight, routerBias, hidden, experts);
        var probs = Softmax(logits, -1);
        var (p, chosen) = TopK(probs, k);                                      // [B, T, k]; ties pick the lower id

        var sum = ConstantOfShape(Shape(x), 0f);
        var expertScopes = new List<string>(experts);
        for (int e = 0; e < experts; e++)
        {
            using var __ = Scope($"expert_{e}");
            expertScopes.Add(ScopePath);
            var picked = Cast(Equal(chosen, Constant((long)e)), TensorDType.Float32);     // [B, T, k]
            var mask = Greater(ReduceSum(picked, [-1], keepDims: false), Constant(0f));   // [B, T]: the token chose e
            var weight = ReduceSum(Mul(p, picked), [-1]);                                  // [B, T, 1]: its probability for e
            var (where, routed) = Dispatch(x, mask, e, expert);
            sum = ScatterND(sum, where, Mul(routed, GatherND(weight, where)), reduction: "add");
        }
        // A token reads k experts' weights, not all of them (recur.json `routing`, for what a step costs).
        root.routing.Add(new ExpertRouting(expertScopes, k));
        return new TopKRouting(sum, logits, chosen);
    }

    /// <summary>
    /// Router logits in float32: HF casts a Switch router to router_dtype float32 ("selective precision") and
    /// Jamba's softmax runs in float32, whatever the other matrices are stored in; ONNX Runtime folds the
    /// transpose of the initializer when it loads the model.
    /// </summary>
    private Value RouterLogits(Value x, string weightName, string? biasName, long hidden, int experts)
    {
        using var _ = Scope("router");
        var logits = MatMul(x, Transpose(Weight(weightName, [experts, hidden]), 1, 0));
        return biasName is null ? logits : Add(logits, Weight(biasName, [experts]));
    }

    /// <summary>The tokens where <paramref name="mask"/> [B, T] is set, as [n, 2] (row, position), and expert e's output for them [n, D].</summary>
    private (Value Where, Value Routed) Dispatch(Value x, Value mask, int e, Func<Value, int, Value> expert)
    {
        var where = Transpose(NonZero(mask), 1, 0);
        return (where, expert(GatherND(x, where), e));
    }
}
