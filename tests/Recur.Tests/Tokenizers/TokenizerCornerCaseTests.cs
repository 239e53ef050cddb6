using Recur.Runtime.Tokenizers;

namespace Recur.Tests.Tokenizers;

/// <summary>
/// Corner cases where Recur once differed from Hugging Face tokenizers (0.22): BERT's text cleaning.
/// </summary>
public sealed class TokenizerCornerCaseTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("recur-tokenizer-corner-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

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
