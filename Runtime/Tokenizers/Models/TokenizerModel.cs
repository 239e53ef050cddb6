namespace Recur.Runtime.Tokenizers;

/// <summary>A tokenizer.json "model": turns one pre-tokenized word into token ids.</summary>
internal abstract class TokenizerModel
{
    /// <summary>Appends the ids of <paramref name="word"/> (never empty) to <paramref name="ids"/>.</summary>
    public abstract void Tokenize(string word, List<int> ids);

    public abstract int? TokenToId(string token);

    public abstract string? IdToToken(int id);

    /// <summary>One more than the largest id in the vocabulary.</summary>
    public abstract int IdLimit { get; }

    /// <summary>The string "&lt;0xXX&gt;" that byte-fallback vocabularies use for a byte.</summary>
    public static string BytePiece(byte value) => ByteTokens[value];

    private static readonly string[] ByteTokens =
        Enumerable.Range(0, 256).Select(b => $"<0x{b:X2}>").ToArray();

    /// <summary>The id array of a vocabulary; null entries where ids are unused.</summary>
    protected static string?[] ReverseVocabulary(IReadOnlyDictionary<string, int> vocabulary)
    {
        var limit = vocabulary.Count == 0 ? 0 : vocabulary.Values.Max() + 1;
        var tokens = new string?[limit];
        foreach (var (token, id) in vocabulary)
            tokens[id] ??= token;
        return tokens;
    }
}
