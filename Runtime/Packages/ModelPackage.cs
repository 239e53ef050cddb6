using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
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
        if (!File.Exists(manifest))
            throw new FileNotFoundException($"{path}: not a Recur package (no {ManifestFile}); create one with `recur convert CHECKPOINT -o {path}`", manifest);
        string json = File.ReadAllText(manifest);
        try
        {
            using var doc = JsonDocument.Parse(json);
            return Parse(doc.RootElement, dir, json, manifest);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{manifest}: not valid JSON ({e.Message})");
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{manifest}: malformed ({e.Message})");
        }
    }

    private static ModelPackage Parse(JsonElement root, string dir, string json, string manifest)
    {
        string format = root.GetProperty("format").GetString() ?? "";
        if (format != SupportedFormat)
            throw new NotSupportedException($"{manifest}: package format '{format}' is not supported (this runtime reads {SupportedFormat})");
        var graphs = root.GetProperty("graphs").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        if (!graphs.ContainsKey("decoder")) throw new InvalidDataException($"{manifest}: 'graphs' has no decoder");
        foreach (var (role, file) in graphs)
            if (!File.Exists(Path.Combine(dir, file)))
                throw new FileNotFoundException($"{manifest}: {role} graph '{file}' is missing from the package", Path.Combine(dir, file));
        var state = root.GetProperty("state").EnumerateArray().Select(s => new StateTensor(
            s.GetProperty("input").GetString()!,
            s.GetProperty("output").GetString()!,
            ParseDType(s.GetProperty("dtype").GetString()!, manifest),
            s.GetProperty("shape").EnumerateArray().Select(d => d.ValueKind == JsonValueKind.Number ? (object)d.GetInt64() : d.GetString()!).ToList(),
            s.GetProperty("init").GetDouble(),
            s.TryGetProperty("in_place_axis", out var axis) && axis.ValueKind == JsonValueKind.Number ? axis.GetInt32() : null)).ToList();
        var feeds = root.TryGetProperty("encoder_feeds", out var f)
            ? f.EnumerateArray().Select(e => (e.GetProperty("encoder_output").GetString()!, e.GetProperty("decoder_input").GetString()!)).ToList()
            : [];
        var gen = root.GetProperty("generation");
        long? Id(string key) => gen.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt64() : null;
        var eos = gen.TryGetProperty("eos_token_ids", out var e) ? e.EnumerateArray().Select(x => x.GetInt64()).ToList() : [];
        return new ModelPackage(dir)
        {
            ModelType = root.GetProperty("model_type").GetString()!,
            Graphs = graphs,
            State = state,
            EncoderFeeds = feeds,
            Generation = new GenerationDefaults(Id("bos_token_id"), eos, Id("pad_token_id"), Id("decoder_start_token_id")),
            DType = root.GetProperty("dtype").GetString()!,
            Tokenizer = root.TryGetProperty("tokenizer", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null,
            ManifestJson = json,
        };
    }

    private static TensorElementType ParseDType(string name, string manifest) => name switch
    {
        "fp32" or "float32" => TensorElementType.Float,
        "fp16" or "float16" => TensorElementType.Float16,
        "bf16" or "bfloat16" => TensorElementType.BFloat16,
        "int64" => TensorElementType.Int64,
        "int32" => TensorElementType.Int32,
        _ => throw new InvalidDataException($"{manifest}: state dtype '{name}' is unknown"),
    };
}
