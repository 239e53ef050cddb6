using System.Globalization;
using System.Text.Json;

namespace Recur.Package.Files;

/// <summary>
/// Checked reading of a JSON object from a file Recur did not necessarily write: every miss or mistyped value
/// is an InvalidDataException naming the file and the key, with what was expected and what was found.
/// </summary>
public sealed class JsonFields
{
    private readonly JsonElement element;

    /// <param name="source">The file (and, for nested objects, the path to this object) for messages.</param>
    public JsonFields(JsonElement element, string source)
    {
        if (element.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{source}: is {Describe(element)}; expected a JSON object");
        this.element = element;
        Source = source;
    }

    public string Source { get; }
    public JsonElement Element => element;

    public bool Has(string key) => element.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null;

    public JsonElement Get(string key) =>
        element.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null ? v
            : throw new InvalidDataException($"{Source}: key '{key}' is missing");

    public JsonFields Object(string key) => new(Get(key), $"{Source}, '{key}'");

    public string String(string key) => AsString(Get(key), key);
    public string? OptionalString(string key) => Has(key) ? String(key) : null;

    public long Integer(string key, long min, long max) => AsInteger(Get(key), key, min, max);
    public long? OptionalInteger(string key, long min, long max) => Has(key) ? Integer(key, min, max) : null;

    public double Number(string key)
    {
        var v = Get(key);
        return v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && double.IsFinite(d) ? d : throw Mistyped(key, "a finite number", v);
    }

    /// <summary>The items of an array (an error if the key holds anything else).</summary>
    public IReadOnlyList<JsonElement> Array(string key)
    {
        var v = Get(key);
        return v.ValueKind == JsonValueKind.Array ? v.EnumerateArray().ToList() : throw Mistyped(key, "an array", v);
    }

    /// <summary>The objects of an array, each readable with its index in messages.</summary>
    public IReadOnlyList<JsonFields> Objects(string key) =>
        Array(key).Select((e, i) => new JsonFields(e, $"{Source}, '{key}'[{i}]")).ToList();

    public string AsString(JsonElement v, string key) =>
        v.ValueKind == JsonValueKind.String ? v.GetString()! : throw Mistyped(key, "a string", v);

    /// <summary>An integer within [min, max]; 1.5, 1e30 and "7" are refused, not rounded or wrapped.</summary>
    public long AsInteger(JsonElement v, string key, long min, long max)
    {
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long n))
            throw Mistyped(key, $"an integer from {min} to {max}", v);
        return n >= min && n <= max ? n : throw Mistyped(key, $"an integer from {min} to {max}", v);
    }

    public InvalidDataException Mistyped(string key, string expected, JsonElement found) =>
        new($"{Source}: key '{key}' is {Describe(found)}; expected {expected}");

    /// <summary>A short, one-line account of a value for messages.</summary>
    public static string Describe(JsonElement v)
    {
        string raw = v.ValueKind switch
        {
            JsonValueKind.Object => "an object",
            JsonValueKind.Array => $"an array of {v.GetArrayLength()}",
            _ => v.GetRawText(),
        };
        return raw.Length > 60 ? raw[..60] + "..." : raw;
    }

    public static string Invariant(long n) => n.ToString(CultureInfo.InvariantCulture);
}
