using System.Text;
using System.Text.Json;
using Recur.Runtime.Tokenizers;

namespace Recur.Tests.Tokenizers;

/// <summary>Small hand-made tokenizer.json files: each algorithm and rule on a case small enough to check by hand.</summary>
public sealed class TokenizerTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("recur-tokenizer-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    [Fact]
    public void Bpe_merges_lowest_rank_first_in_both_merge_formats()
    {
        foreach (var merges in new[] { """["b c", "a b", "ab c"]""", """[["b", "c"], ["a", "b"], ["ab", "c"]]""" })
        {
            var tokenizer = Load(Bpe(Vocab("a", "b", "c", "ab", "bc", "abc"), merges));
            // (b, c) ranks before (a, b): "abc" becomes a + bc, and no merge joins those.
            Assert.Equal([0, 4], tokenizer.Encode("abc"));
            Assert.Equal([3, 0], tokenizer.Encode("aba"));
            Assert.Equal("abcaba", tokenizer.Decode([0, 4, 3, 0]).Replace(" ", ""));
        }
    }

    [Fact]
    public void Bpe_unknown_characters_become_unk_fused_only_when_asked()
    {
        var vocab = Vocab("<unk>", "a", "b", "ab");
        Assert.Equal([0, 0, 3], Load(Bpe(vocab, """["a b"]""", """ "unk_token": "<unk>" """)).Encode("xyab"));
        Assert.Equal([0, 3], Load(Bpe(vocab, """["a b"]""", """ "unk_token": "<unk>", "fuse_unk": true """)).Encode("xyab"));
        Assert.Equal([3], Load(Bpe(vocab, """["a b"]""")).Encode("xyab")); // no unk token: dropped, as Hugging Face does
    }

    [Fact]
    public void Bpe_prefix_suffix_and_ignore_merges()
    {
        var vocab = Vocab("a", "##b", "##c", "ab", "abc", "b", "c</w>", "bc</w>", "a##c");
        var wordPieceStyle = Load(Bpe(vocab, """["a ##b", "ab ##c"]""", """ "continuing_subword_prefix": "##" """));
        Assert.Equal([4], wordPieceStyle.Encode("abc")); // a + ##b = ab, ab + ##c = abc
        var suffixed = Load(Bpe(vocab, """["b c</w>"]""", """ "end_of_word_suffix": "</w>" """));
        Assert.Equal([7], suffixed.Encode("bc"));
        var ignoring = Load(Bpe(vocab, "[]", """ "ignore_merges": true """));
        Assert.Equal([4], ignoring.Encode("abc")); // the whole word is in the vocabulary
    }

    [Fact]
    public void Byte_level_bpe_round_trips_any_text()
    {
        var alphabet = Enumerable.Range(0, 256).Select(b => ByteLevelAlphabet.ByteToChar((byte)b).ToString()).ToList();
        alphabet.AddRange(["Ġh", "Ġhi"]);
        var tokenizer = Load(Bpe(Vocab([.. alphabet]), """["Ġ h", "Ġh i"]""",
            pre: """{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}""",
            decoder: """{"type": "ByteLevel"}"""));
        var ids = tokenizer.Encode("hi hi é😀");
        Assert.Equal([(int)'h', (int)'i', 257, 0x20], ids[..4]); // a byte's token id is the byte here; " é" starts with 0x20
        Assert.Equal("hi hi é😀", tokenizer.Decode(ids));
        Assert.Equal(4 + 2 + 4, ids.Length); // é and 😀 are 2 and 4 bytes
    }

    [Fact]
    public void Byte_fallback_spells_unknown_characters_in_bytes_and_streams_them_whole()
    {
        var tokenizer = Load(ByteFallbackTokenizer());
        var ids = tokenizer.Encode("hi 中");
        Assert.Equal([260, 257, 1 + 0xE4, 1 + 0xB8, 1 + 0xAD], ids);
        Assert.Equal("hi 中", tokenizer.Decode(ids));

        var stream = tokenizer.CreateStreamDecoder();
        Assert.Equal(["hi", " ", "", "", "中"], ids.Select(stream.Push).ToArray());
        Assert.Equal("", stream.Flush());

        // Cut inside the character: held back, then flushed as Hugging Face decodes it (U+FFFD per byte).
        int[] truncated = [260, 257, 1 + 0xE4, 1 + 0xB8];
        Assert.Equal("hi \uFFFD\uFFFD", tokenizer.Decode(truncated));
        stream = tokenizer.CreateStreamDecoder();
        Assert.Equal("hi ", string.Concat(truncated.Select(stream.Push)));
        Assert.Equal("\uFFFD\uFFFD", stream.Flush());
    }

    [Fact]
    public void Unigram_picks_the_best_scoring_segmentation_and_fuses_unknowns()
    {
        var tokenizer = Load(Unigram("""[["<unk>", 0.0], ["a", -1.0], ["b", -2.0], ["ab", -1.5], ["c", -3.0], ["bc", -5.5]]""", "0"));
        Assert.Equal([3, 4], tokenizer.Encode("abc"));    // ab + c = -4.5 beats a + bc = -6.5 and a + b + c = -6
        Assert.Equal([1, 0, 2], tokenizer.Encode("axyb")); // x and y fused into one unk
    }

    [Fact]
    public void Unigram_byte_fallback_replaces_unk()
    {
        var pieces = string.Join(", ", Enumerable.Range(0, 256).Select(b => $"[\"<0x{b:X2}>\", -10.0]"));
        var tokenizer = Load(Unigram($"""[["<unk>", 0.0], ["a", -1.0], {pieces}]""", "0", byteFallback: true));
        Assert.Equal([1, 2 + 0xC3, 2 + 0xA9], tokenizer.Encode("aé"));
    }

    [Fact]
    public void Metaspace_streams_with_the_same_leading_space_rule_as_decode()
    {
        var tokenizer = Load(Unigram("""[["<unk>", 0.0], ["▁Hello", -1.0], ["▁world", -1.0], ["▁", -2.0], ["!", -2.0]]""", "0",
            pre: """{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}""",
            decoder: """{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}"""));
        var ids = tokenizer.Encode("Hello world!");
        Assert.Equal([1, 2, 4], ids);
        Assert.Equal("Hello world!", tokenizer.Decode(ids));
        var stream = tokenizer.CreateStreamDecoder();
        Assert.Equal(["Hello", " world", "!"], ids.Select(stream.Push).ToArray());
        // As Hugging Face: every '▁' of the first token is dropped, not only the leading one.
        var runs = Load(WithFirstTokenRun());
        Assert.Equal("", runs.Decode([1]));
        Assert.Equal("  ", runs.Decode([1, 1]));
    }

    private static string WithFirstTokenRun() => Unigram("""[["<unk>", 0.0], ["▁▁", -1.0]]""", "0",
        decoder: """{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false}""");

    [Fact]
    public void Added_tokens_split_the_text_first_with_their_options()
    {
        var json = Bpe(Vocab("<unk>", "a", "b", " "), "[]", """ "unk_token": "<unk>" """,
            added: """
            {"id": 4, "content": "<s>", "special": true, "normalized": false},
            {"id": 5, "content": "<mask>", "special": true, "normalized": false, "lstrip": true, "rstrip": true},
            {"id": 6, "content": "ab", "special": false, "normalized": true, "single_word": true},
            {"id": 7, "content": "B", "special": false, "normalized": true}
            """,
            normalizer: """{"type": "Lowercase"}""");
        var tokenizer = Load(json);
        Assert.Equal([4, 1, 4], tokenizer.Encode("<s>a<s>"));
        Assert.Equal([1, 5, 7], tokenizer.Encode("a  <mask>  b"));    // the spaces go with <mask>; "b" is the added "B"
        Assert.Equal([6, 3, 1, 1, 2], tokenizer.Encode("AB aab"));     // "ab" only as a whole word, matched after lowercasing
        Assert.Equal([7], tokenizer.Encode("b"));                      // "B" normalized to "b" matches too
        Assert.Equal("<s>a", tokenizer.Decode([4, 1]).Replace(" ", ""));
        Assert.Equal("a", tokenizer.Decode([4, 1], skipSpecialTokens: true));
        Assert.Equal(4, tokenizer.TokenToId("<s>"));
        Assert.Equal("<mask>", tokenizer.IdToToken(5));
        Assert.Equal(8, tokenizer.VocabSize);
    }

    [Fact]
    public void Special_ids_come_from_the_template_the_config_or_conventional_names()
    {
        var gemmaLike = Bpe(Vocab("<pad>", "<eos>", "<bos>", "a"), "[]",
            post: """{"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {"<bos>": {"id": "<bos>", "ids": [2], "tokens": ["<bos>"]}}}""");
        var tokenizer = Load(gemmaLike);
        Assert.Equal([2, 3], tokenizer.Encode("a"));
        Assert.Equal([3], tokenizer.Encode("a", addSpecialTokens: false));
        Assert.Equal((2, 1, 0), (tokenizer.BosId, tokenizer.EosId, tokenizer.PadId));

        var configured = Load(gemmaLike, config: """{"eos_token": {"content": "<pad>"}, "pad_token": "<eos>"}""");
        Assert.Equal((2, 0, 1), (configured.BosId, configured.EosId, configured.PadId));

        var t5Like = Load(Unigram("""[["<pad>", 0.0], ["</s>", 0.0], ["<unk>", 0.0], ["a", -1.0]]""", "2",
            post: """{"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}], "special_tokens": {"</s>": {"id": "</s>", "ids": [1], "tokens": ["</s>"]}}}"""));
        Assert.Equal([3, 1], t5Like.Encode("a"));
        Assert.Equal((null, 1, 0), (t5Like.BosId, t5Like.EosId, t5Like.PadId));
    }

    [Fact]
    public void Unsupported_components_raise_NotSupportedException_naming_them()
    {
        var pre = Assert.Throws<NotSupportedException>(() => Load(Bpe(Vocab("a"), "[]", pre: """{"type": "UnicodeScripts"}""")));
        Assert.Contains("pre_tokenizer type 'UnicodeScripts'", pre.Message);
        Assert.Contains("$.pre_tokenizer.type", pre.Message);

        var decoder = Assert.Throws<NotSupportedException>(() => Load(Bpe(Vocab("a"), "[]", decoder: """{"type": "CTC"}""")));
        Assert.Contains("decoder type 'CTC'", decoder.Message);

        var model = Assert.Throws<NotSupportedException>(() => Load("""{"model": {"type": "Bigram", "vocab": {}}}"""));
        Assert.Contains("model type 'Bigram'", model.Message);

        var regex = Assert.Throws<NotSupportedException>(() => Load(Bpe(Vocab("a"), "[]",
            pre: """{"type": "Split", "pattern": {"Regex": "\\p{L}++"}, "behavior": "Isolated", "invert": false}""")));
        Assert.Contains("pre_tokenizer Split regex pattern", regex.Message);
    }

    [Fact]
    public void Malformed_files_raise_InvalidDataException_naming_file_and_path()
    {
        var merge = Assert.Throws<InvalidDataException>(() => Load(Bpe(Vocab("a", "b", "ab"), """["a b", "a c"]""")));
        Assert.Contains("$.model.merges[1]", merge.Message);
        Assert.Contains("'c'", merge.Message);
        Assert.Contains(Path.Combine(folder, "tokenizer.json"), merge.Message);

        var syntax = Assert.Throws<InvalidDataException>(() => Load("""{"model": {"type": "BPE", "vocab": {"a": 0}, """));
        Assert.Contains("not valid JSON", syntax.Message);

        var missing = Assert.Throws<InvalidDataException>(() => Load("""{"normalizer": null}"""));
        Assert.Contains("$.model", missing.Message);

        var wrongKind = Assert.Throws<InvalidDataException>(() => Load("""{"model": {"type": "BPE", "vocab": {"a": "zero"}, "merges": []}}"""));
        Assert.Contains("$.model.vocab.a", wrongKind.Message);

        var template = Assert.Throws<InvalidDataException>(() => Load(Bpe(Vocab("a"), "[]",
            post: """{"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}], "special_tokens": {}}""")));
        Assert.Contains("$.post_processor.single[0].SpecialToken", template.Message);
    }

    [Fact]
    public void Loads_from_a_folder_and_reports_a_missing_file()
    {
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), Bpe(Vocab("a"), "[]"));
        Assert.Equal([0], Tokenizer.FromFile(folder).Encode("a"));
        Assert.Throws<FileNotFoundException>(() => Tokenizer.FromFile(Path.Combine(folder, "nowhere")));
    }

    [Fact]
    public void TryDecode_writes_into_a_span_when_it_fits()
    {
        var tokenizer = Load(ByteFallbackTokenizer());
        int[] ids = [260, 257, 260];
        Assert.False(tokenizer.TryDecode(ids, stackalloc char[4], out var written));
        Assert.Equal(0, written);
        Span<char> buffer = stackalloc char[16];
        Assert.True(tokenizer.TryDecode(ids, buffer, out written));
        Assert.Equal("hi hi", buffer[..written].ToString());
    }

    [Theory]
    [InlineData("e\u0301", NormalizationForm.FormC, "\u00e9")]
    [InlineData("\u00e9", NormalizationForm.FormD, "e\u0301")]
    [InlineData("\ufb01\u2460\uff21", NormalizationForm.FormKC, "fi1A")]
    [InlineData("\ud55c", NormalizationForm.FormD, "\u1112\u1161\u11ab")]
    [InlineData("\u1112\u1161\u11ab", NormalizationForm.FormC, "\ud55c")]
    [InlineData("a\u0307\u0323", NormalizationForm.FormC, "\u1ea1\u0307")] // marks reordered by class, then composed
    [InlineData("\u212b", NormalizationForm.FormC, "\u00c5")]              // a singleton: Angstrom sign is Å
    public void Unicode_normalization_works_under_invariant_globalization(string input, NormalizationForm form, string expected)
    {
        Assert.Equal(expected, UnicodeNormalization.Normalize(input, form));
    }

    [Fact]
    public void Regexes_follow_oniguruma_classes_and_see_astral_code_points_whole()
    {
        var matches = new List<(int Start, int Length)>();
        OnigRegex.Create(@"\w+", "test").FindAll("x² ā𝐀b", matches);   // \w includes other numbers and astral letters
        Assert.Equal([(0, 2), (3, 4)], matches);

        matches.Clear();
        OnigRegex.Create(ByteLevelPreTokenizer.Gpt2Pattern, "test").FindAll(" 𝐀𝐁 😀😀", matches);
        Assert.Equal([(0, 5), (5, 5)], matches);

        foreach (var category in Enum.GetValues<System.Globalization.UnicodeCategory>()
                     .Where(c => c is not (System.Globalization.UnicodeCategory.SpaceSeparator or System.Globalization.UnicodeCategory.LineSeparator
                         or System.Globalization.UnicodeCategory.ParagraphSeparator or System.Globalization.UnicodeCategory.Control
                         or System.Globalization.UnicodeCategory.Surrogate)))
            Assert.Equal(category, char.GetUnicodeCategory(OnigRegex.StandIn(category)));
    }

    private Tokenizer Load(string json, string? config = null)
    {
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), json);
        var configPath = Path.Combine(folder, "tokenizer_config.json");
        if (config is null)
            File.Delete(configPath);
        else
            File.WriteAllText(configPath, config);
        return Tokenizer.FromFile(Path.Combine(folder, "tokenizer.json"));
    }

    private static string Vocab(params string[] tokens) =>
        JsonSerializer.Serialize(tokens.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i));

    private static string Bpe(string vocab, string merges, string options = "", string? pre = null, string? decoder = null,
        string? post = null, string added = "", string? normalizer = null) => $$"""
        {
          "version": "1.0", "added_tokens": [{{added}}],
          "normalizer": {{normalizer ?? "null"}}, "pre_tokenizer": {{pre ?? "null"}},
          "post_processor": {{post ?? "null"}}, "decoder": {{decoder ?? "null"}},
          "model": {"type": "BPE", "dropout": null, "vocab": {{vocab}}, "merges": {{merges}}{{(options.Length > 0 ? ", " + options : "")}}}
        }
        """;

    private static string Unigram(string vocab, string unkId, bool byteFallback = false, string? pre = null, string? decoder = null,
        string? post = null) => $$"""
        {
          "version": "1.0", "added_tokens": [], "normalizer": null, "pre_tokenizer": {{pre ?? "null"}},
          "post_processor": {{post ?? "null"}}, "decoder": {{decoder ?? "null"}},
          "model": {"type": "Unigram", "unk_id": {{unkId}}, "vocab": {{vocab}}, "byte_fallback": {{(byteFallback ? "true" : "false")}}}
        }
        """;

    // Llama-style: "▁" for spaces, byte tokens 1..256, "hi" and "▁hi" by merges.
    private static string ByteFallbackTokenizer()
    {
        var tokens = new List<string> { "<unk>" };
        tokens.AddRange(Enumerable.Range(0, 256).Select(b => $"<0x{b:X2}>"));
        tokens.AddRange(["▁", "h", "i", "hi", "▁hi"]); // 257..261
        return Bpe(Vocab([.. tokens]), """["h i", "▁ hi"]""", """ "unk_token": "<unk>", "byte_fallback": true, "fuse_unk": true """,
            normalizer: """{"type": "Replace", "pattern": {"String": " "}, "content": "▁"}""",
            decoder: """{"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}]}""");
    }
}
