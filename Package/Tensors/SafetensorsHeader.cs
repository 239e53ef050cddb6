using System.Text.Json;
using System.Text.Unicode;
using static Recur.Package.Tensors.NameSuggestions;

namespace Recur.Package.Tensors;

/// <summary>Where a tensor's bytes are, relative to the start of the byte buffer that follows the header.</summary>
internal readonly record struct TensorSlot(TensorEntry Entry, long Begin, long Length);

/// <summary>
/// A safetensors header, parsed and checked against the byte buffer it describes:
/// <c>{"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, "__metadata__": {"k": "v"}}</c>.
/// As the format requires, tensors tile the buffer exactly: no overlaps, no holes, nothing after the last.
/// </summary>
internal sealed class SafetensorsHeader
{
    /// <summary>The reference implementation refuses larger headers; so do we, before allocating.</summary>
    public const long MaxBytes = 100_000_000;

    private const string MetadataKey = "__metadata__";

    // Far above any real weight's rank; bounds what a hostile header can make us allocate for shapes.
    private const int MaxRank = 64;

    private SafetensorsHeader(Dictionary<string, TensorSlot> tensors, Dictionary<string, string> metadata)
    {
        Tensors = tensors;
        Metadata = metadata;
    }

    public IReadOnlyDictionary<string, TensorSlot> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <param name="file">The file, for messages.</param>
    /// <param name="json">The header bytes.</param>
    /// <param name="bufferLength">Bytes in the file after the header.</param>
    public static SafetensorsHeader Parse(string file, byte[] json, long bufferLength)
    {
        if (!Utf8.IsValid(json))
            throw new InvalidDataException(
                $"{file}: the header is not valid UTF-8 (first bad byte at header offset {FirstInvalidUtf8(json)}); not a safetensors file, or a damaged one");

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{file}: the header is not valid JSON: {OneLine(e.Message)}", e);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException(
                    $"{file}: the header is a JSON {Kind(root)}, expected an object of tensor entries");

