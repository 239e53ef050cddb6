using Recur.Graphs.Ir;

namespace Recur.Graphs;

public sealed partial class GraphBuilder
{
    /// <summary>What a scan body returns: the next states (same order as given) and this step's outputs.</summary>
    public sealed record ScanStep(IReadOnlyList<Value> States, IReadOnlyList<Value> Outputs);

    /// <summary>
    /// The standard ONNX Scan: runs <paramref name="body"/> once per position along each scan input's
    /// axis, threading the states. Returns the final states followed by the stacked per-step outputs.
    /// The body may read any value of this graph (weights included) directly.
    /// </summary>
    public Value[] Scan(IReadOnlyList<Value> initialStates, IReadOnlyList<Value> scanInputs, int[] scanInputAxes,
        Func<GraphBuilder, IReadOnlyList<Value>, IReadOnlyList<Value>, ScanStep> body, int[]? scanOutputAxes = null)
    {
        if (scanInputs.Count == 0) throw Error("Scan", "needs at least one scan input");
        if (scanInputAxes.Length != scanInputs.Count) throw Error("Scan", "one axis per scan input");
        var sub = CreateSubgraph(FreshName(Qualified("Scan")));
        using var bodyScope = sub.Scope("body");
        var stateIn = initialStates.Select((s, i) => sub.Input(sub.FreshName($"{sub.Name}/state_in_{i}"), s.Type, s.Shape?.ToArray() ?? [])).ToList();
        var stepIn = scanInputs.Select((x, i) =>
        {
            Dim[] shape = x.Shape is null ? [] : x.Shape.Where((_, a) => a != NormalizeAxis("Scan", scanInputAxes[i], x.Rank)).ToArray();
            return sub.Input(sub.FreshName($"{sub.Name}/x_{i}"), x.Type, shape);
        }).ToList();
        // Inputs of unknown rank cannot be declared with a shape; keep them shapeless.
        for (int i = 0; i < stateIn.Count; i++)
            if (initialStates[i].Shape is null) sub.ClearInputShape(stateIn[i].Name);

        var step = body(sub, stateIn, stepIn);
        if (step.States.Count != initialStates.Count)
            throw Error("Scan", $"body returned {step.States.Count} states for {initialStates.Count}");
        for (int i = 0; i < step.States.Count; i++)
        {
            if (step.States[i].Type != initialStates[i].Type)
                throw Error("Scan", $"state {i} changes dtype from {initialStates[i].Type} to {step.States[i].Type}");
            sub.Output(step.States[i], sub.FreshName($"{sub.Name}/state_out_{i}"));
        }
        foreach (var (y, i) in step.Outputs.Select((y, i) => (y, i)))
            sub.Output(y, sub.FreshName($"{sub.Name}/y_{i}"));

        var outAxes = scanOutputAxes ?? new int[step.Outputs.Count];
        Dim length = scanInputs[0].Shape is null ? Dim.Unknown : scanInputs[0][scanInputAxes[0]];
        var outputs = new List<(TensorDType Type, IReadOnlyList<Dim>? Shape)>();
        foreach (var s in initialStates) outputs.Add((s.Type, s.Shape));
        for (int i = 0; i < step.Outputs.Count; i++)
        {
            var y = step.Outputs[i];
            if (y.Shape is null) { outputs.Add((y.Type, null)); continue; }
            var dims = y.Shape.ToList();
            int ax = outAxes[i] < 0 ? outAxes[i] + dims.Count + 1 : outAxes[i];
            dims.Insert(ax, length);
            outputs.Add((y.Type, dims));
        }
        var attrs = new List<Onnx.AttributeProto>
        {
            Attr("body", sub.ToProto()),
            Attr("num_scan_inputs", (long)scanInputs.Count),
            Attr("scan_input_axes", scanInputAxes.Select(a => (long)a)),
        };
        if (scanOutputAxes is not null) attrs.Add(Attr("scan_output_axes", scanOutputAxes.Select(a => (long)a)));
        return Emit("Scan", [.. initialStates, .. scanInputs], outputs, attrs);
    }

    /// <summary>
    /// The same recurrence as <see cref="Scan"/>, with a Scan-free path for one position:
    /// <code>
    /// If(length == 1)
    ///   then: body once, as plain nodes (scan inputs squeezed, step outputs unsqueezed)
    ///   else: Scan(body) over every position
    /// </code>
    /// ONNX Runtime's Scan pays a fixed cost per call and per iteration (slicing the inputs, an execution
    /// frame for the body, stacking the outputs) that outweighs a body of a few elementwise nodes on one
    /// token; a decode step takes the then-branch. (A Scan over all but the last position plus the last step
    /// inline would need no If, but ONNX Runtime refuses a Scan over zero positions.)
    /// Returns the final states followed by the stacked per-step outputs, as Scan does.
    /// </summary>
    public Value[] ScanOrSingleStep(IReadOnlyList<Value> initialStates, IReadOnlyList<Value> scanInputs, int[] scanInputAxes,
        Func<GraphBuilder, IReadOnlyList<Value>, IReadOnlyList<Value>, ScanStep> body, int[]? scanOutputAxes = null) =>
        SingleStepOr(initialStates, scanInputs, scanInputAxes, body, scanOutputAxes,
            otherwise => otherwise.Scan(initialStates, scanInputs, scanInputAxes, body, scanOutputAxes));

