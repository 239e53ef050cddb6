using System.Globalization;
using System.Text.Json;
using Recur.Package.Files;

namespace Recur.Graphs.Config;

/// <summary>A config.json field that is missing, mistyped or has a value Recur cannot honour.</summary>
public sealed class ConfigException(string message) : Exception(message);

/// <summary>
/// Typed, checked access to a Hugging Face config.json. Every error names the file and the field,
/// and says what was found versus expected.
/// </summary>
public sealed class ModelConfig
{
    private readonly JsonElement root;

    private ModelConfig(JsonElement root, string path)
    {
        this.root = root;
        Path = path;
    }

    public string Path { get; }
    public string ModelType => String("model_type");

    public static ModelConfig Load(string path)
    {
        if (InputFiles.KindOf(path) == InputFiles.Kind.Missing)
            throw new FileNotFoundException($"{path}: not found (a Hugging Face checkpoint folder has a config.json)", path);
        using var doc = InputFiles.ReadJson(path, "config", new JsonDocumentOptions { AllowTrailingCommas = true });
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new ConfigException($"{path}: expected a JSON object, found {doc.RootElement.ValueKind}");
        return new ModelConfig(doc.RootElement.Clone(), path);
    }

    public static ModelConfig Parse(string json, string path = "config.json")
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            return new ModelConfig(doc.RootElement.Clone(), path);
        }
        catch (JsonException e)
        {
            throw new ConfigException($"{path}: not valid JSON ({e.Message})");
        }
    }

    /// <summary>The file's object as it is, for readers with their own rules (generation ids).</summary>
    public JsonElement Root => root;

    public bool Has(string key) => root.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null;
    /// <summary>Present with the value null, which some fields use for "off" while a missing field takes a default.</summary>
    public bool IsNull(string key) => root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Null;

    public int Int(string key) => Get(key, ReadInt);
    public int Int(string key, int fallback) => Has(key) ? Int(key) : fallback;
    public double Double(string key) => Get(key, ReadDouble);
    public double Double(string key, double fallback) => Has(key) ? Double(key) : fallback;
    public double? OptionalDouble(string key) => Has(key) ? Double(key) : null;
    public int? OptionalInt(string key) => Has(key) ? Int(key) : null;
    public bool Bool(string key, bool fallback) => Has(key) ? Get(key, ReadBool) : fallback;
    public string String(string key) => Get(key, ReadString);
    public string String(string key, string fallback) => Has(key) ? String(key) : fallback;
    public string? OptionalString(string key) => Has(key) ? String(key) : null;

    public IReadOnlyList<string> Strings(string key) => Get(key, (k, v) =>
        v.ValueKind == JsonValueKind.Array ? v.EnumerateArray().Select((e, i) => ReadString($"{k}[{i}]", e)).ToList()
            : throw Mistyped(k, "a list of strings", v));

    /// <summary>A positive integer field (a size or count).</summary>
    public int Positive(string key)
    {
        int v = Int(key);
        return v > 0 ? v : throw Invalid(key, v.ToString(CultureInfo.InvariantCulture), "a positive integer");
    }

    public int Positive(string key, int fallback) => Has(key) ? Positive(key) : fallback;

    /// <summary>An error for a field whose value is valid JSON but not something this model can use.</summary>
    public ConfigException Invalid(string key, string found, string expected) =>
        new($"{Path}: field '{key}' is {found}; expected {expected}");

    private T Get<T>(string key, Func<string, JsonElement, T> read)
    {
        if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null)
            throw new ConfigException($"{Path}: field '{key}' is missing");
        return read(key, v);
    }

    private int ReadInt(string key, JsonElement v)
    {
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i)) return i;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue) return (int)d;
        throw Mistyped(key, "an integer", v);
    }

    private double ReadDouble(string key, JsonElement v) =>
        v.ValueKind == JsonValueKind.Number && v.GetDouble() is var d && double.IsFinite(d) ? d : throw Mistyped(key, "a finite number", v);

    private bool ReadBool(string key, JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw Mistyped(key, "true or false", v),
    };

    private string ReadString(string key, JsonElement v) =>
        v.ValueKind == JsonValueKind.String ? v.GetString()! : throw Mistyped(key, "a string", v);

    private ConfigException Mistyped(string key, string expected, JsonElement found) =>
        new($"{Path}: field '{key}' is {found.GetRawText()}; expected {expected}");

    /// <summary>The config's top-level scalar fields, for the package's config summary.</summary>
    public IReadOnlyDictionary<string, object?> Scalars() =>
        root.EnumerateObject()
            .Where(p => p.Value.ValueKind is JsonValueKind.Number or JsonValueKind.String or JsonValueKind.True or JsonValueKind.False)
            .ToDictionary(p => p.Name, p => (object?)(p.Value.ValueKind switch
            {
                // 1e400 reads as infinity, which JSON cannot hold: the summary keeps the text as written.
                JsonValueKind.Number => double.IsFinite(p.Value.GetDouble()) ? p.Value.GetDouble() : p.Value.GetRawText(),
                JsonValueKind.String => p.Value.GetString(),
                JsonValueKind.True => true,
                _ => false,
            }));
}
