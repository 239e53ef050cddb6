namespace Recur.Runtime.Tokenizers;

/// <summary>A tokenizer.json "pre_tokenizer": cuts normalized text into the words the model sees.</summary>
internal abstract class PreTokenizer
{
    /// <summary>Appends the pieces <paramref name="piece"/> (never an added token) splits into.</summary>
    public abstract void Split(Piece piece, List<Piece> output);

    // Scratch list for matches; pre-tokenizers run on one thread per call.
    [ThreadStatic]
    private static List<(int Start, int Length)>? matchScratch;

    protected static List<(int Start, int Length)> RentMatches()
    {
        var matches = matchScratch ??= new List<(int, int)>();
        matches.Clear();
        return matches;
    }
}

internal sealed class SequencePreTokenizer(IReadOnlyList<PreTokenizer> preTokenizers) : PreTokenizer
{
    public override void Split(Piece piece, List<Piece> output)
    {
        List<Piece> current = [piece];
        foreach (var preTokenizer in preTokenizers)
        {
            var next = new List<Piece>(current.Count * 2);
            foreach (var p in current)
                preTokenizer.Split(p, next);
            current = next;
        }
        output.AddRange(current);
    }
}

/// <summary>
/// GPT-2's pre-tokenizer: optionally a leading space, the GPT-2 regex (contractions, letter runs,
/// number runs, other runs, whitespace), then every byte of UTF-8 mapped to the byte-level alphabet.
/// </summary>
internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : PreTokenizer
{
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private static readonly Lazy<OnigRegex> Gpt2Regex = new(() => OnigRegex.Create(Gpt2Pattern, "pre_tokenizer ByteLevel"));

    public override void Split(Piece piece, List<Piece> output)
    {
        var text = piece.Text;
        if (addPrefixSpace && !text.StartsWith(' '))
            piece = piece with { Text = text = " " + text };
        if (!useRegex)
        {
            output.Add(piece with { Text = ByteLevelNormalizer.ToByteLevel(text) });
            return;
        }
        var first = output.Count;
        var matches = RentMatches();
        Gpt2Regex.Value.FindAll(text, matches);
        Splitter.Split(piece, matches, SplitBehavior.Isolated, invert: false, output);
        for (var i = first; i < output.Count; i++)
            output[i] = output[i] with { Text = ByteLevelNormalizer.ToByteLevel(output[i].Text) };
    }
}

/// <summary>Splits on a regex or literal pattern.</summary>
internal sealed class SplitPreTokenizer(OnigRegex pattern, SplitBehavior behavior, bool invert) : PreTokenizer
{
    public override void Split(Piece piece, List<Piece> output)
    {
        var matches = RentMatches();
        pattern.FindAll(piece.Text, matches);
        Splitter.Split(piece, matches, behavior, invert, output);
    }
}

/// <summary>Where Metaspace puts its replacement character in front of a piece.</summary>
internal enum PrependScheme
{
    /// <summary>Every piece.</summary>
    Always,

    /// <summary>Only the piece at the start of the original text (not after an added token).</summary>
    First,

    /// <summary>Nowhere.</summary>
    Never,
}

/// <summary>SentencePiece's whitespace: spaces become '▁', a '▁' may lead, and words may split before each '▁'.</summary>
internal sealed class MetaspacePreTokenizer(char replacement, PrependScheme scheme, bool split) : PreTokenizer
{
    public override void Split(Piece piece, List<Piece> output)
    {
        var text = piece.Text.Replace(' ', replacement);
        var prepend = scheme == PrependScheme.Always || (scheme == PrependScheme.First && piece.AtStart);
        if (prepend && !text.StartsWith(replacement))
            text = replacement + text;
        piece = piece with { Text = text };
        if (!split)
        {
            output.Add(piece);
            return;
        }
        var matches = RentMatches();
        for (var i = text.IndexOf(replacement); i >= 0; i = text.IndexOf(replacement, i + 1))
            matches.Add((i, 1));
        Splitter.Split(piece, matches, SplitBehavior.MergedWithNext, invert: false, output);
    }
}

/// <summary>Words (\w+) and runs of other non-space characters (Oniguruma's \w).</summary>
internal sealed class WhitespacePreTokenizer : PreTokenizer
{
    private static readonly Lazy<OnigRegex> Words = new(() => OnigRegex.Create(@"\w+|[^\w\s]+", "pre_tokenizer Whitespace"));

    public override void Split(Piece piece, List<Piece> output)
    {
        var matches = RentMatches();
        Words.Value.FindAll(piece.Text, matches);
        Splitter.Split(piece, matches, SplitBehavior.Removed, invert: true, output);
    }
}

/// <summary>Splits on any character accepted by a predicate (whitespace, digits, punctuation, a delimiter).</summary>
internal sealed class CharSplitPreTokenizer(Func<System.Text.Rune, bool> predicate, SplitBehavior behavior) : PreTokenizer
{
    public override void Split(Piece piece, List<Piece> output)
    {
        var matches = RentMatches();
        Splitter.FindAll(piece.Text, predicate, matches);
        Splitter.Split(piece, matches, behavior, invert: false, output);
    }
}
