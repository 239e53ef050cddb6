using System.Text.Json;
using static Recur.Package.Tensors.NameSuggestions;
using Recur.Package.Files;

namespace Recur.Export.Checkpoints;

/// <summary>
/// A Hugging Face shard index (model.safetensors.index.json, and pytorch_model.bin.index.json
/// for the same schema): <c>{"metadata": {...}, "weight_map": {"tensor name": "shard file"}}</c>.
/// </summary>
internal sealed class ShardIndex
{
    // Real indexes are tens of kilobytes even for the largest models.
    private const long MaxBytes = 100_000_000;

    private ShardIndex(string path, Dictionary<string, string> weightMap)
    {
        Path = path;
        WeightMap = weightMap;
    }

    public string Path { get; }

    /// <summary>Tensor name to shard file name (a plain name in the index's folder).</summary>
    public IReadOnlyDictionary<string, string> WeightMap { get; }

    public static ShardIndex Read(string path)
    {
        InputFiles.RequireRegular(path, "shard index");
        var info = new FileInfo(path);
        if (info.Length > MaxBytes)
            throw new InvalidDataException($"{path}: the shard index is {info.Length} bytes, more than the {MaxBytes} a real index needs");

        var bytes = File.ReadAllBytes(path);
        if (!System.Text.Unicode.Utf8.IsValid(bytes))
            throw new InvalidDataException($"{path}: the shard index is not valid UTF-8 text");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(bytes);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: the shard index is not valid JSON: {e.Message.ReplaceLineEndings(" ")}", e);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{path}: the shard index is a JSON {root.ValueKind.ToString().ToLowerInvariant()}, expected an object with \"weight_map\"");
            JsonElement? weightMap = null;
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in root.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                    throw new InvalidDataException($"{path}: key {Quote(property.Name)} appears twice (duplicate JSON key)");
                if (property.Name == "weight_map") weightMap = property.Value;
                // "metadata" (e.g. total_size) is informational: every tensor's size is checked in its shard.
            }
            if (weightMap is not { ValueKind: JsonValueKind.Object } map)
                throw new InvalidDataException(
                    weightMap is null
                        ? $"{path}: the shard index has no \"weight_map\" key; expected {{\"weight_map\": {{\"tensor name\": \"shard file\"}}}}"
                        : $"{path}: \"weight_map\" is a JSON {weightMap.Value.ValueKind.ToString().ToLowerInvariant()}, expected an object of tensor name to shard file");

            var result = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw new InvalidDataException(
                        $"{path}: \"weight_map\" entry {Quote(entry.Name)} is a JSON {entry.Value.ValueKind.ToString().ToLowerInvariant()}, expected a shard file name");
                string shard = entry.Value.GetString()!;
                if (!IsPlainFileName(shard))
                    throw new InvalidDataException(
                        $"{path}: \"weight_map\" maps {Quote(entry.Name)} to {Quote(shard)}, expected a file name in the same folder");
                if (!result.TryAdd(entry.Name, shard))
                    throw new InvalidDataException($"{path}: \"weight_map\" lists tensor {Quote(entry.Name)} twice (duplicate JSON key)");
            }
            if (result.Count == 0)
                throw new InvalidDataException($"{path}: \"weight_map\" is empty; the index names no tensors");
            return new ShardIndex(path, result);
        }
    }

    // Shards live beside the index: no folders, no "..", nothing rooted (an index must not reach outside).
    private static bool IsPlainFileName(string name) =>
        name.Length > 0 && name != "." && name != ".." && name.IndexOfAny(['/', '\\', ':', '\0']) < 0
        && System.IO.Path.GetFileName(name) == name;
}
