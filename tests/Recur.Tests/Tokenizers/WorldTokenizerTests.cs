using System.Text;
using System.Text.Json;
using Recur.Runtime.Tokenizers;
using Recur.Tests.Support;

namespace Recur.Tests.Tokenizers;

/// <summary>
/// The RWKV World tokenizer against ChatRWKV's reference TRIE_TOKENIZER (tests/data/rwkv-world: the vocabulary, a
/// varied corpus and the reference ids, with how they were made), and its vocabulary reader on hand-made lines.
/// </summary>
public sealed class WorldTokenizerTests : IDisposable
{
    private static readonly string Data = Path.Combine(GoldenCases.RepositoryRoot, "tests", "data", "rwkv-world");
    private static readonly Lazy<Tokenizer> World = new(() => Tokenizer.FromFile(Path.Combine(Data, "rwkv_vocab_v20230424.txt")));
    private readonly string folder = Directory.CreateTempSubdirectory("recur-world-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    public static TheoryData<int> Cases()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Data, "reference_ids.json")));
        var data = new TheoryData<int>();
        for (int i = 0; i < doc.RootElement.GetProperty("cases").GetArrayLength(); i++) data.Add(i);
        return data;
    }

    private static readonly Lazy<(string Text, int[] Ids)[]> Reference = new(() =>
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Data, "reference_ids.json")));
        return doc.RootElement.GetProperty("cases").EnumerateArray()
            .Select(c => (c.GetProperty("text").GetString()!, c.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToArray())).ToArray();
    });

    [Fact]
    public void Corpus_covers_what_it_claims()
    {
        var texts = Reference.Value.Select(c => c.Text).ToList();
        Assert.True(texts.Count >= 200);
        Assert.Contains(texts, t => t.Any(c => c is >= '\u4e00' and <= '\u9fff'));        // CJK
        Assert.Contains(texts, t => t.EnumerateRunes().Any(r => r.Value >= 0x1F600));     // emoji
        Assert.Contains(texts, t => t.Contains("    ", StringComparison.Ordinal));          // whitespace runs
        Assert.Contains(texts, t => t.Contains("def ", StringComparison.Ordinal));          // code
        Assert.True(Reference.Value.Sum(c => c.Ids.Length) > 5000);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Ids_equal_ChatRWKVs_reference_and_decode_back(int index)
    {
        var (text, expected) = Reference.Value[index];
        Assert.Equal(expected, World.Value.Encode(text));
        Assert.Equal(text, World.Value.Decode(expected));
    }

    [Fact]
    public void Streaming_decode_holds_back_tokens_that_split_a_character()
    {
        // '😀' is F0 9F 98 80: the vocabulary has ' \xf0\x9f' and single bytes, so its bytes arrive in three tokens.
        const string text = "a 😀 b 北京 ж";
        var ids = World.Value.Encode(text);
        var stream = World.Value.CreateStreamDecoder();
        var pieces = ids.Select(stream.Push).ToList();
        Assert.Contains(string.Empty, pieces);                    // a token in the middle of the emoji adds no text yet
        Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD'));
        Assert.Equal(text, string.Concat(pieces) + stream.Flush());
    }

    [Fact]
    public void Every_byte_is_a_token_and_the_longest_match_wins()
    {
        var w = World.Value;
        Assert.Equal([1], w.Encode("\0"));                        // single bytes are ids 1..256
        Assert.Equal(Enumerable.Range(0, 256).Select(b => b + 1), Enumerable.Range(0, 256).Select(b => w.TokenToId(ByteLevelChar((byte)b))!.Value));
        Assert.Equal([65529], w.Encode(new string(' ', 128)));  // the longest entry: 128 spaces
        Assert.Equal([65529, 33], w.Encode(new string(' ', 129)));
        Assert.Equal(65530, w.VocabSize);
    }

    [Fact]
    public void Vocabulary_reader_understands_python_literals()
    {
        string path = Write(string.Join("\n", Enumerable.Range(0, 256).Select(b => $"{100 + b} b'\\x{b:x2}' 1")) + "\n" + """
            1 'a' 1
            2 '\x80' 2
            3 b'\x80' 1
            4 "it's" 4
            5 '\'' 1
            6 '\\' 1
            7 '\n\t\r' 3
            8 '\u2002' 3
            9 '\U0001f600' 4
            10 '\101\0' 2
            11 '北' 3
            12 b'a\xffb' 3
            13 '\q' 2
            """ + "\n");
        var t = Tokenizer.FromFile(path);
        Assert.Equal([2], t.Encode("\u0080"));                    // a str literal's \x80 is U+0080: two UTF-8 bytes
        Assert.Equal([4], t.Encode("it's"));
        Assert.Equal([5], t.Encode("'"));
        Assert.Equal([6], t.Encode("\\"));
        Assert.Equal([7], t.Encode("\n\t\r"));
        Assert.Equal([8], t.Encode("\u2002"));
        Assert.Equal([9], t.Encode("😀"));
        Assert.Equal([10], t.Encode("A\0"));
        Assert.Equal([11], t.Encode("北"));
        Assert.Equal([13], t.Encode("\\q"));                     // an unknown escape keeps its backslash
        Assert.Equal([1], t.Encode("a"));                         // the same bytes on a later line win, as in the reference
        Assert.Equal("a\uFFFDb", t.Decode([12]));                // bytes that are not UTF-8 decode to U+FFFD
    }

    [Theory]
    [InlineData("1 'ab' 3", ":1: the literal is 2 bytes but the line says 3")]
    [InlineData("x 'a' 1", ":1: expected a token id, found 'x'")]
    [InlineData("1 'a 1", ":1: expected a quoted Python literal")]
    [InlineData("1 '\\x4' 1", ":1: truncated \\x escape")]
    [InlineData("1 b'\u00e9' 2", ":1: bytes literal holds the non-ASCII character U+00E9")]
    [InlineData("1 'a'", ":1: expected 'ID LITERAL LENGTH'")]
    public void Malformed_vocabulary_line_is_named(string line, string message)
    {
        string path = Write(line + "\n");
        var e = Assert.Throws<InvalidDataException>(() => Tokenizer.FromFile(path));
        Assert.Contains(path + message, e.Message);
    }

    [Fact]
    public void Vocabulary_without_every_single_byte_is_refused()
    {
        string path = Write("1 'a' 1\n");
        var e = Assert.Throws<InvalidDataException>(() => Tokenizer.FromFile(path));
        Assert.Contains("no entry for the single byte 0x00", e.Message);
    }

    private string Write(string text)
    {
        string path = Path.Combine(folder, $"vocab-{Guid.NewGuid():N}.txt");
        File.WriteAllText(path, text.Replace("\r\n", "\n"), new UTF8Encoding(false));
        return path;
    }

    private static string ByteLevelChar(byte b) => ByteLevelAlphabet.ByteToChar(b).ToString();
}
