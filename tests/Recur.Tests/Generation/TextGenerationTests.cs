using System.Text.Json;
using System.Text.Json.Nodes;
using Recur.Runtime.Tokenizers;
using Recur.Tests.Support;

namespace Recur.Tests.Generation;

/// <summary>
/// Text in, text out through the CLI: a checkpoint that carries a tokenizer.json (a byte-level BPE
/// sized to the golden RWKV's 320-token vocabulary) converts into a package that takes a prompt and
/// streams text.
/// </summary>
public sealed class TextGenerationTests
{
    [Fact]
    public void Prompt_text_streams_the_decoded_greedy_continuation()
    {
        using var checkpoint = TempCheckpoint.CopyOf("rwkv");
        File.WriteAllText(Path.Combine(checkpoint.Path, "tokenizer.json"), ByteLevelTokenizer(vocab: 320));
        string package = checkpoint.Path + "-out";
        Assert.Equal(0, CliRunner.Run("convert", checkpoint.Path, "-o", package, "--quiet").Exit);
        var tokenizer = Tokenizer.FromFile(Path.Combine(package, "tokenizer.json"));

        const string prompt = "the cat sat on the mat";
        var json = CliRunner.Run("generate", package, "--prompt", prompt, "--max-new-tokens", "16", "--ignore-eos", "--json");
        Assert.True(json.Exit == 0, json.ToString());
        var row = JsonNode.Parse(json.Out)!.AsArray()[0]!;
        var ids = row["ids"]!.AsArray().Select(n => (int)n!.GetValue<long>()).ToArray();
        Assert.Equal(16, ids.Length);

        // The same prompt as ids gives the same tokens: the text path is the tokenizer plus the id path.
        var byIds = CliRunner.Run("generate", package, "--ids", string.Join(' ', tokenizer.Encode(prompt)), "--max-new-tokens", "16", "--ignore-eos", "--json");
        Assert.Equal(ids, JsonNode.Parse(byIds.Out)!.AsArray()[0]!["ids"]!.AsArray().Select(n => (int)n!.GetValue<long>()).ToArray());

        var streamed = CliRunner.Run("generate", package, "--prompt", prompt, "--max-new-tokens", "16", "--ignore-eos");
        Assert.True(streamed.Exit == 0, streamed.ToString());
        Assert.Equal(prompt + tokenizer.Decode(ids, skipSpecialTokens: true), streamed.Out.TrimEnd('\n'));
        Assert.Contains("tok/s", streamed.Err);
    }

    [Fact]
    public void Rwkv7_with_the_World_vocabulary_takes_text_and_resumes_from_a_saved_state()
    {
        using var checkpoint = TempCheckpoint.CopyOf("rwkv7");
        File.Copy(Path.Combine(GoldenCases.RepositoryRoot, "tests", "data", "rwkv-world", Tokenizer.WorldVocabularyFile),
            Path.Combine(checkpoint.Path, Tokenizer.WorldVocabularyFile));
        string package = checkpoint.Path + "-out";
        Assert.Equal(0, CliRunner.Run("convert", checkpoint.Path, "-o", package, "--quiet").Exit);
        Assert.Equal(Tokenizer.WorldVocabularyFile, JsonNode.Parse(File.ReadAllText(Path.Combine(package, "recur.json")))!["tokenizer"]!.GetValue<string>());
        // The tiny model knows 260 ids: single-byte tokens (id = byte + 1) are inside it.
        Assert.Equal("[82,71]", CliRunner.Run("tokenize", package, "--text", "QF").Out.Trim());

        int[] Generate(params string[] args)
        {
            var result = CliRunner.Run(["generate", package, "--ignore-eos", "--json", .. args]);
            Assert.True(result.Exit == 0, result.ToString());
            return JsonNode.Parse(result.Out)!.AsArray()[0]!["ids"]!.AsArray().Select(n => (int)n!.GetValue<long>()).ToArray();
        }
        var whole = Generate("--prompt", "QF", "--max-new-tokens", "12");
        Assert.Equal(whole, Generate("--ids", "82 71", "--max-new-tokens", "12"));
        // The saved state has seen the prompt and every new token but the last, which the resumed run feeds first.
        string saved = Path.Combine(checkpoint.Path, "state.safetensors");
        var first = Generate("--prompt", "QF", "--max-new-tokens", "5", "--save-state", saved);
        Assert.Equal(whole[..5], first);
        Assert.Equal(whole[5..], Generate("--load-state", saved, "--ids", first[^1].ToString(System.Globalization.CultureInfo.InvariantCulture), "--max-new-tokens", "7"));

        var streamed = CliRunner.Run("generate", package, "--prompt", "QF", "--max-new-tokens", "12", "--ignore-eos");
        Assert.True(streamed.Exit == 0, streamed.ToString());
        Assert.Equal("QF" + Tokenizer.FromFile(package).Decode(whole), streamed.Out.TrimEnd('\n'));
    }

    [Fact]
    public void Tokenize_verb_prints_ids_as_json_and_decodes_them_back()
    {
        string file = Path.Combine(Path.GetTempPath(), $"recur-tok-{Guid.NewGuid():N}.json");
        File.WriteAllText(file, ByteLevelTokenizer(vocab: 320));
        try
        {
            var encoded = CliRunner.Run("tokenize", file, "--text", "héllo 😀");
            Assert.Equal(0, encoded.Exit);
            var ids = JsonSerializer.Deserialize<int[]>(encoded.Out)!;
            Assert.Equal(Tokenizer.FromFile(file).Encode("héllo 😀"), ids);
            var decoded = CliRunner.Run("tokenize", file, "--decode", string.Join(' ', ids));
            Assert.Equal("héllo 😀", decoded.Out.TrimEnd('\n'));
            Assert.Equal(2, CliRunner.Run("tokenize", file, "--decode", "100000").Exit);
            Assert.Equal(2, CliRunner.Run("tokenize", file).Exit);
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>GPT-2-style byte-level BPE: the 256 byte tokens, then merges of letter pairs up to <paramref name="vocab"/>.</summary>
    private static string ByteLevelTokenizer(int vocab)
    {
        var tokens = Enumerable.Range(0, 256).Select(b => ByteLevelAlphabet.ByteToChar((byte)b).ToString()).ToList();
        var merges = new List<string>();
        const string letters = "etaoinshrdlucmfwypvbgkjqxz";
        for (int i = 0; tokens.Count < vocab; i++)
        {
            string pair = $"{letters[i % 26]} {letters[(i / 26 + i * 7 + 3) % 26]}";
            string merged = pair.Replace(" ", "");
            if (tokens.Contains(merged)) continue;
            merges.Add(pair);
            tokens.Add(merged);
        }
        return new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(),
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["post_processor"] = null,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["vocab"] = new JsonObject(tokens.Select((t, i) => KeyValuePair.Create(t, (JsonNode?)JsonValue.Create(i)))),
                ["merges"] = new JsonArray(merges.Select(m => (JsonNode?)JsonValue.Create(m)).ToArray()),
            },
        }.ToJsonString();
    }
}
