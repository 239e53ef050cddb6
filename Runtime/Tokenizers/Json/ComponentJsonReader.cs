using System.Text;
using System.Text.Json;

namespace Recur.Runtime.Tokenizers;

/// <summary>
/// Reads tokenizer.json's normalizer, pre_tokenizer, post_processor and decoder into the
/// algorithm objects. Absent options take Hugging Face's defaults; an unknown "type" or an option
/// Recur does not implement raises <see cref="NotSupportedException"/> naming the component.
/// </summary>
internal static class ComponentJsonReader
{
    public static Normalizer ReadNormalizer(JsonCursor json)
    {
        var type = json.TypeName();
        return type switch
        {
            "Sequence" => new SequenceNormalizer(json.Required("normalizers").Items().Select(ReadNormalizer).ToArray()),
            "NFC" => new UnicodeFormNormalizer(NormalizationForm.FormC),
            "NFD" => new UnicodeFormNormalizer(NormalizationForm.FormD),
            "NFKC" => new UnicodeFormNormalizer(NormalizationForm.FormKC),
            "NFKD" => new UnicodeFormNormalizer(NormalizationForm.FormKD),
            "Lowercase" => new LowercaseNormalizer(),
            "Strip" => new StripNormalizer(json.OptionalBoolean("strip_left", true), json.OptionalBoolean("strip_right", true)),
            "StripAccents" => new StripAccentsNormalizer(),
            "Replace" => new ReplaceNormalizer(ReadPattern(json, "normalizer Replace"), json.Required("content").GetString()),
            "Prepend" => new PrependNormalizer(json.Required("prepend").GetString()),
            "Precompiled" => ReadPrecompiled(json),
            "Nmt" => new NmtNormalizer(),
            "ByteLevel" => new ByteLevelNormalizer(),
            "BertNormalizer" => ReadBertNormalizer(json),
            _ => throw json.Required("type").Unsupported($"normalizer type '{type}'"),
        };
    }

    public static PreTokenizer ReadPreTokenizer(JsonCursor json)
    {
        var type = json.TypeName();
        switch (type)
        {
            case "Sequence":
                return new SequencePreTokenizer(json.Required("pretokenizers").Items().Select(ReadPreTokenizer).ToArray());
            case "ByteLevel":
                return new ByteLevelPreTokenizer(json.OptionalBoolean("add_prefix_space", true), json.OptionalBoolean("use_regex", true));
            case "Split":
                return new SplitPreTokenizer(ReadPattern(json, "pre_tokenizer Split"), ReadBehavior(json.Required("behavior")),
                    json.OptionalBoolean("invert", false));
            case "Metaspace":
                return new MetaspacePreTokenizer(ReadReplacement(json), ReadPrependScheme(json), json.OptionalBoolean("split", true));
            case "Whitespace":
                return new WhitespacePreTokenizer();
            case "WhitespaceSplit":
                return new CharSplitPreTokenizer(CharClasses.IsWhiteSpace, SplitBehavior.Removed);
            case "Digits":
                return new CharSplitPreTokenizer(CharClasses.IsNumeric,
                    json.OptionalBoolean("individual_digits", false) ? SplitBehavior.Isolated : SplitBehavior.Contiguous);
            case "Punctuation":
                return new CharSplitPreTokenizer(CharClasses.IsPunctuation,
                    json.Optional("behavior") is { } behavior ? ReadBehavior(behavior) : SplitBehavior.Isolated);
            case "BertPreTokenizer":
                return new SequencePreTokenizer([
                    new CharSplitPreTokenizer(CharClasses.IsWhiteSpace, SplitBehavior.Removed),
                    new CharSplitPreTokenizer(CharClasses.IsPunctuation, SplitBehavior.Isolated)]);
            case "CharDelimiterSplit":
                var delimiter = ReadSingleChar(json.Required("delimiter"));
                return new CharSplitPreTokenizer(r => r.Value == delimiter, SplitBehavior.Removed);
            default:
                throw json.Required("type").Unsupported($"pre_tokenizer type '{type}'");
        }
    }

    /// <param name="idLimit">One more than the largest id of the vocabulary: the special tokens' ids must be below.</param>
    public static PostProcessor ReadPostProcessor(JsonCursor json, int idLimit)
    {
        var type = json.TypeName();
        switch (type)
        {
            case "Sequence":
                return new SequencePostProcessor(json.Required("processors").Items().Select(p => ReadPostProcessor(p, idLimit)).ToArray());
            case "ByteLevel":
                return new NoOpPostProcessor();
            case "TemplateProcessing":
                return ReadTemplate(json, idLimit);
            case "RobertaProcessing" or "BertProcessing":
                return new ClsSepPostProcessor(ReadTokenPair(json.Required("cls")), ReadTokenPair(json.Required("sep")));
            default:
                throw json.Required("type").Unsupported($"post_processor type '{type}'");
        }

        int ReadTokenPair(JsonCursor pair)
        {
            // ["[CLS]", 101]: Hugging Face uses the id as written.
            if (pair.Kind != JsonValueKind.Array || pair.Length != 2)
                throw pair.Malformed("expected [token, id]");
            return ReadSpecialId(pair.Items().Last(), idLimit);
        }
    }

