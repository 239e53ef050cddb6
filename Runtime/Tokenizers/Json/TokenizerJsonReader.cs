using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Unicode;

namespace Recur.Runtime.Tokenizers;

/// <summary>Everything a tokenizer.json describes, built into the algorithm objects.</summary>
internal sealed record TokenizerParts(
    TokenizerModel Model,
    Normalizer? Normalizer,
    PreTokenizer? PreTokenizer,
    PostProcessor? PostProcessor,
    Decoder? Decoder,
    IReadOnlyList<AddedToken> AddedTokens);

/// <summary>
/// Reads a Hugging Face tokenizer.json: the top level, the added tokens and the model
/// (components are read by <see cref="ComponentJsonReader"/>). Malformed input raises
/// <see cref="InvalidDataException"/> naming the file and JSON path; valid input using something
/// Recur does not implement raises <see cref="NotSupportedException"/> naming it.
/// "truncation" and "padding" are ignored: they shape batches, and Recur encodes one prompt.
/// </summary>
internal static class TokenizerJsonReader
{
    public static TokenizerParts Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        // Checked up front: System.Text.Json reports bad UTF-8 only when a string is read, without the file.
        if (!Utf8.IsValid(bytes))
        {
            var offset = InvalidUtf8Offset(bytes);
            throw new InvalidDataException($"Malformed tokenizer file '{path}': not UTF-8 (invalid byte 0x{bytes[offset]:X2} at offset {offset}).");
        }
        JsonDocument document;
        try
        {
            // A leading byte order mark is skipped, as JSON readers of streams do.
            var json = bytes.AsMemory(bytes.AsSpan().StartsWith("\uFEFF"u8) ? 3 : 0);
            document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 512 });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException(
                $"Malformed tokenizer file '{path}': not valid JSON at line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1} ({e.Message}).", e);
        }
        try
        {
            var root = new JsonCursor(document.RootElement, path, "$");
            root.ExpectKind(JsonValueKind.Object);
            var model = ReadModel(root.Required("model"));
            var addedTokens = root.Optional("added_tokens") is { } a ? ReadAddedTokens(a, model.IdLimit) : [];
            var idLimit = Math.Max(model.IdLimit, addedTokens.Count == 0 ? 0 : addedTokens.Max(t => t.Id) + 1);
            var normalizer = root.Optional("normalizer") is { } n ? ComponentJsonReader.ReadNormalizer(n) : null;
            var preTokenizer = root.Optional("pre_tokenizer") is { } p ? ComponentJsonReader.ReadPreTokenizer(p) : null;
            var postProcessor = root.Optional("post_processor") is { } pp ? ComponentJsonReader.ReadPostProcessor(pp, idLimit) : null;
            var decoder = root.Optional("decoder") is { } d ? ComponentJsonReader.ReadDecoder(d) : null;
            return new TokenizerParts(model, normalizer, preTokenizer, postProcessor, decoder, addedTokens);
        }
        catch (InvalidOperationException e)
        {
            // What System.Text.Json raises for a name or string with an unpaired surrogate escape (\ud800).
            throw new InvalidDataException($"Malformed tokenizer file '{path}': a string is not valid Unicode ({e.Message}).", e);
        }
        finally
        {
            document.Dispose();
        }
    }

    private static int InvalidUtf8Offset(ReadOnlySpan<byte> bytes)
    {
        Span<char> scratch = stackalloc char[1024];
        var offset = 0;
        OperationStatus status;
        do
        {
            status = Utf8.ToUtf16(bytes[offset..], scratch, out var read, out _, replaceInvalidSequences: false);
            offset += read;
        }
        while (status == OperationStatus.DestinationTooSmall);
        return offset;
    }

    // Added tokens take ids of the model's vocabulary or extend it: at most one id per added token beyond it.
    private static List<AddedToken> ReadAddedTokens(JsonCursor array, int modelIdLimit)
    {
        var tokens = new List<AddedToken>(array.Length);
        var idLimit = modelIdLimit + array.Length;
        var contentById = new Dictionary<int, string>();
        foreach (var item in array.Items())
        {
            var idJson = item.Required("id");
            var id = idJson.GetInt32();
            var content = item.Required("content").GetString();
            if (id >= idLimit)
                throw idJson.Malformed($"the added token id {id} is beyond the vocabulary ({modelIdLimit} model tokens and {array.Length} added tokens)");
            if (!contentById.TryAdd(id, content))
                throw idJson.Malformed($"the id {id} is given to two added tokens, '{contentById[id]}' and '{content}'");
            tokens.Add(new AddedToken(
                id,
                content,
                item.OptionalBoolean("single_word", false),
                item.OptionalBoolean("lstrip", false),
                item.OptionalBoolean("rstrip", false),
                item.OptionalBoolean("normalized", true), // the default of Hugging Face's AddedToken
                item.OptionalBoolean("special", false)));
        }
        return tokens;
    }

    private static TokenizerModel ReadModel(JsonCursor model)
    {
        // Older files omit the model's "type"; Hugging Face then tells the kinds apart by their fields.
        var type = model.OptionalString("type") ?? (model.Optional("merges") is not null ? "BPE"
            : model.Optional("vocab") is { Kind: JsonValueKind.Array } ? "Unigram"
            : model.Optional("max_input_chars_per_word") is not null ? "WordPiece" : "WordLevel");
        return type switch
        {
            "BPE" => ReadBpe(model),
            "Unigram" => ReadUnigram(model),
            "WordPiece" => new WordPieceModel(
                ReadVocabulary(model.Required("vocab")),
                model.OptionalString("unk_token") ?? "[UNK]",
                model.OptionalString("continuing_subword_prefix") ?? "##",
                model.OptionalInt32("max_input_chars_per_word") ?? 100),
            "WordLevel" => new WordLevelModel(ReadVocabulary(model.Required("vocab")), model.OptionalString("unk_token")),
            _ => throw model.Required("type").Unsupported($"model type '{type}'"),
        };
    }

    private static BpeModel ReadBpe(JsonCursor model)
    {
        if (model.Optional("dropout") is { } dropout && dropout.GetDouble() is var p && p > 0)
            throw dropout.Unsupported($"model type 'BPE' with dropout {p} (random merges)");
        var options = new BpeOptions(
            UnkToken: model.OptionalString("unk_token"),
            ContinuingSubwordPrefix: model.OptionalString("continuing_subword_prefix"),
            EndOfWordSuffix: model.OptionalString("end_of_word_suffix"),
            FuseUnk: model.OptionalBoolean("fuse_unk", false),
            ByteFallback: model.OptionalBoolean("byte_fallback", false),
            IgnoreMerges: model.OptionalBoolean("ignore_merges", false));
        var vocabulary = ReadVocabulary(model.Required("vocab"));
        var byText = vocabulary.GetAlternateLookup<ReadOnlySpan<char>>();
        var mergesJson = model.Required("merges");
        mergesJson.ExpectKind(JsonValueKind.Array);
        var merges = new MergeTable(mergesJson.Length);
        var prefix = options.ContinuingSubwordPrefix ?? "";
        Span<char> joined = stackalloc char[256];
        var rank = 0;
        // Walks the elements directly: Gemma has ~600k merges, and a cursor per item costs seconds.
        foreach (var element in mergesJson.Element.EnumerateArray())
        {
            var (left, right) = ReadMergePair(element) ?? throw mergesJson.Item(rank, element)
                .Malformed("a merge must be a string \"left right\" or an array of two strings");
            if (!byText.TryGetValue(left, out var leftId))
                throw mergesJson.Item(rank, element).Malformed($"the merge's token '{left}' is not in the vocabulary");
            if (!byText.TryGetValue(right, out var rightId))
                throw mergesJson.Item(rank, element).Malformed($"the merge's token '{right}' is not in the vocabulary");
            // The merged token drops the right part's continuing-subword prefix ("a" + "##b" = "ab").
            if (prefix.Length > 0 && right.StartsWith(prefix, StringComparison.Ordinal))
                right = right[prefix.Length..];
            var length = left.Length + right.Length;
            var buffer = length <= joined.Length ? joined[..length] : new char[length];
            left.CopyTo(buffer);
            right.CopyTo(buffer[left.Length..]);
            if (!byText.TryGetValue(buffer, out var newId))
                throw mergesJson.Item(rank, element).Malformed($"the merged token '{buffer}' is not in the vocabulary");
            merges.Set(leftId, rightId, rank++, newId);
        }
        return new BpeModel(vocabulary, merges, options);
    }

    // A merge is "left right" (one space) in older files, ["left", "right"] in newer ones.
    private static (string Left, string Right)? ReadMergePair(JsonElement merge)
    {
        if (merge.ValueKind == JsonValueKind.String)
        {
            var text = merge.GetString()!;
            var space = text.IndexOf(' ', StringComparison.Ordinal);
            if (space < 0 || text.IndexOf(' ', space + 1) >= 0)
                return null;
            return (text[..space], text[(space + 1)..]);
        }
        if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2
            && merge[0].ValueKind == JsonValueKind.String && merge[1].ValueKind == JsonValueKind.String)
            return (merge[0].GetString()!, merge[1].GetString()!);
        return null;
    }

    private static UnigramModel ReadUnigram(JsonCursor model)
    {
        var vocabJson = model.Required("vocab");
        var vocabulary = new List<(string, double)>(vocabJson.Length);
        foreach (var entry in vocabJson.Element.EnumerateArray())
        {
            if (entry.ValueKind != JsonValueKind.Array || entry.GetArrayLength() != 2
                || entry[0].ValueKind != JsonValueKind.String || entry[1].ValueKind != JsonValueKind.Number)
                throw vocabJson.Item(vocabulary.Count, entry).Malformed("a Unigram vocabulary entry must be [piece, score]");
            // The score as Hugging Face reads it (not correctly rounded): ties between segmentations depend on its last bit.
            if (!SerdeJsonNumber.TryParse(JsonMarshal.GetRawUtf8Value(entry[1]), out var score))
                throw vocabJson.Item(vocabulary.Count, entry).Malformed($"the score {entry[1].GetRawText()} is out of range");
            vocabulary.Add((vocabJson.Item(vocabulary.Count, entry).Item(0, entry[0]).GetString(), score));
        }
        var unkId = model.OptionalInt32("unk_id");
        if (unkId >= vocabulary.Count)
            throw model.Required("unk_id").Malformed($"unk_id {unkId} is outside the vocabulary of {vocabulary.Count} pieces");
        return new UnigramModel(vocabulary, unkId, model.OptionalBoolean("byte_fallback", false));
    }

    // A vocabulary maps each token to its own id in [0, number of tokens): a larger id would make every
    // id-indexed table (and the model's embedding) that large.
    private static Dictionary<string, int> ReadVocabulary(JsonCursor vocab)
    {
        vocab.ExpectKind(JsonValueKind.Object);
        var count = 0;
        foreach (var _ in vocab.Element.EnumerateObject())
            count++;
        var vocabulary = new Dictionary<string, int>(count, StringComparer.Ordinal);
        var tokenById = new string?[count];
        foreach (var property in vocab.Element.EnumerateObject())
        {
            var entry = vocab.Member(property.Name, property.Value);
            if (property.Value.ValueKind != JsonValueKind.Number || !property.Value.TryGetInt32(out var id) || id < 0)
                id = entry.GetInt32(); // throws, naming the entry
            if (id >= count)
                throw entry.Malformed($"the id {id} is beyond the vocabulary of {count} tokens");
            if (tokenById[id] is { } other)
                throw entry.Malformed($"the id {id} is given to both '{other}' and '{property.Name}'");
            if (!vocabulary.TryAdd(property.Name, id))
                throw entry.Malformed($"the token '{property.Name}' appears twice");
            tokenById[id] = property.Name;
        }
        return vocabulary;
    }
}
