using System.Text.Json;
using System.Text.Json.Serialization;
using Recur.Package.Files;

namespace Recur.Package;

/// <summary>
/// recur.json: written by a conversion (<see cref="ToJson"/>) and read back, checked, by everything that opens a
/// package (<see cref="Read"/>): the runtime, inspect, the Triton exporter.
/// </summary>
public sealed record PackageManifest
{
    public const string FileName = "recur.json";
    public const string Format = "recur-package/1";
    /// <summary>The RWKV World tokenizer's vocabulary, which a package names in "tokenizer" when it has no tokenizer.json.</summary>
    public const string WorldVocabularyFile = "rwkv_vocab_v20230424.txt";

    [JsonPropertyName("format")] public string FormatName { get; init; } = Format;
    [JsonPropertyName("model_type")] public required string ModelType { get; init; }
    [JsonPropertyName("hf_class")] public required string HfClass { get; init; }
    [JsonPropertyName("graphs")] public required IReadOnlyDictionary<string, string> Graphs { get; init; }
    [JsonPropertyName("state")] public required IReadOnlyList<StateEntry> State { get; init; }
    [JsonPropertyName("encoder_feeds")] public IReadOnlyList<FeedEntry> EncoderFeeds { get; init; } = [];
    [JsonPropertyName("dtype")] public required string DType { get; init; }
    [JsonPropertyName("opset")] public required int Opset { get; init; }
    [JsonPropertyName("generation")] public required GenerationEntry Generation { get; init; }
    [JsonPropertyName("tokenizer")] public string? Tokenizer { get; init; }
    [JsonPropertyName("source")] public required SourceEntry Source { get; init; }
    [JsonPropertyName("config")] public required IReadOnlyDictionary<string, object?> Config { get; init; }
    /// <summary>Mixture-of-experts layers of the decoder (absent without experts): a token reads only its experts' weights.</summary>
    [JsonPropertyName("routing")] public IReadOnlyList<RoutingEntry>? Routing { get; init; }

    /// <summary>One mixture-of-experts layer: the node-name scope of each expert ("…/moe/expert_3") and the experts per token.</summary>
    public sealed record RoutingEntry(
        [property: JsonPropertyName("expert_scopes")] IReadOnlyList<string> ExpertScopes,
        [property: JsonPropertyName("experts_per_token")] int ExpertsPerToken);

    public sealed record StateEntry(
        [property: JsonPropertyName("input")] string Input,
        [property: JsonPropertyName("output")] string Output,
        [property: JsonPropertyName("dtype")] string DType,
        [property: JsonPropertyName("shape")] IReadOnlyList<object> Shape,
        [property: JsonPropertyName("init")] double Init,
        // Set for a cache of fixed capacity along this axis: bind present.* to the past_key_values.* buffer itself;
        // the graph writes the new positions at the attention mask's length minus the new tokens.
        [property: JsonPropertyName("in_place_axis")] int? InPlaceAxis = null);

    public sealed record FeedEntry(
        [property: JsonPropertyName("encoder_output")] string EncoderOutput,
        [property: JsonPropertyName("decoder_input")] string DecoderInput);

    public sealed record GenerationEntry(
        [property: JsonPropertyName("bos_token_id")] long? BosTokenId,
        [property: JsonPropertyName("eos_token_ids")] IReadOnlyList<long> EosTokenIds,
        [property: JsonPropertyName("pad_token_id")] long? PadTokenId,
        [property: JsonPropertyName("decoder_start_token_id")] long? DecoderStartTokenId);

    public sealed record SourceEntry(
        [property: JsonPropertyName("checkpoint")] string Checkpoint,
        [property: JsonPropertyName("sha256")] string Sha256,
        [property: JsonPropertyName("converter")] string Converter);

