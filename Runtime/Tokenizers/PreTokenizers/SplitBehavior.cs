using System.Text;

namespace Recur.Runtime.Tokenizers;

/// <summary>What a split does with the text a pattern matched (tokenizer.json's "behavior").</summary>
internal enum SplitBehavior
{
    /// <summary>Drop the matches.</summary>
    Removed,

    /// <summary>Each match is a piece of its own.</summary>
    Isolated,

    /// <summary>A match joins the piece before it.</summary>
    MergedWithPrevious,

    /// <summary>A match joins the piece after it.</summary>
    MergedWithNext,

    /// <summary>Consecutive matches form one piece.</summary>
    Contiguous,
}

/// <summary>Cuts a piece at the matches of a pattern, as Hugging Face's NormalizedString::split.</summary>
internal static class Splitter
{
    public static void Split(Piece piece, List<(int Start, int Length)> matches, SplitBehavior behavior, bool invert, List<Piece> output)
    {
        var text = piece.Text;
        // Segments cover the text: (start, end, isMatch).
        var segments = new List<(int Start, int End, bool IsMatch)>(matches.Count * 2 + 1);
        var previous = 0;
        foreach (var (start, length) in matches)
        {
            if (previous != start)
                segments.Add((previous, start, invert));
            segments.Add((start, start + length, !invert));
            previous = start + length;
        }
        if (previous != text.Length)
            segments.Add((previous, text.Length, invert));

        var ranges = new List<(int Start, int End)>(segments.Count);
        var previousMatch = false;
        switch (behavior)
        {
            case SplitBehavior.Removed:
                foreach (var s in segments)
                {
                    if (!s.IsMatch)
                        ranges.Add((s.Start, s.End));
                }
                break;
            case SplitBehavior.Isolated:
                foreach (var s in segments)
                    ranges.Add((s.Start, s.End));
                break;
            case SplitBehavior.MergedWithPrevious:
                foreach (var s in segments)
                {
                    if (s.IsMatch && !previousMatch && ranges.Count > 0)
                        ranges[^1] = (ranges[^1].Start, s.End);
                    else
                        ranges.Add((s.Start, s.End));
                    previousMatch = s.IsMatch;
                }
                break;
            case SplitBehavior.MergedWithNext:
                for (var i = segments.Count - 1; i >= 0; i--)
                {
                    var s = segments[i];
                    if (s.IsMatch && !previousMatch && ranges.Count > 0)
                        ranges[^1] = (s.Start, ranges[^1].End);
                    else
                        ranges.Add((s.Start, s.End));
                    previousMatch = s.IsMatch;
                }
                ranges.Reverse();
                break;
            case SplitBehavior.Contiguous:
                foreach (var s in segments)
                {
                    if (s.IsMatch == previousMatch && ranges.Count > 0)
                        ranges[^1] = (ranges[^1].Start, s.End);
                    else
                        ranges.Add((s.Start, s.End));
                    previousMatch = s.IsMatch;
                }
                break;
        }

        if (ranges.Count == 1 && ranges[0] == (0, text.Length))
        {
            output.Add(piece);
            return;
        }
        foreach (var (start, end) in ranges)
        {
            if (end > start)
                output.Add(new Piece(text[start..end], Piece.NoId, piece.AtStart && start == 0));
        }
    }

    /// <summary>Every code point for which <paramref name="predicate"/> holds, as a match.</summary>
    public static void FindAll(string text, Func<Rune, bool> predicate, List<(int Start, int Length)> matches)
    {
        var position = 0;
        foreach (var rune in text.EnumerateRunes())
        {
            if (predicate(rune))
                matches.Add((position, rune.Utf16SequenceLength));
            position += rune.Utf16SequenceLength;
        }
    }
}
