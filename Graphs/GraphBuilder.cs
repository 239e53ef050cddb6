using Recur.Package;
using Google.Protobuf;
using Recur.Graphs.Ir;
using Recur.Graphs.Onnx;
using Recur.Graphs.Weights;

namespace Recur.Graphs;

/// <summary>
/// Builds one ONNX graph from typed <see cref="Value"/>s. Every op method checks dtypes and shapes
/// as it goes and names its node from the scope stack (<c>layers.3/attention/MatMul</c>), so a wrong
/// graph fails here with the layer named, not later inside ONNX Runtime. Op methods live in
/// GraphBuilder.Ops.cs; composites (norms, attention, scans) in Components/.
/// </summary>
public sealed partial class GraphBuilder
{
    public const string MicrosoftDomain = "com.microsoft";

    private readonly GraphBuilder? parent;
    private readonly GraphBuilder root;
    private readonly string name;
    private readonly List<NodeProto> nodes = [];
    private readonly List<ValueInfoProto> inputs = [];
    private readonly List<ValueInfoProto> outputs = [];
    private readonly List<string> scopes = [];
    // Node outputs that became graph outputs under the contract's name, applied when the graph is written.
    private readonly Dictionary<string, string> outputNames = new(StringComparer.Ordinal);

    // Shared by a graph and all its subgraphs (held by the root).
    private readonly Dictionary<string, int> nameCounts = new(StringComparer.Ordinal);
    private readonly List<Initializer> initializers = [];
    private readonly Dictionary<string, Value> constantCache = new(StringComparer.Ordinal);
    private readonly List<StateSpec> states = [];
    private readonly HashSet<string> usedDomains = [];
    private readonly List<ExpertRouting> routing = [];

    public GraphBuilder(string name, int opset = DefaultOpset, WeightPuller? weights = null)
    {
        if (opset < MinOpset || opset > MaxOpset)
            throw new ArgumentOutOfRangeException(nameof(opset), opset, $"opset must be between {MinOpset} and {MaxOpset}");
        this.name = name;
        root = this;
        Opset = opset;
        Weights = weights;
    }

    private GraphBuilder(GraphBuilder parent, string name)
    {
        this.parent = parent;
        root = parent.root;
        this.name = name;
        Opset = parent.Opset;
        Weights = parent.Weights;
        scopes.AddRange(parent.scopes);
    }

    /// <summary>17 brings LayerNormalization; every op Recur emits by default exists there.</summary>
    public const int DefaultOpset = 17;
    public const int MinOpset = 17;
    /// <summary>The newest default-domain opset ONNX Runtime 1.30 accepts.</summary>
    public const int MaxOpset = 26;

    public int Opset { get; }
    public string Name => name;
    /// <summary>The checkpoint this graph pulls weights from (null for hand-built graphs).</summary>
    public WeightPuller? Weights { get; }
    public IReadOnlyList<Initializer> Initializers => root.initializers;
    public IReadOnlyList<StateSpec> States => root.states;
    public IReadOnlyCollection<string> Domains => root.usedDomains;
    /// <summary>The mixture-of-experts layers: which node scopes hold each expert and how many a token reaches.</summary>
    public IReadOnlyList<ExpertRouting> Routing => root.routing;
    internal bool IsSubgraph => parent is not null;

    // ---- scopes and names ----

    /// <summary>Pushes a name onto the scope stack until the returned handle is disposed.</summary>
    public IDisposable Scope(string scopeName)
    {
        scopes.Add(scopeName);
        return new ScopeHandle(this, scopes.Count);
    }

    private sealed class ScopeHandle(GraphBuilder owner, int depth) : IDisposable
    {
        public void Dispose() => owner.scopes.RemoveRange(depth - 1, owner.scopes.Count - depth + 1);
    }

    public string ScopePath => string.Join('/', scopes);

    private string UniqueName(string baseName)
    {
        var counts = root.nameCounts;
        counts.TryGetValue(baseName, out int seen);
        counts[baseName] = seen + 1;
        return seen == 0 ? baseName : $"{baseName}_{seen}";
    }

    /// <summary>A name not used yet, not reserved (Input and Output reserve it).</summary>
    private string FreshName(string baseName)
    {
        var counts = root.nameCounts;
        if (!counts.ContainsKey(baseName)) return baseName;
        for (int i = counts[baseName]; ; i++)
            if (!counts.ContainsKey($"{baseName}_{i}")) return $"{baseName}_{i}";
    }

