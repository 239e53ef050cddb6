using System.Text.Json;
using Microsoft.ML.OnnxRuntime.Tensors;
using Recur.Package.Files;
using Recur.Runtime.Ort;

namespace Recur.Runtime.Packages;

/// <summary>
/// A state tensor of the package's contract, read from recur.json. <see cref="InPlaceAxis"/> set: a buffer of fixed
/// capacity along that axis that the graph updates in place, so its output is bound to the input's own buffer.
/// </summary>
public sealed record StateTensor(string Input, string Output, TensorElementType DType, IReadOnlyList<object> Shape, double Init, int? InPlaceAxis = null)
{
    /// <summary>Positions an in-place buffer holds (null for other states).</summary>
    public long? Capacity => InPlaceAxis is int axis && Shape[axis] is long n ? n : null;

    /// <summary>The initial shape: "batch" is the batch size, "past_sequence" (and any other symbol) 0.</summary>
    public long[] InitialShape(int batch) => Shape.Select(d => d switch
    {
        long n => n,
        "batch" => batch,
        _ => 0L,
    }).ToArray();

    /// <summary>Whether the state keeps its size from call to call (recurrent state, bounded windows).</summary>
    public bool IsFixedSize => Shape.All(d => d is long || Equals(d, "batch"));
}

public sealed record GenerationDefaults(long? BosTokenId, IReadOnlyList<long> EosTokenIds, long? PadTokenId, long? DecoderStartTokenId);

/// <summary>
/// A converted model on disk, described by its recur.json: which graphs, which state tensors and how
/// they start, which encoder outputs feed the decoder. The runtime needs nothing else.
/// </summary>
public sealed class ModelPackage
{
    public const string ManifestFile = "recur.json";
    public const string SupportedFormat = "recur-package/1";

    private ModelPackage(string directory) => Directory = directory;

    public string Directory { get; }
    public required string ModelType { get; init; }
    public required IReadOnlyDictionary<string, string> Graphs { get; init; }
    public required IReadOnlyList<StateTensor> State { get; init; }
    public required IReadOnlyList<(string EncoderOutput, string DecoderInput)> EncoderFeeds { get; init; }
    public required GenerationDefaults Generation { get; init; }
    public required string DType { get; init; }
    public string? Tokenizer { get; init; }
    public required string ManifestJson { get; init; }

    public bool IsEncoderDecoder => Graphs.ContainsKey("encoder");
    public string GraphPath(string role) => Path.Combine(Directory, Graphs[role]);

    /// <summary>Opens a package folder (or the folder of a model.onnx inside one).</summary>
    public static ModelPackage Open(string path)
    {
        string dir = File.Exists(path) ? Path.GetDirectoryName(Path.GetFullPath(path))! : Path.GetFullPath(path);
        string manifest = Path.Combine(dir, ManifestFile);
        if (!System.IO.Directory.Exists(dir)) throw new DirectoryNotFoundException($"{path}: no such package folder");
        if (InputFiles.KindOf(manifest) == InputFiles.Kind.Missing)
            throw new FileNotFoundException($"{path}: not a Recur package (no {ManifestFile}); create one with `recur convert CHECKPOINT -o {path}`", manifest);
        using var doc = InputFiles.ReadJson(manifest, "package manifest");
        var package = Parse(new JsonFields(doc.RootElement, manifest), dir);
        foreach (var (role, file) in package.Graphs)
        {
            InputFiles.RequireRegular(Path.Combine(dir, file), $"{manifest}: {role} graph");
            // ONNX Runtime would block on a pipe in place of the weights as it would on the graph.
            string data = Path.Combine(dir, file + ".data");
            if (InputFiles.KindOf(data) != InputFiles.Kind.Missing) InputFiles.RequireRegular(data, $"{manifest}: {role} graph's external data");
        }
        return package;
    }

    /// <summary>Checks a manifest's text (recur.json, or the copy in a model's metadata) as <see cref="Open"/> would, without its files.</summary>
    public static void Check(ReadOnlyMemory<byte> json, string source)
    {
        using var doc = InputFiles.ParseJson(json, source);
        Parse(new JsonFields(doc.RootElement, source), "");
    }

