using Google.Protobuf;
using Recur.Graphs;
using Recur.Graphs.Ir;
using Recur.Graphs.Onnx;
using Recur.Graphs.Weights;
using Recur.Package;

namespace Recur.Export.Serving;

/// <summary>
/// Makes a decoder with growing caches servable by Triton's implicit state. Triton starts a sequence's
/// state with every variable dimension set to 1 (it cannot hold a zero-length tensor), so the served graph
/// keeps one unused slot at the front of each growing cache:
/// <code>
/// past  [.., 1 + P, ..]  --Slice(1:)-->  the package's graph (past P, new T)  --> present [.., P + T, ..]
/// present served = Concat(past[.., 0:1, ..], present)                              [.., 1 + P + T, ..]
/// attention_mask  = ones [batch, P + T]      (derived, so a client sends input_ids only)
/// </code>
/// The slot is never read, so the logits are the package's own. The package's nodes are kept; only the
/// names of the state tensors they read and write change (to <c>served.*</c>).
/// </summary>
internal static class CacheSlot
{
    private const string Inner = "served.";

    /// <param name="growing">Each growing state: its past and present names and the axis that grows.</param>
    public static void Wrap(ModelProto model, IReadOnlyList<(string Past, string Present, int Axis)> growing)
    {
        if (growing.Count == 0) throw new ArgumentException("no growing state to wrap", nameof(growing));
        var graph = model.Graph;
        int opset = (int)model.OpsetImport.Single(o => o.Domain.Length == 0).Version;
        var inputs = graph.Input.ToDictionary(i => i.Name, StringComparer.Ordinal);
        var outputs = graph.Output.ToDictionary(o => o.Name, StringComparer.Ordinal);
        bool derivesMask = inputs.ContainsKey(Contract.AttentionMask);

        var before = new GraphBuilder("served_in", opset);
        using (before.Scope("served/in"))
        {
            var ids = before.Input(Contract.InputIds, TypeOf(inputs[Contract.InputIds]), ShapeOf(inputs[Contract.InputIds]));
            Value? first = null;
            foreach (var (past, _, axis) in growing)
            {
                var outer = before.Input(past, TypeOf(inputs[past]), ShapeOf(inputs[past]));
                var inner = before.Slice(outer, [1], [long.MaxValue], [axis]);
                before.Output(inner, Inner + past);
                first ??= inner;
            }
            if (derivesMask)
            {
                // Every cached and new position is a token: a served sequence has no padding.
                var total = before.Add(before.DimOf(first!, growing[0].Axis), before.DimOf(ids, 1));
                before.Output(before.Expand(before.Constant(1L), before.Concat(0, before.DimOf(ids, 0), total)), Contract.AttentionMask);
            }
        }
        var after = new GraphBuilder("served_out", opset);
        using (after.Scope("served/out"))
        {
            foreach (var (past, present, axis) in growing)
            {
                var outer = after.Input(past, TypeOf(inputs[past]), ShapeOf(inputs[past]));
                var inner = after.Input(Inner + present, TypeOf(outputs[present]), ShapeOf(outputs[present]));
                after.Output(after.Concat(axis, after.Slice(outer, [0], [1], [axis]), inner), present);
            }
        }

        var rename = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (past, present, _) in growing)
        {
            rename[past] = Inner + past;
            rename[present] = Inner + present;
        }
        foreach (var node in graph.Node) Rename(node, rename);
        foreach (var info in graph.ValueInfo) if (rename.TryGetValue(info.Name, out var to)) info.Name = to;
        if (derivesMask) graph.Input.Remove(inputs[Contract.AttentionMask]);
        var taken = DefinedNames(graph);

        var head = Spliced(before, "served/in/", graph, taken);
        var tail = Spliced(after, "served/out/", graph, taken);
        var body = graph.Node.ToList();
        graph.Node.Clear();
        graph.Node.AddRange(head);
        graph.Node.AddRange(body);
        graph.Node.AddRange(tail);

        var meta = model.MetadataProps.FirstOrDefault(m => m.Key == "recur.package");
        if (meta is not null) model.MetadataProps.Remove(meta);
        model.MetadataProps.Add(new StringStringEntryProto
        {
            Key = "recur.serving",
            Value = "Triton implicit state: each growing cache keeps one unused leading slot; attention_mask is derived from the cache length",
        });
    }

    /// <summary>A builder's nodes, its constants renamed under <paramref name="prefix"/> and added to <paramref name="target"/>.</summary>
    private static List<NodeProto> Spliced(GraphBuilder builder, string prefix, GraphProto target, HashSet<string> taken)
    {
        var proto = builder.ToProto();
        var constants = builder.Initializers.ToDictionary(i => i.Name, i => prefix + i.Name, StringComparer.Ordinal);
        foreach (var node in proto.Node) Rename(node, constants);
        foreach (var node in proto.Node)
            foreach (var output in node.Output)
                if (!taken.Add(output)) throw new InvalidOperationException($"the served graph would define '{output}' twice; the package's graph already has a value of that name");
        foreach (var init in builder.Initializers)
        {
            if (!taken.Add(constants[init.Name])) throw new InvalidOperationException($"the served graph would define '{constants[init.Name]}' twice");
            var tensor = new TensorProto { Name = constants[init.Name], DataType = (int)init.Type, RawData = ByteString.CopyFrom(init.Materialize()) };
            tensor.Dims.AddRange(init.Shape);
            target.Initializer.Add(tensor);
        }
        return [.. proto.Node];
    }

    private static HashSet<string> DefinedNames(GraphProto graph)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var i in graph.Input) names.Add(i.Name);
        foreach (var i in graph.Initializer) names.Add(i.Name);
        void Walk(GraphProto g)
        {
            foreach (var node in g.Node)
            {
                foreach (var o in node.Output) names.Add(o);
                foreach (var a in node.Attribute)
                {
                    if (a.G is not null) Walk(a.G);
                    foreach (var sub in a.Graphs) Walk(sub);
                }
            }
        }
        Walk(graph);
        return names;
    }

    /// <summary>Renames what a node reads and writes, in its subgraphs too (Scan and If bodies read outer values by name).</summary>
    private static void Rename(NodeProto node, IReadOnlyDictionary<string, string> map)
    {
        for (int i = 0; i < node.Input.Count; i++) if (map.TryGetValue(node.Input[i], out var to)) node.Input[i] = to;
        for (int i = 0; i < node.Output.Count; i++) if (map.TryGetValue(node.Output[i], out var to)) node.Output[i] = to;
        foreach (var a in node.Attribute)
        {
            if (a.G is not null) foreach (var n in a.G.Node) Rename(n, map);
            foreach (var sub in a.Graphs) foreach (var n in sub.Node) Rename(n, map);
        }
    }

    private static TensorDType TypeOf(ValueInfoProto info) => (TensorDType)info.Type.TensorType.ElemType;

    private static Dim[] ShapeOf(ValueInfoProto info) =>
        info.Type.TensorType.Shape.Dim.Select(d => d.ValueCase switch
        {
            TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue => Dim.Of(d.DimValue),
            TensorShapeProto.Types.Dimension.ValueOneofCase.DimParam => Dim.Named(d.DimParam),
            _ => Dim.Unknown,
        }).ToArray();
}