    private string Qualified(string leaf) => scopes.Count == 0 ? leaf : $"{ScopePath}/{leaf}";

    internal GraphBuildException Error(string op, string message) =>
        new($"{Qualified(op)} in graph '{root.name}': {message}");

    // ---- graph inputs and outputs ----

    public Value Input(string inputName, TensorDType type, params Dim[] shape)
    {
        if (root.nameCounts.ContainsKey(inputName))
            throw Error("Input", $"name '{inputName}' is already used");
        root.nameCounts[inputName] = 1;
        inputs.Add(ValueInfo(inputName, type, shape));
        return new Value(this, inputName, type, shape);
    }

    /// <summary>
    /// An int64 scalar input with a default: an initializer of the same name, which ONNX Runtime (and the
    /// ONNX IR since version 4) lets a caller override by feeding the input.
    /// </summary>
    public Value InputWithDefault(string inputName, long defaultValue)
    {
        if (IsSubgraph) throw Error("Input", "inputs with defaults belong to the main graph");
        var input = Input(inputName, TensorDType.Int64);
        root.initializers.Add(new Initializer(inputName, TensorDType.Int64, [], () => BitConverter.GetBytes(defaultValue), isGraphConstant: true));
        return input;
    }

    /// <summary>Makes <paramref name="value"/> a graph output called <paramref name="outputName"/>.</summary>
    /// <param name="declared">The shape the contract promises; it names dims inference could not follow
    /// (e.g. a sequence length through a sliced window) and must agree with what was inferred.</param>
    public Value Output(Value value, string outputName, IReadOnlyList<Dim>? declared = null)
    {
        CheckVisible(value, "Output");
        if (root.nameCounts.ContainsKey(outputName))
            throw Error("Output", $"name '{outputName}' is already used");
        var shape = declared is null ? value.Shape : Declare(value, outputName, declared);
        root.nameCounts[outputName] = 1;
        // A node's output in the top graph is renamed to the output's name rather than copied by an Identity: ORT
        // keeps an Identity whose input has other consumers (a cache that the attention reads too), and it copies.
        if (!IsSubgraph && !outputNames.ContainsKey(value.Name) && nodes.Any(n => n.Output.Contains(value.Name)))
            outputNames[value.Name] = outputName;
        else
            nodes.Add(new NodeProto { OpType = "Identity", Name = UniqueName(Qualified("Identity")), Input = { value.Name }, Output = { outputName } });
        outputs.Add(ValueInfo(outputName, value.Type, shape));
        return new Value(this, outputName, value.Type, shape);
    }

    private IReadOnlyList<Dim> Declare(Value value, string outputName, IReadOnlyList<Dim> declared)
    {
        if (value.Shape is null) return declared;
        if (value.Shape.Count != declared.Count || value.Shape.Zip(declared).Any(p => !p.First.CompatibleWith(p.Second)))
            throw Error("Output", $"'{outputName}' is {Shapes.Format(value.Shape)} but the contract says {Shapes.Format(declared)}");
        return value.Shape.Zip(declared).Select(p => p.First.IsFixed ? p.First : p.Second).ToList();
    }

    /// <summary>The contract's logits output: float32 [batch, sequence, vocab].</summary>
    public Value LogitsOutput(Value logits)
    {
        if (logits.Type != TensorDType.Float32) throw Error("Output", $"logits must be float32, got {logits}");
        // The sequence length, or logits_to_keep of it.
        return Output(logits, "logits", ["batch", "logits_sequence", logits[-1]]);
    }

    /// <summary>
    /// Declares one state tensor of the contract: input <c>past_key_values.{layer}.{kind}</c>, whose
    /// next value is given to <see cref="StateOutput"/> and becomes <c>present.{layer}.{kind}</c>.
    /// </summary>
    public Value StateInput(int layer, string kind, TensorDType type, Dim[] shape, double init, int? inPlaceAxis = null)
    {
        var input = Input(Contract.PastName(layer, kind), type, shape);
        root.states.Add(new StateSpec(input.Name, Contract.PresentName(layer, kind), type, shape, init, inPlaceAxis));
        return input;
    }

