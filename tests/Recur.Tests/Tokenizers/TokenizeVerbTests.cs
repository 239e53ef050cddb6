using System.Text.Json;
using Recur.Tests.Support;

namespace Recur.Tests.Tokenizers;

/// <summary>
/// `recur tokenize` on input Recur once refused or changed: an argument starting with @, the text "--",
/// a file starting with a byte order mark, an empty list of ids to decode.
/// </summary>
public sealed class TokenizeVerbTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("recur-tokenize-verb-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    [Fact]
    public void An_argument_starting_with_at_is_text_not_a_response_file()
    {
        var result = CliRunner.Run("tokenize", CharTokenizer(), "--text", "@channel please review");
        Assert.True(result.Exit == 0, result.ToString());
        Assert.Equal(CharIds("@channel please review"), JsonSerializer.Deserialize<int[]>(result.Out)!);
    }

    [Fact]
    public void Double_dash_right_after_an_option_is_its_value()
    {
        var result = CliRunner.Run("tokenize", CharTokenizer(), "--text", "--");
        Assert.True(result.Exit == 0, result.ToString());
        Assert.Equal(CharIds("--"), JsonSerializer.Deserialize<int[]>(result.Out)!);

        // Elsewhere "--" still ends the options: the text after it is the tokenizer argument, then nothing to encode.
        Assert.Equal(2, CliRunner.Run("tokenize", "--", CharTokenizer()).Exit);
    }

    [Fact]
    public void File_input_keeps_a_leading_byte_order_mark_and_refuses_bytes_that_are_not_UTF8()
    {
        var tokenizer = CharTokenizer();
        var text = Path.Combine(folder, "bom.txt");
        File.WriteAllBytes(text, [0xEF, 0xBB, 0xBF, (byte)'h', (byte)'i']);
        var result = CliRunner.Run("tokenize", tokenizer, "--file", text);
        Assert.True(result.Exit == 0, result.ToString());
        Assert.Equal([ByteOrderMarkId, .. CharIds("hi")], JsonSerializer.Deserialize<int[]>(result.Out)!);

        File.WriteAllBytes(text, [(byte)'h', 0xFF, (byte)'i']);
        result = CliRunner.Run("tokenize", tokenizer, "--file", text);
        Assert.Equal(2, result.Exit);
        Assert.Contains(text, result.Err);
        Assert.Contains("not UTF-8", result.Err);
    }

    [Fact]
    public void Decoding_no_ids_gives_the_empty_text()
    {
        foreach (var ids in new[] { "", "  " })
        {
            var result = CliRunner.Run("tokenize", CharTokenizer(), "--decode", ids);
            Assert.True(result.Exit == 0, result.ToString());
            Assert.Equal("\n", result.Out);
        }
    }

    private const int ByteOrderMarkId = 95;

    // Printable ASCII, one token per character (id = code - 32), and U+FEFF; no merges.
    private string CharTokenizer()
    {
        var vocab = Enumerable.Range(32, 95).ToDictionary(c => ((char)c).ToString(), c => c - 32);
        vocab["\uFEFF"] = ByteOrderMarkId;
        return Write($$"""{"model": {"type": "BPE", "vocab": {{JsonSerializer.Serialize(vocab)}}, "merges": [] } }""");
    }

    private static int[] CharIds(string text) => text.Select(c => c - 32).ToArray();

    private string Write(string json)
    {
        var path = Path.Combine(folder, $"tokenizer-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        return path;
    }
}