    public static Decoder ReadDecoder(JsonCursor json)
    {
        var type = json.TypeName();
        return type switch
        {
            "Sequence" => new SequenceDecoder(json.Required("decoders").Items().Select(ReadDecoder).ToArray()),
            "ByteLevel" => new ByteLevelDecoder(),
            "Metaspace" => new MetaspaceDecoder(ReadReplacement(json), ReadPrependScheme(json)),
            "Replace" => new ReplaceDecoder(ReadPattern(json, "decoder Replace"), json.Required("content").GetString()),
            "ByteFallback" => new ByteFallbackDecoder(),
            "Fuse" => new FuseDecoder(),
            "Strip" => new StripDecoder(ReadBmpChar(json.Required("content"), "decoder Strip"),
                json.OptionalInt32("start") ?? 0, json.OptionalInt32("stop") ?? 0),
            "WordPiece" => new WordPieceDecoder(json.OptionalString("prefix") ?? "##", json.OptionalBoolean("cleanup", true)),
            "BPEDecoder" => new BpeSuffixDecoder(json.OptionalString("suffix") ?? "</w>"),
            _ => throw json.Required("type").Unsupported($"decoder type '{type}'"),
        };
    }

    private static int ReadSpecialId(JsonCursor json, int idLimit)
    {
        var id = json.GetInt32();
        return id < idLimit ? id : throw json.Malformed($"the special token id {id} is beyond the vocabulary of {idLimit} ids");
    }

    private static TemplatePostProcessor ReadTemplate(JsonCursor json, int idLimit)
    {
        var specials = new Dictionary<string, int[]>(StringComparer.Ordinal);
        if (json.Optional("special_tokens") is { } specialTokens)
        {
            foreach (var (name, value) in specialTokens.Properties())
                specials[name] = value.Required("ids").Items().Select(id => ReadSpecialId(id, idLimit)).ToArray();
        }
        var single = json.Required("single");
        var pieces = new List<TemplatePiece>();
        foreach (var item in single.Items())
        {
            if (item.Optional("Sequence") is not null)
            {
                pieces.Add(new TemplatePiece(null));
            }
            else if (item.Optional("SpecialToken") is { } special)
            {
                var name = special.Required("id").GetString();
                pieces.Add(new TemplatePiece(specials.TryGetValue(name, out var ids)
                    ? ids
                    : throw special.Malformed($"the template uses '{name}', which special_tokens does not define")));
            }
            else
            {
                throw item.Malformed("a template item must be {\"Sequence\": ...} or {\"SpecialToken\": ...}");
            }
        }
        return new TemplatePostProcessor(pieces);
    }

    private static OnigRegex ReadPattern(JsonCursor json, string component)
    {
        var pattern = json.Required("pattern");
        if (pattern.OptionalString("String") is { } literal)
            return OnigRegex.Literal(literal);
        if (pattern.OptionalString("Regex") is { } regex)
            return OnigRegex.Create(regex, component, $"'{pattern.File}' at {pattern.Path}.Regex");
        throw pattern.Malformed("a pattern must be {\"String\": ...} or {\"Regex\": ...}");
    }

    private static SplitBehavior ReadBehavior(JsonCursor json) => json.GetString() switch
    {
        "Removed" => SplitBehavior.Removed,
        "Isolated" => SplitBehavior.Isolated,
        "MergedWithPrevious" => SplitBehavior.MergedWithPrevious,
        "MergedWithNext" => SplitBehavior.MergedWithNext,
        "Contiguous" => SplitBehavior.Contiguous,
        var other => throw json.Malformed($"unknown split behavior '{other}'"),
    };

    // Current files say prepend_scheme; older ones only add_prefix_space (true meaning "always").
    private static PrependScheme ReadPrependScheme(JsonCursor json)
    {
        if (json.Optional("prepend_scheme") is { } scheme)
        {
            return scheme.GetString() switch
            {
                "always" => PrependScheme.Always,
                "first" => PrependScheme.First,
                "never" => PrependScheme.Never,
                var other => throw scheme.Malformed($"unknown prepend_scheme '{other}'"),
            };
        }
        return json.OptionalBoolean("add_prefix_space", true) ? PrependScheme.Always : PrependScheme.Never;
    }

    private static char ReadReplacement(JsonCursor json) =>
        json.Optional("replacement") is { } replacement ? ReadBmpChar(replacement, "Metaspace") : '\u2581';

    // Components that hold one character (Rust's char) store it as a C# char: one outside the BMP is not supported.
    private static char ReadBmpChar(JsonCursor json, string component)
    {
        var value = ReadSingleChar(json);
        return value <= char.MaxValue ? (char)value : throw json.Unsupported($"{component} with a character outside the BMP");
    }

    private static int ReadSingleChar(JsonCursor json)
    {
        var text = json.GetString();
        return Rune.DecodeFromUtf16(text, out var rune, out var consumed) == System.Buffers.OperationStatus.Done && consumed == text.Length
            ? rune.Value
            : throw json.Malformed($"expected a single character, found \"{text}\"");
    }

    private static Normalizer ReadPrecompiled(JsonCursor json)
    {
        // A null or empty charsmap (some exported Marian files) means "no normalization".
        if (json.Optional("precompiled_charsmap") is not { } charsmap)
            return new SequenceNormalizer([]);
        byte[] blob;
        try
        {
            blob = Convert.FromBase64String(charsmap.GetString());
        }
        catch (FormatException)
        {
            throw charsmap.Malformed("precompiled_charsmap is not valid base64");
        }
        return blob.Length == 0 ? new SequenceNormalizer([]) : PrecompiledNormalizer.TryParse(blob)
            ?? throw charsmap.Malformed("precompiled_charsmap is not a SentencePiece charsmap (trie size, trie or strings are inconsistent)");
    }

    private static BertNormalizer ReadBertNormalizer(JsonCursor json)
    {
        var lowercase = json.OptionalBoolean("lowercase", true);
        return new BertNormalizer(
            json.OptionalBoolean("clean_text", true),
            json.OptionalBoolean("handle_chinese_chars", true),
            json.Optional("strip_accents") is { } strip ? strip.GetBoolean() : lowercase,
            lowercase);
    }
}
