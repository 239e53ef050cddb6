using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Recur.Tests.Support;

namespace Recur.Tests.Tokenizers;

/// <summary>
/// Hostile tokenizer.json files through `recur tokenize`: each must end with exit 2 and one line that
/// names the file and the JSON key, quickly, never with a crash, a stack trace or a hang.
/// </summary>
public sealed class HostileTokenizerFileTests : IDisposable
{
    private const string Vocab = """{"a": 0, "b": 1, "ab": 2}""";
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    private readonly string folder = Directory.CreateTempSubdirectory("recur-hostile-tokenizer-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    public static TheoryData<string, string, string> Cases => new()
    {
        // name, tokenizer.json, what the error must say besides the file
        { "vocab id at int.MaxValue", Bpe("""{"a": 2147483647, "b": 1, "ab": 2}"""), "$.model.vocab.a: the id 2147483647 is beyond the vocabulary of 3 tokens" },
        { "negative vocab id", Bpe("""{"a": -1, "b": 1, "ab": 2}"""), "$.model.vocab.a: expected a non-negative 32-bit integer, found -1" },
        { "fractional vocab id", Bpe("""{"a": 1.5, "b": 1, "ab": 2}"""), "$.model.vocab.a: expected a non-negative 32-bit integer, found 1.5" },
        { "huge vocab id", Bpe("""{"a": 1e400, "b": 1, "ab": 2}"""), "$.model.vocab.a: expected a non-negative 32-bit integer, found 1e400" },
        { "string vocab id", Bpe("""{"a": "0", "b": 1, "ab": 2}"""), "$.model.vocab.a: expected a number, found the string \"0\"" },
        { "vocab id beyond the vocabulary", Bpe("""{"a": 0, "b": 1, "ab": 7}"""), "$.model.vocab.ab: the id 7 is beyond the vocabulary of 3 tokens" },
        { "duplicated vocab id", Bpe("""{"a": 0, "b": 0, "ab": 2}"""), "$.model.vocab.b: the id 0 is given to both 'a' and 'b'" },
        { "duplicated token", Bpe("""{"a": 0, "a": 1, "ab": 2}"""), "$.model.vocab.a: the token 'a' appears twice" },
        { "vocab not an object", Bpe("[]"), "$.model.vocab: expected an object, found an array" },
        { "merge of an unknown token", Bpe(Vocab, """["a c"]"""), "$.model.merges[0]: the merge's token 'c' is not in the vocabulary" },
        { "merge not a string", Bpe(Vocab, "[5]"), "$.model.merges[0]: a merge must be" },
        { "merges not an array", Bpe(Vocab, "{}"), "$.model.merges: expected an array, found an object" },
        { "dropout out of range", Bpe(Vocab, model: """, "dropout": 1e400"""), "$.model.dropout: the number 1e400 is out of range" },
        { "dropout a string", Bpe(Vocab, model: """, "dropout": "high" """), "$.model.dropout: expected a number" },
        { "unk_token a number", Bpe(Vocab, model: """, "unk_token": 5"""), "$.model.unk_token: expected a string, found 5" },
        { "added token id at int.MaxValue", Bpe(Vocab, added: """{"id": 2147483647, "content": "<s>"}"""), "$.added_tokens[0].id: the added token id 2147483647 is beyond the vocabulary" },
        { "added token id a string", Bpe(Vocab, added: """{"id": "x", "content": "<s>"}"""), "$.added_tokens[0].id: expected a number" },
        { "added token id negative", Bpe(Vocab, added: """{"id": -4, "content": "<s>"}"""), "$.added_tokens[0].id: expected a non-negative 32-bit integer, found -4" },
        { "added token ids duplicated", Bpe(Vocab, added: """{"id": 3, "content": "<s>"}, {"id": 3, "content": "</s>"}"""), "$.added_tokens[1].id: the id 3 is given to two added tokens" },
        { "added token content a number", Bpe(Vocab, added: """{"id": 3, "content": 5}"""), "$.added_tokens[0].content: expected a string" },
        { "Unigram score a string", Unigram("""[["<unk>", 0.0], ["a", "high"]]"""), "$.model.vocab[1]: a Unigram vocabulary entry must be [piece, score]" },
        { "Unigram score out of range", Unigram("""[["<unk>", 0.0], ["a", -1e400]]"""), "$.model.vocab[1]: the score -1e400 is out of range" },
        { "Unigram piece a number", Unigram("""[["<unk>", 0.0], [7, -1.0]]"""), "$.model.vocab[1]: a Unigram vocabulary entry must be [piece, score]" },
        { "Unigram unk_id beyond the vocabulary", Unigram("""[["<unk>", 0.0]]""", unkId: "99"), "$.model.unk_id: unk_id 99 is outside the vocabulary of 1 pieces" },
        { "Unigram unk_id fractional", Unigram("""[["<unk>", 0.0]]""", unkId: "0.5"), "$.model.unk_id: expected a non-negative 32-bit integer, found 0.5" },
        { "WordPiece negative limit", """{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}, "max_input_chars_per_word": -5}}""", "$.model.max_input_chars_per_word: expected a non-negative 32-bit integer" },
        { "model a number", """{"model": 5}""", "$.model: expected an object, found 5" },
        { "model type a number", """{"model": {"type": 7, "vocab": {}}}""", "$.model.type: expected a string, found 7" },
        { "root an array", "[]", "$: expected an object, found an array" },
        { "empty file", "", "not valid JSON" },
        { "deeply nested arrays", new string('[', 100_000), "not valid JSON" },
        { "deeply nested objects", string.Concat(Enumerable.Repeat("{\"a\":", 100_000)), "not valid JSON" },
        { "nested Sequence with a bad leaf", Bpe(Vocab, normalizer: NestedSequence(200)), ".normalizers[0].type: expected a string, found 5" },
        { "normalizers not an array", Bpe(Vocab, normalizer: """{"type": "Sequence", "normalizers": {}}"""), "$.normalizer.normalizers: expected an array, found an object" },
        { "pattern not a string", Bpe(Vocab, normalizer: """{"type": "Replace", "pattern": {"Regex": 5}, "content": ""}"""), "$.normalizer.pattern.Regex: expected a string, found 5" },
        { "regex that does not compile", Bpe(Vocab, pre: """{"type": "Split", "pattern": {"Regex": "("}, "behavior": "Isolated"}"""), "pre_tokenizer Split regex pattern \"(\"" },
        { "pre_tokenizer a string", Bpe(Vocab, pre: "\"x\""), "$.pre_tokenizer: expected an object, found the string \"x\"" },
        { "Metaspace without a replacement character", Bpe(Vocab, pre: """{"type": "Metaspace", "replacement": ""}"""), "$.pre_tokenizer.replacement: expected a single character" },
        { "Strip decoder start out of range", Bpe(Vocab, decoder: """{"type": "Strip", "content": " ", "start": 1e10, "stop": 0}"""), "$.decoder.start: expected a non-negative 32-bit integer, found 1e10" },
        { "special token id beyond the vocabulary", Bpe(Vocab, post: """{"type": "BertProcessing", "cls": ["[CLS]", 999999], "sep": ["[SEP]", 1]}"""), "$.post_processor.cls[1]: the special token id 999999 is beyond the vocabulary of 3 ids" },
        { "template ids not integers", Bpe(Vocab, post: """{"type": "TemplateProcessing", "single": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [0.5], "tokens": ["<s>"]}}}"""), "$.post_processor.special_tokens[\"<s>\"].ids[0]: expected a non-negative 32-bit integer, found 0.5" },
        { "template item not an object", Bpe(Vocab, post: """{"type": "TemplateProcessing", "single": [7], "special_tokens": {}}"""), "$.post_processor.single[0]: expected an object, found 7" },
        { "unpaired surrogate escape", Bpe("""{"\ud800": 0, "b": 1, "ab": 2}"""), "not valid Unicode" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Malformed_tokenizer_files_give_one_line_naming_file_and_key(string name, string json, string expected)
    {
        var path = Path.Combine(folder, "tokenizer.json");
        File.WriteAllText(path, json);
        AssertOneLineError(name, Tokenize(path, "aab"), path, expected);
    }

    [Fact]
    public void Bytes_that_are_not_UTF8_are_named_with_their_offset()
    {
        var path = Path.Combine(folder, "tokenizer.json");
        var bytes = Encoding.UTF8.GetBytes(Bpe("""{"a": 0, "b": 1, "ab": 2, "X": 3}"""));
        var offset = Array.IndexOf(bytes, (byte)'X');
        bytes[offset] = 0xFF;
        File.WriteAllBytes(path, bytes);
        AssertOneLineError("non-UTF-8", Tokenize(path, "aab"), path, $"not UTF-8 (invalid byte 0xFF at offset {offset})");
    }

    [Fact]
    public void A_tokenizer_config_with_a_name_that_is_not_UTF8_is_named()
    {
        var path = Path.Combine(folder, "tokenizer.json");
        File.WriteAllText(path, Bpe(Vocab));
        var config = Path.Combine(folder, "tokenizer_config.json");
        File.WriteAllBytes(config, [.. "{\"bos_token\": \""u8, 0xFF, .. "\"}"u8]);
        AssertOneLineError("config", Tokenize(path, "aab"), config, "Malformed tokenizer config");
    }

    [Fact]
    public void A_byte_order_mark_before_the_JSON_is_skipped()
    {
        var path = Path.Combine(folder, "tokenizer.json");
        File.WriteAllBytes(path, [0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes(Bpe(Vocab))]);
        var result = Tokenize(path, "aab");
        Assert.True(result.Exit == 0, result.ToString());
        Assert.Equal("[0,2]", result.Out.Trim());
    }

    [Fact]
    public void A_catastrophically_backtracking_split_regex_runs_in_linear_time()
    {
        // (a+)+$ has no look-around, so it runs in the non-backtracking engine: only the final run of a's matches.
        var path = Path.Combine(folder, "tokenizer.json");
        File.WriteAllText(path, Bpe(Vocab, pre: """{"type": "Split", "pattern": {"Regex": "(a+)+$"}, "behavior": "Isolated", "invert": false}"""));
        var clock = Stopwatch.StartNew();
        var result = Tokenize(path, new string('a', 40) + "b" + new string('a', 40));
        Assert.True(result.Exit == 0, result.ToString());
        // Pieces a{40}b (a{39} + the merge "ab" = 2) and a{40}.
        Assert.Equal("[" + string.Join(",", Enumerable.Repeat("0", 39).Append("2").Concat(Enumerable.Repeat("0", 40))) + "]", result.Out.Trim());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
    }

    [Fact]
    public void A_backtracking_regex_that_needs_look_around_times_out_with_one_line_naming_it()
    {
        // The look-ahead keeps it in the backtracking engine, where (a|aa)+ before a failing end tries every split.
        var path = Path.Combine(folder, "tokenizer.json");
        File.WriteAllText(path, Bpe(Vocab, pre: """{"type": "Split", "pattern": {"Regex": "(a|aa)+(?=b)"}, "behavior": "Isolated", "invert": false}"""));
        var result = Tokenize(path, new string('a', 60));
        AssertOneLineError("timeout", result, path, "pre_tokenizer Split regex pattern \"(a|aa)+(?=b)\"");
        Assert.Contains("$.pre_tokenizer.pattern.Regex", result.Err);
        Assert.Contains("took more than", result.Err);
    }

    // Files that use most components, each with every value in turn replaced by a value of another kind.
    public static TheoryData<string> MutationBases =>
    [
        """
        {"added_tokens": [{"id": 6, "content": "<s>", "single_word": false, "lstrip": true, "rstrip": false, "normalized": false, "special": true}],
         "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Lowercase"}, {"type": "Strip", "strip_left": true, "strip_right": false},
           {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}, {"type": "Prepend", "prepend": "\u2581"},
           {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": false}]},
         "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\p{N}+"}, "behavior": "Isolated", "invert": false},
           {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": true}, {"type": "Digits", "individual_digits": true},
           {"type": "Punctuation", "behavior": "Contiguous"}, {"type": "CharDelimiterSplit", "delimiter": "x"}]},
         "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
           "special_tokens": {"<s>": {"id": "<s>", "ids": [6], "tokens": ["<s>"]}}},
         "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
           {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}, {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always"}]},
         "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "\u2581": 3, "1": 4, "!": 5}, "merges": ["a b", ["a", "b"]], "unk_token": "a",
           "continuing_subword_prefix": "", "end_of_word_suffix": "", "fuse_unk": true, "byte_fallback": false, "dropout": null}}
        """,
        """
        {"added_tokens": [{"id": 0, "content": "[UNK]", "special": true}], "normalizer": {"type": "Precompiled", "precompiled_charsmap": null},
         "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
         "post_processor": {"type": "BertProcessing", "sep": ["[UNK]", 0], "cls": ["[UNK]", 0]},
         "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
         "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
           "vocab": {"[UNK]": 0, "a": 1, "##b": 2}}}
        """,
        """
        {"normalizer": {"type": "Nmt"}, "pre_tokenizer": {"type": "WhitespaceSplit"}, "decoder": {"type": "BPEDecoder", "suffix": "</w>"},
         "model": {"type": "Unigram", "unk_id": 0, "byte_fallback": true, "vocab": [["<unk>", 0.0], ["a", -1.5], ["b", -2.25], ["ab", -3.0]]}}
        """,
    ];

    [Theory]
    [MemberData(nameof(MutationBases))]
    public void Every_value_of_another_kind_gives_a_result_or_one_line_naming_the_file(string json)
    {
        var path = Path.Combine(folder, "tokenizer.json");
        var baseline = TokenizeFile(path, json);
        Assert.True(baseline.Exit == 0, baseline.ToString());
        JsonNode[] others = [JsonValue.Create(-1), JsonValue.Create(int.MaxValue), JsonValue.Create(0.5), JsonValue.Create("x"),
            JsonValue.Create(true), new JsonArray(), new JsonObject(), JsonNode.Parse("1e400")!];
        var runs = 0;
        foreach (var target in Leaves(JsonNode.Parse(json)!))
        {
            foreach (var other in others)
            {
                var mutated = JsonNode.Parse(json)!;
                if (!Replace(mutated, target, other.DeepClone()))
                    continue;
                var result = TokenizeFile(path, mutated.ToJsonString());
                runs++;
                if (result.Exit == 0)
                {
                    var decoded = CliRunner.Run("tokenize", path, "--decode", "0 1 2");
                    Assert.True(decoded.Exit is 0 or 2, $"{target} = {other.ToJsonString()}: {decoded}");
                    continue;
                }
                AssertOneLineError($"{target} = {other.ToJsonString()}", result, path, "");
            }
        }
        Assert.True(runs > 100, $"only {runs} mutations");
    }

    // Every value's JSON path (as System.Text.Json.Nodes writes it), objects and arrays included.
    private static IEnumerable<string> Leaves(JsonNode node)
    {
        yield return node.GetPath();
        var children = node switch
        {
            JsonObject o => o.Select(p => p.Value),
            JsonArray a => a.Take(3), // a few entries of long arrays are enough
            _ => [],
        };
        foreach (var child in children)
        {
            if (child is null)
                continue;
            foreach (var leaf in Leaves(child))
                yield return leaf;
        }
    }

    private static bool Replace(JsonNode root, string path, JsonNode value)
    {
        var stack = new Stack<JsonNode>([root]);
        while (stack.TryPop(out var node))
        {
            if (node.GetPath() == path && node.Parent is { } parent)
            {
                if (parent is JsonObject o)
                    o[node.GetPropertyName()] = value;
                else
                    ((JsonArray)parent)[node.GetElementIndex()] = value;
                return true;
            }
            foreach (var child in node switch { JsonObject o => o.Select(p => p.Value), JsonArray a => a, _ => [] })
            {
                if (child is not null)
                    stack.Push(child);
            }
        }
        return false;
    }

    private static CliRunner.Result TokenizeFile(string path, string json)
    {
        File.WriteAllText(path, json);
        return Tokenize(path, "ab a\u2581b 12! <s>x ab\uFFF0");
    }

    private static CliRunner.Result Tokenize(string path, string text)
    {
        var run = Task.Run(() => CliRunner.Run("tokenize", path, "--text", text));
        Assert.True(run.Wait(Limit), $"tokenize did not finish within {Limit}");
        return run.Result;
    }

    private static void AssertOneLineError(string name, CliRunner.Result result, string path, string expected)
    {
        Assert.True(result.Exit == 2, $"{name}: {result}");
        var line = result.Err.TrimEnd('\n');
        Assert.False(line.Contains('\n'), $"{name}: more than one line: {result.Err}");
        Assert.StartsWith("error: ", line);
        Assert.Contains(path, line);
        Assert.Contains(expected, line);
        Assert.DoesNotContain(" at Recur.", line); // no stack trace
    }

    private static string NestedSequence(int depth) =>
        string.Concat(Enumerable.Repeat("""{"type": "Sequence", "normalizers": [""", depth)) + """{"type": 5}"""
        + string.Concat(Enumerable.Repeat("]}", depth));

    private static string Bpe(string vocab, string merges = """["a b"]""", string model = "", string added = "", string? normalizer = null,
        string? pre = null, string? post = null, string? decoder = null) => $$"""
        {"added_tokens": [{{added}}], "normalizer": {{normalizer ?? "null"}}, "pre_tokenizer": {{pre ?? "null"}},
         "post_processor": {{post ?? "null"}}, "decoder": {{decoder ?? "null"}},
         "model": {"type": "BPE", "vocab": {{vocab}}, "merges": {{merges}}{{model}} } }
        """;

    private static string Unigram(string vocab, string unkId = "0") =>
        $$"""{"model": {"type": "Unigram", "unk_id": {{unkId}}, "vocab": {{vocab}} } }""";
}