    /// <summary>
    /// If(length == 1) then <paramref name="body"/> once as plain nodes, else <paramref name="severalSteps"/>: a Scan
    /// (<see cref="ScanOrSingleStep"/>) or a parallel form of the same recurrence that returns what the Scan would
    /// (the final states, then the per-step outputs stacked along <paramref name="scanOutputAxes"/>).
    /// </summary>
    public Value[] SingleStepOr(IReadOnlyList<Value> initialStates, IReadOnlyList<Value> scanInputs, int[] scanInputAxes,
        Func<GraphBuilder, IReadOnlyList<Value>, IReadOnlyList<Value>, ScanStep> body, int[]? scanOutputAxes,
        Func<GraphBuilder, IReadOnlyList<Value>> severalSteps)
    {
        if (scanInputs.Count == 0) throw Error("Scan", "needs at least one scan input");
        if (scanInputAxes.Length != scanInputs.Count) throw Error("Scan", "one axis per scan input");
        return IfSinglePosition(scanInputs[0], scanInputAxes[0],
            then =>
            {
                var step = body(then, initialStates, scanInputs.Select((x, i) => then.Squeeze(x, scanInputAxes[i])).ToList());
                if (step.States.Count != initialStates.Count)
                    throw Error("Scan", $"body returned {step.States.Count} states for {initialStates.Count}");
                var outAxes = scanOutputAxes ?? new int[step.Outputs.Count];
                return [.. step.States, .. step.Outputs.Select((y, i) => then.Unsqueeze(y, outAxes[i]))];
            },
            severalSteps);
    }

    /// <summary>
    /// If(length == 1) over <paramref name="sequence"/>'s <paramref name="axis"/>: a recurrence's decode step
    /// (one position) takes <paramref name="single"/>, a prompt takes <paramref name="many"/>, in one graph.
    /// </summary>
    public Value[] IfSinglePosition(Value sequence, int axis, Func<GraphBuilder, IReadOnlyList<Value>> single, Func<GraphBuilder, IReadOnlyList<Value>> many)
    {
        var isSingle = Equal(Shape(sequence, axis, axis + 1 == 0 ? null : axis + 1), Constant([1L], [1]));
        return If(isSingle, single, many);
    }

    /// <summary>
    /// ONNX If: runs one of two branches, subgraphs without inputs that read this graph's values. The
    /// branches return the same number of values with the same types; a dim both agree on is kept.
    /// </summary>
    public Value[] If(Value condition, Func<GraphBuilder, IReadOnlyList<Value>> thenBranch, Func<GraphBuilder, IReadOnlyList<Value>> elseBranch)
    {
        (GraphBuilder Graph, IReadOnlyList<Value> Results) Branch(string kind, Func<GraphBuilder, IReadOnlyList<Value>> build)
        {
            var sub = CreateSubgraph(FreshName(Qualified($"If_{kind}")));
            using var _ = sub.Scope(kind);
            var results = build(sub);
            foreach (var (y, i) in results.Select((y, i) => (y, i)))
                sub.Output(y, sub.FreshName($"{sub.Name}/out_{i}"));
            return (sub, results);
        }
        var (thenGraph, thenResults) = Branch("then", thenBranch);
        var (elseGraph, elseResults) = Branch("else", elseBranch);
        if (thenResults.Count != elseResults.Count)
            throw Error("If", $"the then branch returns {thenResults.Count} values, the else branch {elseResults.Count}");
        var outputs = new List<(TensorDType Type, IReadOnlyList<Dim>? Shape)>();
        for (int i = 0; i < thenResults.Count; i++)
        {
            Value a = thenResults[i], b = elseResults[i];
            if (a.Type != b.Type) throw Error("If", $"output {i} is {a.Type} in the then branch but {b.Type} in the else branch");
            IReadOnlyList<Dim>? shape = a.Shape is null || b.Shape is null || a.Shape.Count != b.Shape.Count ? null
                : a.Shape.Zip(b.Shape).Select(p => p.First == p.Second ? p.First : Dim.Unknown).ToList();
            outputs.Add((a.Type, shape));
        }
        return Emit("If", [condition], outputs, [Attr("then_branch", thenGraph.ToProto()), Attr("else_branch", elseGraph.ToProto())]);
    }

    private void ClearInputShape(string inputName)
    {
        var input = inputs.Single(i => i.Name == inputName);
        input.Type.TensorType.Shape = null;
    }
}