            var tensors = new Dictionary<string, TensorSlot>(StringComparer.Ordinal);
            Dictionary<string, string>? metadata = null;
            foreach (var property in root.EnumerateObject())
            {
                if (property.Name == MetadataKey)
                {
                    if (metadata is not null)
                        throw new InvalidDataException($"{file}: the header has two \"{MetadataKey}\" keys (duplicate JSON key)");
                    metadata = ParseMetadata(file, property.Value);
                    continue;
                }
                if (tensors.ContainsKey(property.Name))
                    throw new InvalidDataException(
                        $"{file}: tensor {Quote(property.Name)} appears twice in the header (duplicate JSON key)");
                tensors.Add(property.Name, ParseEntry(file, property.Name, property.Value, bufferLength));
            }
            CheckTiling(file, tensors, bufferLength);
            return new SafetensorsHeader(tensors, metadata ?? new Dictionary<string, string>(StringComparer.Ordinal));
        }
    }

    private static Dictionary<string, string> ParseMetadata(string file, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException(
                $"{file}: \"{MetadataKey}\" is a JSON {Kind(value)}, expected an object of string to string");
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
                throw new InvalidDataException(
                    $"{file}: \"{MetadataKey}\" key {Quote(item.Name)} is a JSON {Kind(item.Value)}, expected a string (metadata maps strings to strings)");
            if (!metadata.TryAdd(item.Name, item.Value.GetString()!))
                throw new InvalidDataException($"{file}: \"{MetadataKey}\" key {Quote(item.Name)} appears twice (duplicate JSON key)");
        }
        return metadata;
    }

    private static TensorSlot ParseEntry(string file, string name, JsonElement value, long bufferLength)
    {
        string where = $"{file}: tensor {Quote(name)}";
        if (value.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException(
                $"{where} is a JSON {Kind(value)}, expected an object with dtype, shape and data_offsets");

        var fields = new Dictionary<string, JsonElement>(3, StringComparer.Ordinal);
        foreach (var field in value.EnumerateObject())
        {
            if (field.Name is not ("dtype" or "shape" or "data_offsets")) continue; // the reference implementation ignores others too
            if (!fields.TryAdd(field.Name, field.Value))
                throw new InvalidDataException($"{where} has two \"{field.Name}\" fields (duplicate JSON key)");
        }

        var dtype = ParseDType(where, Field(where, fields, "dtype"));
        var shape = ParseShape(where, Field(where, fields, "shape"));
        var (begin, end) = ParseOffsets(where, Field(where, fields, "data_offsets"), bufferLength);

        long bytes = ByteCount(where, dtype, shape, end - begin);
        if (bytes != end - begin)
            throw new InvalidDataException(
                $"{where}: shape {ShapeText(shape)} of {SafetensorsDTypes.NameOf(dtype)} needs {bytes} bytes, but data_offsets [{begin}, {end}] hold {end - begin}");
        return new TensorSlot(new TensorEntry(name, dtype, shape), begin, end - begin);
    }

    private static JsonElement Field(string where, Dictionary<string, JsonElement> fields, string name) =>
        fields.TryGetValue(name, out var value) ? value
        : throw new InvalidDataException($"{where} has no \"{name}\" field; every tensor entry needs dtype, shape and data_offsets");

    private static TensorDType ParseDType(string where, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.String)
            throw new InvalidDataException($"{where}: \"dtype\" is a JSON {Kind(value)}, expected a string such as \"F32\"");
        string name = value.GetString()!;
        if (SafetensorsDTypes.TryParse(name, out var dtype)) return dtype;
        if (SafetensorsDTypes.IsKnownButUnsupported(name))
            throw new NotSupportedException(
                $"{where} has dtype {name}, which Recur does not read yet (supported: {SafetensorsDTypes.SupportedList}); convert the checkpoint to float32, float16 or bfloat16");
        throw new InvalidDataException(
            $"{where} has unknown dtype {Quote(name)}; safetensors dtypes Recur reads are {SafetensorsDTypes.SupportedList}");
    }

    private static long[] ParseShape(string where, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{where}: \"shape\" is a JSON {Kind(value)}, expected an array of non-negative integers");
        int rank = value.GetArrayLength();
        if (rank > MaxRank)
            throw new NotSupportedException($"{where}: shape has {rank} dims; Recur reads tensors of at most {MaxRank}");
        var shape = new long[rank];
        int i = 0;
        foreach (var dim in value.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out long d) || d < 0)
                throw new InvalidDataException(
                    $"{where}: shape dim {i} is {Raw(dim)}, expected a non-negative integer");
            shape[i++] = d;
        }
        return shape;
    }

    private static (long Begin, long End) ParseOffsets(string where, JsonElement value, long bufferLength)
    {
        if (value.ValueKind != JsonValueKind.Array || value.GetArrayLength() != 2)
            throw new InvalidDataException(
                $"{where}: \"data_offsets\" is {Raw(value)}, expected [begin, end] (two integers)");
        var begin = Offset(where, value[0], "begin");
        var end = Offset(where, value[1], "end");
        if (end < begin)
            throw new InvalidDataException($"{where}: data_offsets end {end} is before begin {begin}");
        if (end > bufferLength)
            throw new InvalidDataException(
                $"{where}: data_offsets [{begin}, {end}] run past the end of the data buffer ({bufferLength} bytes after the header); truncated file?");
        return (begin, end);
    }

    private static long Offset(string where, JsonElement value, string which)
    {
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetUInt64(out ulong offset))
            throw new InvalidDataException(
                $"{where}: data_offsets {which} is {Raw(value)}, expected a non-negative integer");
        // Anything past long.MaxValue is past any real file; the bound check after this reports it.
        return offset > long.MaxValue ? long.MaxValue : (long)offset;
    }

    private static long ByteCount(string where, TensorDType dtype, long[] shape, long available)
    {
        try
        {
            long bytes = TensorDTypes.SizeOf(dtype);
            foreach (long d in shape) bytes = checked(bytes * d);
            return bytes;
        }
        catch (OverflowException)
        {
            throw new InvalidDataException(
                $"{where}: shape {ShapeText(shape)} of {SafetensorsDTypes.NameOf(dtype)} overflows a 64-bit byte count, but data_offsets hold {available} bytes");
        }
    }

    /// <summary>Sorted by offset, each tensor must start where the previous one ended, and the last end the buffer.</summary>
    private static void CheckTiling(string file, Dictionary<string, TensorSlot> tensors, long bufferLength)
    {
        var slots = tensors.Values.OrderBy(s => s.Begin).ThenBy(s => s.Length).ThenBy(s => s.Entry.Name, StringComparer.Ordinal).ToArray();
        long expected = 0;
        TensorSlot? previous = null;
        foreach (var slot in slots)
        {
            if (slot.Begin < expected)
                throw new InvalidDataException(
                    $"{file}: tensors {Quote(previous!.Value.Entry.Name)} [{previous.Value.Begin}, {expected}] and {Quote(slot.Entry.Name)} [{slot.Begin}, {slot.Begin + slot.Length}] overlap in the data buffer");
            if (slot.Begin > expected)
                throw new InvalidDataException(
                    $"{file}: data buffer bytes [{expected}, {slot.Begin}) before tensor {Quote(slot.Entry.Name)} belong to no tensor; safetensors forbids holes");
            expected = slot.Begin + slot.Length;
            previous = slot;
        }
        if (expected != bufferLength)
            throw new InvalidDataException(
                $"{file}: the data buffer has {bufferLength} bytes but the tensors cover {expected}; safetensors forbids trailing bytes (truncated header or appended data?)");
    }

    private static string ShapeText(long[] shape) => $"[{string.Join(", ", shape)}]";

    private static string Kind(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        _ => "null",
    };

    /// <summary>A JSON value as written, shortened, for found-versus-expected messages.</summary>
    private static string Raw(JsonElement value)
    {
        string text = value.GetRawText();
        return text.Length <= 60 ? OneLine(text) : OneLine(text[..60]) + "...";
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");

    private static int FirstInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        int at = 0;
        while (at < bytes.Length)
        {
            if (System.Text.Rune.DecodeFromUtf8(bytes[at..], out _, out int consumed) != System.Buffers.OperationStatus.Done)
                return at;
            at += consumed;
        }
        return at;
    }
}
