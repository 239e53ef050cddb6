using System.Text;
using Recur.Runtime.Tokenizers;

namespace Recur.Tests.Tokenizers;

/// <summary>
/// Corner cases where Recur once differed from Hugging Face tokenizers (0.22): Unigram score ties
/// (how the scores are read from JSON) and BERT's text cleaning.
/// </summary>
public sealed class TokenizerCornerCaseTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("recur-tokenizer-corner-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    [Fact]
    public void Unigram_ties_are_decided_by_scores_read_as_Hugging_Face_reads_them()
    {
        // "a" + "b" ties with "ab" for correctly rounded scores (-8.598705291748047 - 1 = -9.598705291748047
        // exactly), so the first-found "ab" would win. Hugging Face reads "-9.598705291748047" one step
        // off, and its Node binding (tokenizers 0.22.2) returns [1, 2]: "a" + "b" scores higher there.
        var path = Write("""
            {"model": {"type": "Unigram", "unk_id": 0,
              "vocab": [["<unk>", 0.0], ["a", -8.598705291748047], ["b", -1.0], ["ab", -9.598705291748047]]}}
            """);
        Assert.Equal([1, 2], Tokenizer.FromFile(path).Encode("ab"));
    }

    // Each value: the naive reading (the digits as a u64, rounded to a double, then one multiply or
    // divide by a correctly rounded power of ten), worked out in Python with float(digits) / 1eK, and
    // the correctly rounded double, where they differ.
    [Theory]
    [InlineData("-12.929070472717285", 0xC029DBAF1FFFFFFF, 0xC029DBAF20000000)] // 12929070472717285 rounds to ...284 first
    [InlineData("7.051592265333245740744957", 0x401C34D49A5154D6, 0x401C34D49A5154D5)] // digits past u64 dropped: 7051592265333245740 / 1e18
    [InlineData("6.231984909480530386813830", 0x4018ED8D73BD899F, 0x4018ED8D73BD89A0)]
    [InlineData("123456789012345678901234", 0x44BA249B1F10A06C, 0x44BA249B1F10A06D)] // 12345678901234567890 * 1e4
    [InlineData("89210199942059637e-317", 0x01A31E2EA7FDB6C9, 0x01A31E2EA7FDB6CA)] // beyond the table: / 1e308, then / 1e9
    [InlineData("19227903782410814e-312", 0x0289266526EEBA77, 0x0289266526EEBA76)]
    [InlineData("18446744073709551616.3", 0x43F0000000000000, 0x43F0000000000000)] // the 6 overflows (x10); the 3 fits again
    [InlineData("0.1", 0x3FB999999999999A, 0x3FB999999999999A)]
    [InlineData("2.5E-3", 0x3F647AE147AE147B, 0x3F647AE147AE147B)]
    [InlineData("1.7976931348623157e308", 0x7FEFFFFFFFFFFFFF, 0x7FEFFFFFFFFFFFFF)]
    [InlineData("1e-99999999999", 0x0000000000000000, 0x0000000000000000)] // exponent beyond i32 towards zero
    [InlineData("-0", 0x8000000000000000, 0x8000000000000000)]
    public void Json_numbers_are_read_as_serde_json_reads_them(string text, ulong expected, ulong correctlyRounded)
    {
        Assert.True(SerdeJsonNumber.TryParse(Encoding.ASCII.GetBytes(text), out var value));
        Assert.Equal(expected, BitConverter.DoubleToUInt64Bits(value));
        Assert.Equal(correctlyRounded, BitConverter.DoubleToUInt64Bits(double.Parse(text, System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Theory]
    [InlineData("1e309")]
    [InlineData("-2e308")]
    [InlineData("1e99999999999")]
    public void Json_numbers_beyond_a_double_are_out_of_range(string text) =>
        Assert.False(SerdeJsonNumber.TryParse(Encoding.ASCII.GetBytes(text), out _));

    [Fact]
    public void Bert_cleaning_removes_control_format_and_private_use_characters_only()
    {
        var path = Write("""
            {"added_tokens": [{"id": 0, "content": "[UNK]", "special": true}, {"id": 1, "content": "[CLS]", "special": true},
                              {"id": 2, "content": "[SEP]", "special": true}],
             "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
             "pre_tokenizer": {"type": "BertPreTokenizer"},
             "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 2], "cls": ["[CLS]", 1]},
             "model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "a": 3, "##b": 4, "b": 5}}}
            """);
        // The ids Hugging Face tokenizers 0.22.2 gives for the same file (through its Node binding).
        var tokenizer = Tokenizer.FromFile(path);
        Assert.Equal([1, 0, 2], tokenizer.Encode("a\uFFF0b"));          // unassigned: kept, so the word is unknown
        Assert.Equal([1, 3, 4, 2], tokenizer.Encode("a\u200Bb"));       // format: removed
        Assert.Equal([1, 3, 4, 2], tokenizer.Encode("a\uE000b"));       // private use: removed
        Assert.Equal([1, 3, 4, 2], tokenizer.Encode("a\U000F0001b"));   // private use, plane 15: removed
        Assert.Equal([1, 3, 4, 2], tokenizer.Encode("a\u0007b"));       // control: removed
        Assert.Equal([1, 3, 5, 2], tokenizer.Encode("a\u2028b"));       // a line separator is whitespace
        Assert.Equal([1, 0, 2], tokenizer.Encode("a\u0890b"));          // format only since Unicode 14: kept
        Assert.Equal([1, 0, 2], tokenizer.Encode("a\U00013439b"));      // format only since Unicode 15: kept
    }

    private string Write(string json)
    {
        var path = Path.Combine(folder, $"tokenizer-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        return path;
    }
}