    private static ModelPackage Parse(JsonFields root, string dir)
    {
        string manifest = root.Source;
        string format = root.String("format");
        if (format != SupportedFormat)
            throw new NotSupportedException($"{manifest}: package format '{format}' is not supported (this runtime reads {SupportedFormat})");
        var graphsObject = root.Object("graphs");
        var graphs = graphsObject.Element.EnumerateObject().ToDictionary(p => p.Name, p => PlainFileName(graphsObject.AsString(p.Value, p.Name), $"{graphsObject.Source}, '{p.Name}'"));
        if (!graphs.ContainsKey("decoder")) throw new InvalidDataException($"{manifest}: 'graphs' has no decoder");
        var state = root.Objects("state").Select(s => new StateTensor(
            s.String("input"),
            s.String("output"),
            ParseDType(s.String("dtype"), s.Source),
            s.Array("shape").Select(d => d.ValueKind == JsonValueKind.Number ? (object)s.AsInteger(d, "shape", 0, int.MaxValue) : s.AsString(d, "shape")).ToList(),
            s.Number("init"),
            // A buffer updated in place along this axis (a KV cache of fixed capacity), shared by past and present.
            s.OptionalInteger("in_place_axis", 1, 7) is long axis ? (int)axis : null)).ToList();
        foreach (var s in state)
        {
            // The runtime allocates these shapes for every row before the first call.
            long elements = 1;
            foreach (var d in s.Shape)
                if (d is long n && n > 0 && elements <= InputBudgets.TensorElements) elements *= n; // each n <= int.MaxValue: no overflow
            if (elements > InputBudgets.TensorElements)
                throw new InvalidDataException($"{manifest}: state '{s.Input}' has shape [{string.Join(", ", s.Shape)}], over the {InputBudgets.TensorElements:N0}-element budget of a state tensor");
            if (!s.Input.StartsWith(Contract.PastPrefix, StringComparison.Ordinal) || s.Output != Contract.PresentFor(s.Input))
                throw new InvalidDataException($"{manifest}: state '{s.Input}' -> '{s.Output}' does not follow the contract ({Contract.PastPrefix}L.KIND -> {Contract.PresentPrefix}L.KIND)");
        }
        var feeds = root.Has("encoder_feeds")
            ? root.Objects("encoder_feeds").Select(e => (e.String("encoder_output"), e.String("decoder_input"))).ToList()
            : [];
        var gen = root.Object("generation");
        long? Id(string key) => gen.OptionalInteger(key, 0, int.MaxValue);
        var eos = gen.Has("eos_token_ids") ? gen.Array("eos_token_ids").Select(x => gen.AsInteger(x, "eos_token_ids", 0, int.MaxValue)).ToList() : [];
        root.Integer("opset", 1, 1000);
        return new ModelPackage(dir)
        {
            ModelType = root.String("model_type"),
            Graphs = graphs,
            State = state,
            EncoderFeeds = feeds,
            Generation = new GenerationDefaults(Id("bos_token_id"), eos, Id("pad_token_id"), Id("decoder_start_token_id")),
            DType = root.String("dtype"),
            Tokenizer = root.Has("tokenizer") ? PlainFileName(root.String("tokenizer"), $"{manifest}, 'tokenizer'") : null,
            ManifestJson = root.Element.GetRawText(),
        };
    }

    /// <summary>A file named by the manifest must be a plain name inside the package, never a path out of it.</summary>
    private static string PlainFileName(string name, string source) =>
        name.Length > 0 && name == Path.GetFileName(name) && name is not ("." or "..") ? name
            : throw new InvalidDataException($"{source}: '{name}' is not a plain file name inside the package");

    /// <summary>ONNX and ONNX Runtime number element types alike, so the package's type converts by value.</summary>
    private static TensorElementType ParseDType(string name, string manifest) =>
        TensorDTypes.TryParse(name, out var type) && type is TensorDType.Float32 or TensorDType.Float16 or TensorDType.BFloat16 or TensorDType.Int64 or TensorDType.Int32
            ? (TensorElementType)(int)type
            : throw new InvalidDataException($"{manifest}: state dtype '{name}' is not one of float32, float16, bfloat16, int64, int32");
}
