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
    /// <summary>Where this object sits in the file ("ssm_cfg." for a section), so errors name the field's full path.</summary>
    private readonly string prefix;

    private ModelConfig(JsonElement root, string path, string prefix = "")
    {
        this.root = root;
        Path = path;
        this.prefix = prefix;
    }

    public string Path { get; }
    public string ModelType => String("model_type");

    public static ModelConfig Load(string path)
    {
        if (InputFiles.KindOf(path) == InputFiles.Kind.Missing)
            throw new FileNotFoundException($"{path}: not found (a Hugging Face checkpoint folder has a config.json)", path);
        string text = InputFiles.ReadText(path, "config");
        using var doc = InputFiles.ParseJson(System.Text.Encoding.UTF8.GetBytes(QuoteNamedNumbers(text)), $"config {path}", new JsonDocumentOptions { AllowTrailingCommas = true });
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new ConfigException($"{path}: expected a JSON object, found {doc.RootElement.ValueKind}");
        return new ModelConfig(doc.RootElement.Clone(), path);
    }

    public static ModelConfig Parse(string json, string path = "config.json")
    {
        try
        {
            using var doc = JsonDocument.Parse(QuoteNamedNumbers(json));
            return new ModelConfig(doc.RootElement.Clone(), path);
        }
        catch (JsonException e)
        {
            throw new ConfigException($"{path}: not valid JSON ({e.Message})");
        }
    }

    /// <summary>
    /// Python's json module writes float('inf') and float('nan') as the bare words Infinity, -Infinity and NaN
    /// (real Mamba-2 configs do, in time_step_limit), which JSON does not allow: outside strings they become
    /// the strings "Infinity", "-Infinity" and "NaN"; the number readers accept the infinities and name a NaN.
    /// </summary>
    private static string QuoteNamedNumbers(string json)
    {
        var text = new System.Text.StringBuilder(json.Length);
        bool inString = false;
        for (int i = 0; i < json.Length; i++)
        {
            char ch = json[i];
            if (inString)
            {
                text.Append(ch);
                if (ch == '\\' && i + 1 < json.Length) text.Append(json[++i]);
                else if (ch == '"') inString = false;
                continue;
            }
            if (ch == '"') inString = true;
            string? word = inString ? null : NamedNumbers.FirstOrDefault(w => string.CompareOrdinal(json, i, w, 0, w.Length) == 0
                && (i + w.Length == json.Length || !char.IsLetterOrDigit(json[i + w.Length])));
            if (word is null) { text.Append(ch); continue; }
            text.Append('"').Append(word).Append('"');
            i += word.Length - 1;
        }
        return text.ToString();
    }

    private static readonly string[] NamedNumbers = ["-Infinity", "Infinity", "NaN"];

    /// <summary>A nested object (e.g. mamba_ssm's ssm_cfg) read the same way; an absent one is empty.</summary>
    public ModelConfig Section(string key)
    {
        if (!Has(key)) return new ModelConfig(JsonDocument.Parse("{}").RootElement.Clone(), Path, $"{prefix}{key}.");
        return Get(key, (k, v) => v.ValueKind == JsonValueKind.Object ? new ModelConfig(v, Path, $"{prefix}{k}.") : throw Mistyped(k, "an object", v));
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

    /// <summary>A list of numbers (Infinity allowed, as Python writes it).</summary>
    public IReadOnlyList<double> Doubles(string key) => Get(key, (k, v) =>
        v.ValueKind == JsonValueKind.Array ? v.EnumerateArray().Select((e, i) => ReadDouble($"{k}[{i}]", e)).ToList()
            : throw Mistyped(k, "a list of numbers", v));
    /// <summary>A list of integers (e.g. a per-layer size).</summary>
    public IReadOnlyList<int> Ints(string key) => Get(key, (k, v) =>
        v.ValueKind == JsonValueKind.Array ? v.EnumerateArray().Select((e, i) => ReadInt($"{k}[{i}]", e)).ToList()
            : throw Mistyped(k, "a list of integers", v));

    /// <summary>A positive integer field (a size or count).</summary>
    public int Positive(string key)
    {
        int v = Int(key);
        return v > 0 ? v : throw Invalid(key, v.ToString(CultureInfo.InvariantCulture), "a positive integer");
    }

    public int Positive(string key, int fallback) => Has(key) ? Positive(key) : fallback;

    /// <summary>An error for a field whose value is valid JSON but not something this model can use.</summary>
    public ConfigException Invalid(string key, string found, string expected) =>
        new($"{Path}: field '{prefix}{key}' is {found}; expected {expected}");

    private T Get<T>(string key, Func<string, JsonElement, T> read)
    {
        if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null)
            throw new ConfigException($"{Path}: field '{prefix}{key}' is missing");
        return read(key, v);
    }

    private int ReadInt(string key, JsonElement v)
    {
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i)) return i;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue) return (int)d;
        throw Mistyped(key, "an integer", v);
    }

    /// <summary>A finite number, or Python's Infinity / -Infinity (Mamba-2's time_step_limit); 1e400 and NaN are refused.</summary>
    private double ReadDouble(string key, JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.Number when v.GetDouble() is var d && double.IsFinite(d) => d,
        JsonValueKind.String when v.GetString() is "Infinity" => double.PositiveInfinity,
        JsonValueKind.String when v.GetString() is "-Infinity" => double.NegativeInfinity,
        _ => throw Mistyped(key, "a finite number (or Infinity)", v),
    };

    private bool ReadBool(string key, JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw Mistyped(key, "true or false", v),
    };

    private string ReadString(string key, JsonElement v) =>
        v.ValueKind == JsonValueKind.String ? v.GetString()! : throw Mistyped(key, "a string", v);

    private ConfigException Mistyped(string key, string expected, JsonElement found) =>
        new($"{Path}: field '{prefix}{key}' is {found.GetRawText()}; expected {expected}");

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
