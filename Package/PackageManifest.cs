using System.Text.Json;
using System.Text.Json.Serialization;

namespace Recur.Package;

/// <summary>recur.json as written by a conversion (the runtime reads the same file with its own reader).</summary>
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
}
