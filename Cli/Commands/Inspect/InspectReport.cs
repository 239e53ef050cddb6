using System.Text.Json;
using Google.Protobuf;
using Recur.Package.Files;
using Recur.Graphs.Ir;
using Recur.Graphs.Onnx;
using Recur.Graphs.Weights;

namespace Recur.Cli.Commands.Inspect;

/// <summary>The facts `recur inspect` reports, gathered from the ONNX protobuf and recur.json.</summary>
internal sealed record InspectReport(
    string Path,
    IReadOnlyList<GraphReport> Graphs,
    JsonElement? Manifest)
{
    public static InspectReport Read(string target)
    {
        string full = System.IO.Path.GetFullPath(target);
        if (Directory.Exists(full))
        {
            // The runtime's own reader checks every field this report prints.
            var package = Runtime.Packages.ModelPackage.Open(full);
            var manifest = JsonDocument.Parse(package.ManifestJson).RootElement.Clone();
            var graphs = package.Graphs.Select(g => GraphReport.Read(g.Key, package.GraphPath(g.Key))).ToList();
            return new InspectReport(full, graphs, manifest);
        }
        if (InputFiles.KindOf(full) == InputFiles.Kind.Missing) throw new FileNotFoundException($"{target}: no such package folder or .onnx file", full);
        var report = GraphReport.Read("model", full);
        JsonElement? embedded = null;
        if (report.Metadata.TryGetValue("recur.package", out var m))
        {
            var bytes = System.Text.Encoding.UTF8.GetBytes(m);
            Runtime.Packages.ModelPackage.Check(bytes, $"{full}: metadata 'recur.package'");
            embedded = JsonDocument.Parse(bytes).RootElement.Clone();
        }
        return new InspectReport(full, [report], embedded);
    }

    public void Print(TextWriter o)
    {
        o.WriteLine(Path);
        if (Manifest is { } m)
        {
            o.WriteLine($"model_type: {m.GetProperty("model_type").GetString()} ({(m.TryGetProperty("hf_class", out var hf) && hf.ValueKind == JsonValueKind.String ? hf.GetString() : "class not recorded")}), dtype {m.GetProperty("dtype").GetString()}, opset {m.GetProperty("opset").GetInt32()}");
            var state = m.GetProperty("state").EnumerateArray().ToList();
            o.WriteLine($"state: {state.Count} tensors (input -> output, dtype, shape, initial value)");
            foreach (var s in state)
                o.WriteLine($"  {s.GetProperty("input").GetString()} -> {s.GetProperty("output").GetString()}  {s.GetProperty("dtype").GetString()} [{string.Join(", ", s.GetProperty("shape").EnumerateArray().Select(d => d.ToString()))}]  init {s.GetProperty("init").GetDouble():G4}");
            if (m.TryGetProperty("encoder_feeds", out var feeds) && feeds.GetArrayLength() > 0)
            {
                o.WriteLine("encoder feeds (encoder output -> decoder input):");
                foreach (var f in feeds.EnumerateArray()) o.WriteLine($"  {f.GetProperty("encoder_output").GetString()} -> {f.GetProperty("decoder_input").GetString()}");
            }
        }
        foreach (var g in Graphs)
        {
            o.WriteLine();
            o.WriteLine($"graph {g.Role}: {System.IO.Path.GetFileName(g.File)} (ir_version {g.IrVersion}, opsets {string.Join(", ", g.Opsets.Select(kv => $"{(kv.Key.Length == 0 ? "ai.onnx" : kv.Key)} {kv.Value}"))})");
            o.WriteLine($"  parameters: {g.Parameters:N0} in {g.Initializers} initializers, {g.Bytes / 1048576.0:F2} MiB{(g.ExternalBytes > 0 ? $" ({g.ExternalBytes / 1048576.0:F2} MiB external)" : "")}");
            o.WriteLine("  inputs:");
            foreach (var i in g.Inputs) o.WriteLine($"    {i}");
            o.WriteLine("  outputs:");
            foreach (var i in g.Outputs) o.WriteLine($"    {i}");
            o.WriteLine($"  ops ({g.OpCounts.Values.Sum()} nodes, subgraphs included): {string.Join(", ", g.OpCounts.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key).Select(kv => $"{kv.Key} {kv.Value}"))}");
        }
    }

    public string ToJson() => JsonSerializer.Serialize(new
    {
        path = Path,
        manifest = Manifest,
        graphs = Graphs.Select(g => new
        {
            role = g.Role, file = g.File, ir_version = g.IrVersion, opsets = g.Opsets, parameters = g.Parameters, bytes = g.Bytes,
            external_bytes = g.ExternalBytes, inputs = g.Inputs, outputs = g.Outputs, op_counts = g.OpCounts,
        }),
    }, new JsonSerializerOptions { WriteIndented = true });
}

