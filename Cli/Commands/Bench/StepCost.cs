using System.Text.Json;
using Google.Protobuf;
using Recur.Graphs.Ir;
using Recur.Graphs.Onnx;
using Recur.Graphs.Weights;
using Recur.Package;
using Recur.Runtime.Packages;

namespace Recur.Cli.Commands.Bench;

/// <summary>
/// What one decode step of a package must read and compute, from its decoder graph (initializer sizes by name) and
/// recur.json (state shapes, expert routing). Architecture-neutral rules:
/// <list type="bullet">
/// <item>an initializer read only as the table of Gather nodes indexed by input_ids costs one slice per token (an
/// embedding row); a table that anything else also reads (a tied lm_head) costs all of it;</item>
/// <item>an initializer read only inside one expert's node scope (recur.json "routing") costs the expected share of
/// experts the step's tokens reach: E (1 - (1 - k/E)^tokens) of E experts for k experts per token;</item>
/// <item>everything else is read once per step; state tensors are read once at their size at the given depth.</item>
/// </list>
/// Matrix FLOPs per token (the prefill bound) are 2 per weight element of MatMul, Gemm and MatMulNBits, routed
/// weights at k/E; products downstream of logits_to_keep (the head, for the kept positions only) count once per
/// call, not per token; attention over the history is not counted.
/// </summary>
internal sealed class StepCost
{
    private readonly long fixedBytes;
    // Gathered tables: (table bytes, rows); routed layers: (expert bytes, experts, experts per token).
    private readonly List<(long Bytes, long Rows)> tables = [];
    private readonly List<(long Bytes, int Experts, int PerToken)> routed = [];
    private readonly IReadOnlyList<StateTensor> state;

    private StepCost(long fixedBytes, IReadOnlyList<StateTensor> state, double matrixFlopsPerToken, double keptFlops, int nodes)
    {
        this.fixedBytes = fixedBytes;
        this.state = state;
        MatrixFlopsPerToken = matrixFlopsPerToken;
        KeptPositionFlops = keptFlops;
        GraphNodes = nodes;
    }

    /// <summary>2 x the matrix weight elements a token multiplies (routed experts by their share), the head excepted.</summary>
    public double MatrixFlopsPerToken { get; }
    /// <summary>Matrix FLOPs for each position logits_to_keep keeps (the head); a ForwardLast call pays them once.</summary>
    public double KeptPositionFlops { get; }
    /// <summary>Nodes in the decoder file, subgraphs included (before ONNX Runtime's fusions).</summary>
    public int GraphNodes { get; }

    /// <summary>Weight bytes a step of <paramref name="batch"/> tokens reads.</summary>
    public double WeightBytes(int batch)
    {
        double bytes = fixedBytes;
        foreach (var (b, rows) in tables) bytes += (double)b * Math.Min(batch, rows) / rows;
        foreach (var (b, experts, perToken) in routed)
            bytes += b * (1 - Math.Pow(1 - (double)perToken / experts, batch));
        return bytes;
    }

    /// <summary>Bytes of the state tensors for <paramref name="batch"/> rows after <paramref name="depth"/> positions.</summary>
    public double StateBytes(int batch, long depth) => state.Sum(s =>
        (double)s.Shape.Aggregate(1L, (n, d) => n * d switch { long v => v, "batch" => batch, _ => depth }) * TensorDTypes.SizeOf((TensorDType)(int)s.DType)); // ONNX and ORT number element types alike

    public static StepCost Read(ModelPackage package)
    {
        string path = package.GraphPath("decoder");
        ModelProto model;
        try
        {
            using var stream = File.OpenRead(path);
            model = ModelProto.Parser.ParseFrom(stream);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"{path}: not an ONNX model ({e.Message})");
        }
        var graph = model.Graph ?? throw new InvalidDataException($"{path}: the model has no graph");
        var sizes = graph.Initializer.ToDictionary(t => t.Name, t => t, StringComparer.Ordinal);

