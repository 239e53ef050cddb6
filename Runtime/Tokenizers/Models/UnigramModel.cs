using System.Collections.Concurrent;
using System.Text;

namespace Recur.Runtime.Tokenizers;

/// <summary>
/// SentencePiece's Unigram model (T5, Switch Transformers): the segmentation of a word into
/// vocabulary pieces with the highest total score (log probability), found by Viterbi over every
/// piece that starts at every code point. A code point no single-character piece covers is unk,
/// scored (lowest score - 10) as SentencePiece does; adjacent unks are fused into one token, whose
/// UTF-8 bytes become "&lt;0xXX&gt;" tokens when byte_fallback is on.
/// </summary>
internal sealed class UnigramModel : TokenizerModel
{
    private const double UnkPenalty = 10.0;
    private const int CacheCapacity = 10_000;
    private const int MaxCachedWordLength = 256;

    private readonly string[] pieces;
    private readonly double[] scores;
    private readonly Dictionary<string, int> ids = new(StringComparer.Ordinal);
    private readonly int? unkId;
    private readonly bool byteFallback;
    private readonly double unkScore;
    private readonly ConcurrentDictionary<string, int[]> cache = new(StringComparer.Ordinal);
    private int cachedWords;

    // A character trie of the pieces: edges keyed by (node, char), the piece id ending at a node.
    private readonly Dictionary<long, int> edges = [];
    private readonly List<int> pieceAtNode = [-1];

    public UnigramModel(IReadOnlyList<(string Piece, double Score)> vocabulary, int? unkId, bool byteFallback)
    {
        pieces = new string[vocabulary.Count];
        scores = new double[vocabulary.Count];
        var minScore = double.PositiveInfinity;
        for (var id = 0; id < vocabulary.Count; id++)
        {
            var (piece, score) = vocabulary[id];
            pieces[id] = piece;
            scores[id] = score;
            ids[piece] = id;
            minScore = Math.Min(minScore, score);
            AddToTrie(piece, id);
        }
        this.unkId = unkId;
        this.byteFallback = byteFallback;
        unkScore = minScore - UnkPenalty;
    }

    public override int IdLimit => pieces.Length;

    public override int? TokenToId(string token) => ids.TryGetValue(token, out var id) ? id : null;

    public override string? IdToToken(int id) => (uint)id < (uint)pieces.Length ? pieces[id] : null;

    public override void Tokenize(string word, List<int> output)
    {
        if (!cache.TryGetValue(word, out var result))
        {
            result = Encode(word);
            // ConcurrentDictionary.Count takes every lock, so the size is counted here.
            if (word.Length < MaxCachedWordLength && Volatile.Read(ref cachedWords) < CacheCapacity && cache.TryAdd(word, result))
                Interlocked.Increment(ref cachedWords);
        }
        output.AddRange(result);
    }

    private int[] Encode(string text)
    {
        // best[end]: the best segmentation of text[..end] ends with piece id from start.
        var n = text.Length;
        var bestScore = new double[n + 1];
        var bestStart = new int[n + 1];
        var bestId = new int[n + 1];
        Array.Fill(bestStart, -1);

        for (var start = 0; start < n; start = NextCodePoint(text, start))
        {
            var scoreHere = bestScore[start];
            var codePointEnd = NextCodePoint(text, start);
            var hasSingleCharacter = false;
            var node = 0;
            for (var i = start; i < n; i++)
            {
                if (!edges.TryGetValue(((long)node << 16) | text[i], out node))
                    break;
                var id = pieceAtNode[node];
                if (id < 0)
                    continue;
                var end = i + 1;
                Relax(end, start, id, scores[id] + scoreHere);
                hasSingleCharacter |= end == codePointEnd;
            }
            if (!hasSingleCharacter)
            {
                if (unkId is not { } unk)
                    throw new InvalidDataException("The Unigram model has no unk_id, and the text has a character none of its pieces covers.");
                Relax(codePointEnd, start, unk, unkScore + scoreHere);
            }
        }

        void Relax(int end, int start, int id, double score)
        {
            if (bestStart[end] < 0 || score > bestScore[end])
            {
                bestScore[end] = score;
                bestStart[end] = start;
                bestId[end] = id;
            }
        }

        // Walk back; fuse runs of unk into one string.
        var segments = new List<(int Start, int End, bool IsUnk)>();
        for (var end = n; end > 0; end = bestStart[end])
        {
            var isUnk = bestId[end] == unkId;
            if (isUnk && segments.Count > 0 && segments[^1].IsUnk)
                segments[^1] = (bestStart[end], segments[^1].End, true);
            else
                segments.Add((bestStart[end], end, isUnk));
        }
        segments.Reverse();

        var result = new List<int>(segments.Count);
        foreach (var (start, end, _) in segments)
        {
            var piece = text[start..end];
            if (ids.TryGetValue(piece, out var id))
                result.Add(id);
            else if (!byteFallback || !TryAddBytes(piece, result))
                result.Add(unkId ?? throw new InvalidDataException("The Unigram model has no unk_id."));
        }
        return [.. result];
    }

    private bool TryAddBytes(string piece, List<int> result)
    {
        var start = result.Count;
        foreach (var b in Encoding.UTF8.GetBytes(piece))
        {
            if (!ids.TryGetValue(BytePiece(b), out var id))
            {
                result.RemoveRange(start, result.Count - start);
                return false;
            }
            result.Add(id);
        }
        return true;
    }

    private static int NextCodePoint(string text, int index) =>
        char.IsHighSurrogate(text[index]) && index + 1 < text.Length && char.IsLowSurrogate(text[index + 1]) ? index + 2 : index + 1;

    private void AddToTrie(string piece, int id)
    {
        var node = 0;
        foreach (var c in piece)
        {
            var key = ((long)node << 16) | c;
            if (!edges.TryGetValue(key, out var child))
            {
                child = pieceAtNode.Count;
                pieceAtNode.Add(-1);
                edges[key] = child;
            }
            node = child;
        }
        if (piece.Length > 0)
            pieceAtNode[node] = id; // a repeated piece: the last id, as the id map has it
    }
}