internal sealed record GraphReport(string Role, string File, long IrVersion, IReadOnlyDictionary<string, long> Opsets, long Parameters, long Bytes,
    long ExternalBytes, int Initializers, IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs, IReadOnlyDictionary<string, int> OpCounts,
    IReadOnlyDictionary<string, string> Metadata)
{
    public static GraphReport Read(string role, string path)
    {
        InputFiles.RequireRegular(path, $"{role} graph");
        ModelProto model;
        try
        {
            using var stream = System.IO.File.OpenRead(path);
            model = ModelProto.Parser.ParseFrom(stream);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidDataException($"{path}: not an ONNX model ({e.Message})");
        }
        var graph = model.Graph ?? throw new InvalidDataException($"{path}: the model has no graph");
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        CountOps(graph, counts);
        long parameters = 0, bytes = 0, external = 0;
        foreach (var t in graph.Initializer)
        {
            long n = 1, size;
            try
            {
                foreach (long d in t.Dims) n = d >= 0 ? checked(n * d) : throw new OverflowException();
                size = checked(n * SafeSize((TensorDType)t.DataType));
                parameters = checked(parameters + n);
                bytes = checked(bytes + size);
            }
            catch (OverflowException)
            {
                throw new InvalidDataException($"{path}: initializer '{t.Name}' has shape [{string.Join(", ", t.Dims)}], which is negative or too large to be real");
            }
            if (t.DataLocation == TensorProto.Types.DataLocation.External) external += size;
        }
        var initNames = graph.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        return new GraphReport(role, path, model.IrVersion, Unique(model.OpsetImport.Select(o => (o.Domain ?? "", o.Version)), path, "opset_import"),
            parameters, bytes, external, graph.Initializer.Count,
            graph.Input.Select(i => initNames.Contains(i.Name) ? Describe(i) + " (optional: has a default)" : Describe(i)).ToList(), graph.Output.Select(Describe).ToList(), counts,
            Unique(model.MetadataProps.Select(p => (p.Key, p.Value)), path, "metadata_props"));
    }

    /// <summary>A protobuf map written as a list may repeat a key; that is a malformed model, said so.</summary>
    private static Dictionary<string, T> Unique<T>(IEnumerable<(string Key, T Value)> entries, string path, string field)
    {
        var map = new Dictionary<string, T>(StringComparer.Ordinal);
        foreach (var (key, value) in entries)
            if (!map.TryAdd(key, value)) throw new InvalidDataException($"{path}: {field} names '{key}' twice");
        return map;
    }

    private static long SafeSize(TensorDType type)
    {
        try { return TensorDTypes.SizeOf(type); }
        catch (NotSupportedException) { return 0; }
    }

    private static void CountOps(GraphProto graph, Dictionary<string, int> counts)
    {
        foreach (var node in graph.Node)
        {
            string key = string.IsNullOrEmpty(node.Domain) ? node.OpType : $"{node.Domain}.{node.OpType}";
            counts[key] = counts.GetValueOrDefault(key) + 1;
            foreach (var a in node.Attribute)
            {
                if (a.G is not null) CountOps(a.G, counts);
                foreach (var g in a.Graphs) CountOps(g, counts);
            }
        }
    }

    private static string Describe(ValueInfoProto v)
    {
        var t = v.Type?.TensorType;
        if (t is null) return v.Name;
        string dims = t.Shape is null ? "?" : string.Join(", ", t.Shape.Dim.Select(d => d.HasDimValue ? d.DimValue.ToString(System.Globalization.CultureInfo.InvariantCulture) : d.HasDimParam ? d.DimParam : "?"));
        return $"{v.Name}: {(TensorDType)t.ElemType} [{dims}]";
    }
}