    public static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>Reads and checks recur.json in a package folder; every problem is one line naming the file and key.</summary>
    public static PackageManifest Read(string folder)
    {
        string path = Path.Combine(folder, FileName);
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"{folder}: no such package folder");
        if (InputFiles.KindOf(path) == InputFiles.Kind.Missing)
            throw new FileNotFoundException($"{folder}: not a Recur package (no {FileName}); create one with `recur convert CHECKPOINT -o {folder}`", path);
        using var doc = InputFiles.ReadJson(path, "package manifest");
        return Parse(new JsonFields(doc.RootElement, path));
    }

    /// <summary>Checks a manifest's text (recur.json, or the copy in a model's metadata) as <see cref="Read"/> would.</summary>
    public static PackageManifest Parse(ReadOnlyMemory<byte> json, string source)
    {
        using var doc = InputFiles.ParseJson(json, source);
        return Parse(new JsonFields(doc.RootElement, source));
    }

    private static PackageManifest Parse(JsonFields root)
    {
        string manifest = root.Source;
        string format = root.String("format");
        if (format != Format)
            throw new NotSupportedException($"{manifest}: package format '{format}' is not supported (this runtime reads {Format})");
        var graphsObject = root.Object("graphs");
        var graphs = graphsObject.Element.EnumerateObject().ToDictionary(p => p.Name, p => PlainFileName(graphsObject.AsString(p.Value, p.Name), $"{graphsObject.Source}, '{p.Name}'"));
        if (!graphs.ContainsKey("decoder")) throw new InvalidDataException($"{manifest}: 'graphs' has no decoder");
        var state = root.Objects("state").Select(s => new StateEntry(
            s.String("input"),
            s.String("output"),
            s.String("dtype") is var dtype && TensorDTypes.TryParse(dtype, out var t) && t is TensorDType.Float32 or TensorDType.Float16 or TensorDType.BFloat16 or TensorDType.Int64 or TensorDType.Int32
                ? dtype : throw new InvalidDataException($"{s.Source}: state dtype '{dtype}' is not one of float32, float16, bfloat16, int64, int32"),
            s.Array("shape").Select(d => d.ValueKind == JsonValueKind.Number ? (object)s.AsInteger(d, "shape", 0, int.MaxValue) : s.AsString(d, "shape")).ToList(),
            s.Number("init"),
            s.OptionalInteger("in_place_axis", 1, 7) is long axis ? (int)axis : null)).ToList();
        foreach (var s in state)
        {
            // A runtime allocates these shapes for every row before the first call.
            long elements = 1;
            foreach (var d in s.Shape)
                if (d is long n && n > 0 && elements <= InputBudgets.TensorElements) elements *= n; // each n <= int.MaxValue: no overflow
            if (elements > InputBudgets.TensorElements)
                throw new InvalidDataException($"{manifest}: state '{s.Input}' has shape [{string.Join(", ", s.Shape)}], over the {InputBudgets.TensorElements:N0}-element budget of a state tensor");
            if (!s.Input.StartsWith(Contract.PastPrefix, StringComparison.Ordinal) || s.Output != Contract.PresentFor(s.Input))
                throw new InvalidDataException($"{manifest}: state '{s.Input}' -> '{s.Output}' does not follow the contract ({Contract.PastPrefix}L.KIND -> {Contract.PresentPrefix}L.KIND)");
        }
        var feeds = root.Has("encoder_feeds")
            ? root.Objects("encoder_feeds").Select(e => new FeedEntry(e.String("encoder_output"), e.String("decoder_input"))).ToList()
            : [];
        var gen = root.Object("generation");
        long? Id(string key) => gen.OptionalInteger(key, 0, int.MaxValue);
        var eos = gen.Has("eos_token_ids") ? gen.Array("eos_token_ids").Select(x => gen.AsInteger(x, "eos_token_ids", 0, int.MaxValue)).ToList() : [];
        var routing = root.Has("routing")
            ? root.Objects("routing").Select(r => new RoutingEntry(
                r.Array("expert_scopes").Select(e => r.AsString(e, "expert_scopes")).ToList(),
                (int)r.Integer("experts_per_token", 1, 1 << 16))).ToList()
            : null;
        var source = root.Has("source") ? root.Object("source") : null;
        return new PackageManifest
        {
            ModelType = root.String("model_type"),
            HfClass = root.OptionalString("hf_class") ?? "",
            Graphs = graphs,
            State = state,
            EncoderFeeds = feeds,
            DType = root.String("dtype"),
            Opset = (int)root.Integer("opset", 1, 1000),
            Generation = new GenerationEntry(Id("bos_token_id"), eos, Id("pad_token_id"), Id("decoder_start_token_id")),
            Tokenizer = root.Has("tokenizer") ? PlainFileName(root.String("tokenizer"), $"{manifest}, 'tokenizer'") : null,
            Source = new SourceEntry(source?.OptionalString("checkpoint") ?? "", source?.OptionalString("sha256") ?? "", source?.OptionalString("converter") ?? ""),
            // Kept as read, for tools that show it; nothing downstream depends on its values.
            Config = root.Has("config") ? root.Object("config").Element.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value.Clone()) : new Dictionary<string, object?>(),
            Routing = routing,
        };
    }

    /// <summary>A file named by the manifest must be a plain name inside the package, never a path out of it.</summary>
    private static string PlainFileName(string name, string source) =>
        name.Length > 0 && name == Path.GetFileName(name) && name is not ("." or "..") ? name
            : throw new InvalidDataException($"{source}: '{name}' is not a plain file name inside the package");
}