    public void StateOutput(Value past, Value present)
    {
        var spec = root.states.SingleOrDefault(s => s.Input == past.Name)
            ?? throw Error("StateOutput", $"'{past.Name}' is not a state input");
        if (present.Type != spec.DType)
            throw Error("StateOutput", $"{spec.Output} is {present.Type} but {spec.Input} is {spec.DType}");
        if (present.Shape is not null && present.Shape.Count != spec.Shape.Count)
            throw Error("StateOutput", $"{spec.Output} has shape {Shapes.Format(present.Shape)} but {spec.Input} has {Shapes.Format(spec.Shape)}");
        // A growing cache's present length is past + new: named total_sequence as onnxruntime-genai does.
        Output(present, spec.Output, spec.Shape.Select(d => d.Symbol == "past_sequence" ? Dim.Named("total_sequence") : d).ToList());
    }

    private static ValueInfoProto ValueInfo(string valueName, TensorDType type, IReadOnlyList<Dim>? shape)
    {
        var tensor = new TypeProto.Types.Tensor { ElemType = (int)type };
        if (shape is not null)
        {
            var sp = new TensorShapeProto();
            foreach (var d in shape)
            {
                var dim = new TensorShapeProto.Types.Dimension();
                if (d.IsFixed) dim.DimValue = d.Size!.Value;
                else if (d.Symbol is not null) dim.DimParam = d.Symbol;
                sp.Dim.Add(dim);
            }
            tensor.Shape = sp;
        }
        return new ValueInfoProto { Name = valueName, Type = new TypeProto { TensorType = tensor } };
    }

    // ---- initializers and constants ----

    /// <summary>An initializer whose bytes are produced when the model is written.</summary>
    public Value Initializer(string initName, TensorDType type, long[] shape, Func<byte[]> materialize)
    {
        string unique = root.UniqueName(initName);
        root.initializers.Add(new Initializer(unique, type, shape, materialize));
        return new Value(root, unique, type, shape.Select(d => (Dim)d).ToArray());
    }

    public Value Constant(float value) => Constant([value], []);
    public Value Constant(float[] values, long[] shape) =>
        CachedConstant(TensorDType.Float32, shape, TensorBytes.FromFloat32(values, TensorDType.Float32), null);
    public Value Constant(long value) => Constant([value], []);
    public Value Constant(long[] values, long[] shape) =>
        CachedConstant(TensorDType.Int64, shape, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray(), values);
    /// <summary>A 1-D int64 constant, as shape and axes arguments take.</summary>
    public Value Ints(params long[] values) => Constant(values, [values.Length]);
    public Value Constant(bool value) => CachedConstant(TensorDType.Bool, [], [value ? (byte)1 : (byte)0], null);
    public Value Constant(int value) => CachedConstant(TensorDType.Int32, [], BitConverter.GetBytes(value), null);

    private Value CachedConstant(TensorDType type, long[] shape, byte[] bytes, long[]? knownInts)
    {
        string key = $"{(int)type}|{string.Join(',', shape)}|{Convert.ToBase64String(bytes)}";
        if (root.constantCache.TryGetValue(key, out var cached)) return cached;
        string unique = root.UniqueName("const");
        root.initializers.Add(new Initializer(unique, type, shape, () => bytes, isGraphConstant: true));
        var value = new Value(root, unique, type, shape.Select(d => (Dim)d).ToArray()) { KnownInts = knownInts };
        root.constantCache[key] = value;
        return value;
    }

    // ---- nodes ----

