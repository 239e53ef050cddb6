namespace Recur.Runtime.Tokenizers;

/// <summary>
/// Decodes ids that arrive one at a time, as generation produces them. <see cref="Push"/>
/// returns the text that became complete with each id, and <see cref="Flush"/> what is left at
/// the end, so that all Push results followed by Flush equal <see cref="Tokenizer.Decode"/> of all
/// the ids.
/// <para>
/// Each step decodes a short window: the ids of the previous step's output (as context) and the
/// new ones, and returns what that adds to the context's text. Context matters because decoders
/// look at neighbours: SentencePiece decoders strip the space of the very first token only, and a
/// character split over byte tokens is only text once its last byte arrives. Output is held back
/// while the window's text ends in U+FFFD, the mark of an incomplete UTF-8 sequence.
/// (The scheme is Hugging Face's DecodeStream.)
/// </para>
/// Not thread-safe: one instance per stream.
/// </summary>
public sealed class TokenStreamDecoder
{
    private readonly Tokenizer tokenizer;
    private readonly bool skipSpecialTokens;
    private readonly List<int> window = [];
    private string prefix = string.Empty;   // the text of window[..prefixCount], already returned
    private int prefixCount;

    internal TokenStreamDecoder(Tokenizer tokenizer, bool skipSpecialTokens)
    {
        this.tokenizer = tokenizer;
        this.skipSpecialTokens = skipSpecialTokens;
    }

    /// <summary>Adds one id; returns the text it completes (often empty mid-character).</summary>
    public string Push(int id)
    {
        if (prefix.Length == 0 && window.Count > 0)
        {
            // Nothing returned yet from this window: its ids so far are the context, once they are text.
            var text = Decode(window.Count);
            if (!text.EndsWith('\uFFFD'))
            {
                prefix = text;
                prefixCount = window.Count;
            }
        }
        window.Add(id);
        var decoded = Decode(window.Count);
        if (decoded.Length <= prefix.Length || decoded.EndsWith('\uFFFD') || !decoded.StartsWith(prefix, StringComparison.Ordinal))
            return string.Empty;

        var added = decoded[prefix.Length..];
        window.RemoveRange(0, prefixCount);
        prefix = Decode(window.Count);
        prefixCount = window.Count;
        return added;
    }

    /// <summary>Returns what is still held back (such as U+FFFD for a truncated character) and starts over.</summary>
    public string Flush()
    {
        var decoded = Decode(window.Count);
        var rest = decoded.Length > prefix.Length && decoded.StartsWith(prefix, StringComparison.Ordinal)
            ? decoded[prefix.Length..]
            : string.Empty;
        window.Clear();
        prefix = string.Empty;
        prefixCount = 0;
        return rest;
    }

    private string Decode(int count) =>
        tokenizer.Decode(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(window)[..count], skipSpecialTokens);
}
