using System.Globalization;
using System.Text.Json;

namespace Recur.Runtime.Tokenizers;

/// <summary>
/// A JSON element together with where it is (file and JSON path), so every error the readers
/// raise names both: <see cref="InvalidDataException"/> for a malformed file and
/// <see cref="NotSupportedException"/> for a valid component Recur does not implement.
/// </summary>
internal readonly struct JsonCursor
{
    private readonly JsonElement element;

    public JsonCursor(JsonElement element, string file, string path)
    {
        this.element = element;
        File = file;
        Path = path;
    }

    public string File { get; }

    /// <summary>The element itself, for readers that walk large arrays and objects without a cursor per item.</summary>
    public JsonElement Element => element;

    public string Path { get; }

    public JsonValueKind Kind => element.ValueKind;

    public bool IsNull => element.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined;

    /// <summary>The member <paramref name="name"/>; absent or null is malformed.</summary>
    public JsonCursor Required(string name)
    {
        var child = Optional(name);
        return child ?? throw Malformed($"the required member '{name}' is missing", Child(name));
    }

    /// <summary>The member <paramref name="name"/>, or null when it is absent or JSON null.</summary>
    public JsonCursor? Optional(string name)
    {
        ExpectKind(JsonValueKind.Object);
        if (!element.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
            return null;
        return new JsonCursor(value, File, Child(name));
    }

    public string GetString()
    {
        ExpectKind(JsonValueKind.String);
        try
        {
            return element.GetString()!;
        }
        catch (InvalidOperationException)
        {
            throw Malformed("the string is not valid Unicode (an unpaired surrogate escape)");
        }
    }

    public int GetInt32()
    {
        ExpectKind(JsonValueKind.Number);
        return element.TryGetInt32(out var value) && value >= 0
            ? value
            : throw Malformed($"expected a non-negative 32-bit integer, found {element.GetRawText()}");
    }

    public double GetDouble()
    {
        ExpectKind(JsonValueKind.Number);
        return element.TryGetDouble(out var value) && double.IsFinite(value)
            ? value
            : throw Malformed($"the number {Shorten(element.GetRawText())} is out of range");
    }

    public bool GetBoolean()
    {
        if (element.ValueKind is JsonValueKind.True or JsonValueKind.False)
            return element.GetBoolean();
        throw Malformed($"expected true or false, found {Describe()}");
    }

    public string? OptionalString(string name) => Optional(name)?.GetString();

    public bool OptionalBoolean(string name, bool fallback) => Optional(name)?.GetBoolean() ?? fallback;

    public int? OptionalInt32(string name) => Optional(name)?.GetInt32();

    public int Length
    {
        get
        {
            ExpectKind(JsonValueKind.Array);
            return element.GetArrayLength();
        }
    }

    /// <summary>A cursor on an item of this array, for error messages of readers that walk <see cref="Element"/>.</summary>
    public JsonCursor Item(int index, JsonElement item) => new(item, File, $"{Path}[{index}]");

    /// <summary>A cursor on a member of this object, for error messages of readers that walk <see cref="Element"/>.</summary>
    public JsonCursor Member(string name, JsonElement value) => new(value, File, Child(name));

    public IEnumerable<JsonCursor> Items()
    {
        ExpectKind(JsonValueKind.Array);
        var index = 0;
        foreach (var item in element.EnumerateArray())
            yield return new JsonCursor(item, File, $"{Path}[{index++}]");
    }

    public IEnumerable<(string Name, JsonCursor Value)> Properties()
    {
        ExpectKind(JsonValueKind.Object);
        foreach (var property in element.EnumerateObject())
            yield return (property.Name, new JsonCursor(property.Value, File, Child(property.Name)));
    }

    /// <summary>The element's raw JSON value as a string, for a component's "type" tag.</summary>
    public string TypeName() => Required("type").GetString();

    public InvalidDataException Malformed(string message, string? at = null) =>
        new($"Malformed tokenizer file '{File}' at {at ?? Path}: {message}.");

    public NotSupportedException Unsupported(string message) =>
        new($"{message} is not supported ('{File}' at {Path}).");

    public void ExpectKind(JsonValueKind kind)
    {
        if (element.ValueKind != kind)
            throw Malformed($"expected {Article(kind)}, found {Describe()}");
    }

    private string Describe() => element.ValueKind switch
    {
        JsonValueKind.Undefined => "nothing",
        JsonValueKind.String => $"the string \"{Shorten(element.GetString()!)}\"",
        JsonValueKind.Object or JsonValueKind.Array => Article(element.ValueKind),
        _ => Shorten(element.GetRawText()),
    };

    private static string Article(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        _ => kind.ToString().ToLowerInvariant(),
    };

    private static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "...";

    private string Child(string name) =>
        IsPlainName(name) ? $"{Path}.{name}" : $"{Path}[\"{name.Replace("\"", "\\\"", StringComparison.Ordinal)}\"]";

    private static bool IsPlainName(string name) =>
        name.Length > 0 && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_');

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{File} {Path}");
}