    /// <summary>
    /// Emits one node. Output dtypes and shapes come from the op method's inference; a null input
    /// stands for an omitted optional input.
    /// </summary>
    internal Value[] Emit(string op, IReadOnlyList<Value?> nodeInputs, IReadOnlyList<(TensorDType Type, IReadOnlyList<Dim>? Shape)> nodeOutputs,
        IEnumerable<AttributeProto>? attributes = null, string domain = "", IReadOnlyList<long[]?>? knownInts = null)
    {
        foreach (var input in nodeInputs)
            if (input is not null) CheckVisible(input, op);
        string nodeName = UniqueName(Qualified(op));
        var node = new NodeProto { OpType = op, Name = nodeName };
        if (domain.Length > 0)
        {
            node.Domain = domain;
            root.usedDomains.Add(domain);
        }
        foreach (var input in nodeInputs) node.Input.Add(input?.Name ?? "");
        var results = new Value[nodeOutputs.Count];
        for (int i = 0; i < nodeOutputs.Count; i++)
        {
            string outName = nodeOutputs.Count == 1 ? nodeName : $"{nodeName}:{i}";
            root.nameCounts[outName] = root.nameCounts.GetValueOrDefault(outName) + 1;
            node.Output.Add(outName);
            results[i] = new Value(this, outName, nodeOutputs[i].Type, nodeOutputs[i].Shape) { KnownInts = knownInts?[i] };
        }
        if (attributes is not null) node.Attribute.AddRange(attributes);
        nodes.Add(node);
        return results;
    }

    internal Value Emit1(string op, IReadOnlyList<Value?> nodeInputs, TensorDType type, IReadOnlyList<Dim>? shape,
        IEnumerable<AttributeProto>? attributes = null, string domain = "", long[]? knownInts = null) =>
        Emit(op, nodeInputs, [(type, shape)], attributes, domain, knownInts is null ? null : [knownInts])[0];

    /// <summary>Values of this graph and of enclosing graphs are visible; values of other graphs are not.</summary>
    private void CheckVisible(Value value, string op)
    {
        for (var g = this; g is not null; g = g.parent)
            if (ReferenceEquals(value.Owner, g)) return;
        throw Error(op, $"value '{value.Name}' belongs to graph '{value.Owner.name}', which is not visible here");
    }

    /// <summary>A subgraph (Scan or Loop body) that may read this graph's values.</summary>
    internal GraphBuilder CreateSubgraph(string subgraphName) => new(this, subgraphName);

    // ---- attributes ----

    internal static AttributeProto Attr(string attrName, long value) => new() { Name = attrName, Type = AttributeProto.Types.AttributeType.Int, I = value };
    internal static AttributeProto Attr(string attrName, float value) => new() { Name = attrName, Type = AttributeProto.Types.AttributeType.Float, F = value };
    internal static AttributeProto Attr(string attrName, string value) => new() { Name = attrName, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) };
    internal static AttributeProto Attr(string attrName, IEnumerable<long> values)
    {
        var a = new AttributeProto { Name = attrName, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }
    internal static AttributeProto Attr(string attrName, GraphProto graph) => new() { Name = attrName, Type = AttributeProto.Types.AttributeType.Graph, G = graph };

    // ---- output ----

    /// <summary>The graph without initializers (the model writer adds those, inline or as external data).</summary>
    public GraphProto ToProto()
    {
        var graph = new GraphProto { Name = name };
        graph.Node.AddRange(outputNames.Count == 0 ? nodes : nodes.Select(n => Renamed(n, outputNames)));
        graph.Input.AddRange(inputs);
        graph.Output.AddRange(outputs);
        return graph;
    }

    /// <summary>A copy of the node with names mapped (inputs, outputs, and the inputs of its subgraphs, which may read outer values).</summary>
    private static NodeProto Renamed(NodeProto node, IReadOnlyDictionary<string, string> map)
    {
        var copy = node.Clone();
        for (int i = 0; i < copy.Input.Count; i++)
            if (map.TryGetValue(copy.Input[i], out var to)) copy.Input[i] = to;
        for (int i = 0; i < copy.Output.Count; i++)
            if (map.TryGetValue(copy.Output[i], out var to)) copy.Output[i] = to;
        foreach (var a in copy.Attribute)
        {
            if (a.G is not null) RenameIn(a.G, map);
            foreach (var g in a.Graphs) RenameIn(g, map);
        }
        return copy;
    }

    private static void RenameIn(GraphProto graph, IReadOnlyDictionary<string, string> map)
    {
        for (int n = 0; n < graph.Node.Count; n++) graph.Node[n] = Renamed(graph.Node[n], map);
        foreach (var o in graph.Output)
            if (map.TryGetValue(o.Name, out var to)) o.Name = to;
    }

    public IReadOnlyList<string> InputNames => inputs.Select(i => i.Name).ToList();
    public IReadOnlyList<string> OutputNames => outputs.Select(o => o.Name).ToList();
    public int NodeCount => nodes.Count;
}