        // Every node that reads each initializer, subgraphs included (an If branch or a Scan body reads the outer weights).
        var readers = new Dictionary<string, List<NodeProto>>(StringComparer.Ordinal);
        int nodes = 0;
        void Walk(GraphProto g)
        {
            foreach (var node in g.Node)
            {
                nodes++;
                foreach (string input in node.Input)
                    if (sizes.ContainsKey(input))
                    {
                        if (!readers.TryGetValue(input, out var list)) readers[input] = list = [];
                        list.Add(node);
                    }
                foreach (var a in node.Attribute)
                {
                    if (a.G is not null) Walk(a.G);
                    foreach (var sub in a.Graphs) Walk(sub);
                }
            }
        }
        Walk(graph);
        // What depends on logits_to_keep runs for the kept positions only (nodes are in topological order).
        var kept = new HashSet<string>(StringComparer.Ordinal) { Contract.LogitsToKeep };
        var keptNodes = new HashSet<NodeProto>();
        foreach (var node in graph.Node)
            if (node.Input.Any(kept.Contains))
            {
                keptNodes.Add(node);
                foreach (string o in node.Output) kept.Add(o);
            }

        var layers = ReadRouting(package);
        long fixedBytes = 0;
        double flops = 0, keptFlops = 0;
        var cost = new List<(long, long)>();
        var experts = new Dictionary<int, long>(); // routing layer -> bytes of its experts
        foreach (var (name, tensor) in sizes)
        {
            long elements = tensor.Dims.Aggregate(1L, (n, d) => n * d);
            long bytes = elements * SafeSize((TensorDType)tensor.DataType);
            var users = readers.GetValueOrDefault(name) ?? [];
            double share = 1;
            int layer = users.Count == 0 ? -1 : RoutingLayer(layers, users);
            if (users.Count > 0 && users.All(n => n.OpType == "Gather" && n.Input[0] == name && n.Input[1] == Contract.InputIds) && tensor.Dims.Count > 0)
            {
                long axis = users[0].Attribute.FirstOrDefault(a => a.Name == "axis")?.I ?? 0;
                if (axis < 0) axis += tensor.Dims.Count;
                cost.Add((bytes, tensor.Dims[(int)axis]));
            }
            else if (layer >= 0)
            {
                experts[layer] = experts.GetValueOrDefault(layer) + bytes;
                share = (double)layers[layer].PerToken / layers[layer].Scopes.Count;
            }
            else fixedBytes += bytes;
            var (matrix, product) = MatrixElements(name, elements, users);
            if (product is not null && keptNodes.Contains(product)) keptFlops += share * 2 * matrix;
            else flops += share * 2 * matrix;
        }
        var result = new StepCost(fixedBytes, package.State, flops, keptFlops, nodes);
        result.tables.AddRange(cost);
        foreach (var (layer, bytes) in experts) result.routed.Add((bytes, layers[layer].Scopes.Count, layers[layer].PerToken));
        return result;
    }

    /// <summary>Weight elements an initializer contributes to matrix products: the matrix of MatMul/Gemm, N x K of MatMulNBits' codes.</summary>
    private static (long Elements, NodeProto? Product) MatrixElements(string name, long elements, List<NodeProto> users)
    {
        foreach (var n in users)
        {
            if (n.OpType is "MatMul" or "Gemm" && n.Input.Count > 1 && n.Input[1] == name) return (elements, n);
            if (n.OpType == "MatMulNBits" && n.Input.Count > 1 && n.Input[1] == name)
            {
                long Attr(string key) => n.Attribute.FirstOrDefault(a => a.Name == key)?.I ?? 0;
                return (Attr("N") * Attr("K"), n);
            }
        }
        return (0, null);
    }

    /// <summary>The routing layer whose single expert scope holds every reader of a weight, or -1.</summary>
    private static int RoutingLayer(List<(List<string> Scopes, int PerToken)> layers, List<NodeProto> users)
    {
        for (int l = 0; l < layers.Count; l++)
            foreach (string scope in layers[l].Scopes)
                if (users.All(n => n.Name.StartsWith(scope + "/", StringComparison.Ordinal))) return l;
        return -1;
    }

    private static List<(List<string> Scopes, int PerToken)> ReadRouting(ModelPackage package) =>
        (package.Manifest.Routing ?? []).Select(r => (r.ExpertScopes.ToList(), r.ExpertsPerToken)).ToList();

    private static long SafeSize(TensorDType type)
    {
        try { return TensorDTypes.SizeOf(type); }
        catch (NotSupportedException) { return 0; }
    }
}
