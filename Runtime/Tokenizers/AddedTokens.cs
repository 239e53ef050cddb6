using System.Text;

namespace Recur.Runtime.Tokenizers;

/// <summary>An entry of tokenizer.json's "added_tokens".</summary>
internal sealed record AddedToken(int Id, string Content, bool SingleWord, bool LStrip, bool RStrip, bool Normalized, bool Special);

/// <summary>A span of text on its way through the pipeline; Id is set once it is an added token.</summary>
/// <param name="AtStart">Whether the piece begins at offset 0 of the original text (Metaspace's
/// prepend_scheme "first" adds its prefix only there).</param>
internal readonly record struct Piece(string Text, int Id, bool AtStart)
{
    public const int NoId = -1;

    public bool IsToken => Id != NoId;
}

/// <summary>
/// Finds added tokens in text the way Hugging Face's AddedVocabulary does: leftmost-longest
/// matches, non-overlapping; a single_word match is dropped when a word character touches it;
/// lstrip/rstrip widen a match over the whitespace beside it. Tokens with normalized=false are
/// matched in the raw text, the others in the normalized pieces against their normalized form.
/// </summary>
internal sealed class AddedTokenMatcher
{
    private readonly Node root = new();
    private readonly bool[] firstChars = new bool[char.MaxValue + 1];

    public AddedTokenMatcher(IEnumerable<(string Pattern, AddedToken Token)> entries)
    {
        foreach (var (pattern, token) in entries)
        {
            if (pattern.Length == 0)
                continue;
            var node = root;
            foreach (var c in pattern)
                node = node.Child(c);
            node.Token ??= token; // the first entry wins when two patterns coincide
            firstChars[pattern[0]] = true;
            IsEmpty = false;
        }
    }

    public bool IsEmpty { get; } = true;

    /// <summary>Splits <paramref name="piece"/> into added tokens and the text between them.</summary>
    public void Split(Piece piece, List<Piece> output)
    {
        var text = piece.Text;
        if (IsEmpty || text.Length == 0)
        {
            output.Add(piece);
            return;
        }

        var emitted = 0; // end of what has been output so far
        var position = 0;
        while (position < text.Length)
        {
            if (!TryMatchAt(text, position, out var length, out var token))
            {
                position++;
                continue;
            }
            var start = position;
            var stop = position + length;
            position = stop; // matches never overlap, even a rejected one

            if (token.SingleWord && (CharClasses.EndsWithWordCharacter(text.AsSpan(0, start))
                                     || CharClasses.StartsWithWordCharacter(text.AsSpan(stop))))
                continue;
            if (token.LStrip)
                start = Math.Max(WhitespaceStartBefore(text, start), emitted);
            if (token.RStrip)
                stop = WhitespaceEndAfter(text, stop);

            if (emitted < start)
                output.Add(new Piece(text[emitted..start], Piece.NoId, piece.AtStart && emitted == 0));
            output.Add(new Piece(text[start..stop], token.Id, piece.AtStart && start == 0));
            emitted = stop;
        }
        if (emitted == 0)
            output.Add(piece);
        else if (emitted < text.Length)
            output.Add(new Piece(text[emitted..], Piece.NoId, false));
    }

    private bool TryMatchAt(string text, int position, out int length, out AddedToken token)
    {
        length = 0;
        token = null!;
        if (!firstChars[text[position]])
            return false;
        var node = root;
        for (var i = position; i < text.Length && node.TryGetChild(text[i], out node); i++)
        {
            if (node.Token is { } found)
            {
                token = found;
                length = i + 1 - position;
            }
        }
        return length > 0;
    }

    private static int WhitespaceStartBefore(string text, int index)
    {
        while (index > 0)
        {
            var last = Rune.DecodeLastFromUtf16(text.AsSpan(0, index), out var rune, out var consumed);
            if (last != System.Buffers.OperationStatus.Done || !CharClasses.IsWhiteSpace(rune))
                break;
            index -= consumed;
        }
        return index;
    }

    private static int WhitespaceEndAfter(string text, int index)
    {
        while (index < text.Length)
        {
            var status = Rune.DecodeFromUtf16(text.AsSpan(index), out var rune, out var consumed);
            if (status != System.Buffers.OperationStatus.Done || !CharClasses.IsWhiteSpace(rune))
                break;
            index += consumed;
        }
        return index;
    }

    private sealed class Node
    {
        private Dictionary<char, Node>? children;

        public AddedToken? Token { get; set; }

        public Node Child(char c)
        {
            children ??= [];
            if (!children.TryGetValue(c, out var child))
                children[c] = child = new Node();
            return child;
        }

        public bool TryGetChild(char c, out Node child)
        {
            child = null!;
            return children is not null && children.TryGetValue(c, out child!);
        }
    }
}
