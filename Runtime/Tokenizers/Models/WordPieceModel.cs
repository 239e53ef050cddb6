namespace Recur.Runtime.Tokenizers;

/// <summary>
/// BERT's WordPiece: greedy longest match from the start of the word, continuation pieces
/// carrying a prefix ("##"); a word with an unmatched rest, or longer than
/// max_input_chars_per_word characters, is one unk token.
/// </summary>
internal sealed class WordPieceModel(Dictionary<string, int> vocabulary, string unkToken, string prefix, int maxInputCharsPerWord)
    : TokenizerModel
{
    private readonly string?[] tokens = ReverseVocabulary(vocabulary);

    public override int IdLimit => tokens.Length;

    public override int? TokenToId(string token) => vocabulary.TryGetValue(token, out var id) ? id : null;

    public override string? IdToToken(int id) => (uint)id < (uint)tokens.Length ? tokens[id] : null;

    public override void Tokenize(string word, List<int> ids)
    {
        if (word.EnumerateRunes().Count() > maxInputCharsPerWord)
        {
            ids.Add(UnkId());
            return;
        }
        var first = ids.Count;
        var start = 0;
        while (start < word.Length)
        {
            var found = -1;
            var end = word.Length;
            while (end > start)
            {
                var candidate = start > 0 ? prefix + word[start..end] : word[start..end];
                if (vocabulary.TryGetValue(candidate, out found))
                    break;
                found = -1;
                end--;
                if (end > start && char.IsLowSurrogate(word[end]))
                    end--; // never split a surrogate pair
            }
            if (found < 0)
            {
                ids.RemoveRange(first, ids.Count - first);
                ids.Add(UnkId());
                return;
            }
            ids.Add(found);
            start = end;
        }
    }

    private int UnkId() => vocabulary.TryGetValue(unkToken, out var id)
        ? id
        : throw new InvalidDataException($"The WordPiece model's unk_token '{unkToken}' is not in its vocabulary.");
}

/// <summary>WordLevel: a whole word is one vocabulary entry, or the unk token.</summary>
internal sealed class WordLevelModel(Dictionary<string, int> vocabulary, string? unkToken) : TokenizerModel
{
    private readonly string?[] tokens = ReverseVocabulary(vocabulary);

    public override int IdLimit => tokens.Length;

    public override int? TokenToId(string token) => vocabulary.TryGetValue(token, out var id) ? id : null;

    public override string? IdToToken(int id) => (uint)id < (uint)tokens.Length ? tokens[id] : null;

    public override void Tokenize(string word, List<int> ids)
    {
        if (vocabulary.TryGetValue(word, out var id) || (unkToken is not null && vocabulary.TryGetValue(unkToken, out id)))
            ids.Add(id);
        else
            throw new InvalidDataException($"The WordLevel model has no entry for '{word}' and no usable unk_token.");
    }
}
