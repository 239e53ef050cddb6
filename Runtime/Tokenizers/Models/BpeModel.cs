using System.Collections.Concurrent;
using System.Text;

namespace Recur.Runtime.Tokenizers;

/// <summary>Options of a BPE model besides its vocabulary and merges.</summary>
internal sealed record BpeOptions(
    string? UnkToken = null,
    string? ContinuingSubwordPrefix = null,
    string? EndOfWordSuffix = null,
    bool FuseUnk = false,
    bool ByteFallback = false,
    bool IgnoreMerges = false);

/// <summary>
/// Byte-pair encoding as Hugging Face runs it: a word starts as one symbol per character (with
/// the continuing-subword prefix on all but the first and the end-of-word suffix on the last);
/// a character missing from the vocabulary becomes its UTF-8 bytes as "&lt;0xXX&gt;" tokens with
/// byte_fallback, else the unk token (consecutive ones fused with fuse_unk), else nothing. Then the
/// adjacent pair with the lowest merge rank is merged, leftmost first, until no pair has a rank.
/// Byte-level vocabularies (GPT-2, GPT-NeoX) need nothing special here: their pre-tokenizer has
/// already written the text in the byte-level alphabet.
/// </summary>
internal sealed class BpeModel : TokenizerModel
{
    private const int CacheCapacity = 10_000;
    private const int MaxCachedWordLength = 256;

    private readonly Dictionary<string, int> vocabulary;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> spanLookup;
    private readonly string?[] tokens;
    private readonly MergeTable merges;
    private readonly BpeOptions options;
    private readonly int? unkId;
    private readonly bool unkMissing;
    private readonly ConcurrentDictionary<string, int[]> cache = new(StringComparer.Ordinal);
    private int cachedWords;

    [ThreadStatic]
    private static MergeScratch? mergeScratch;

    public BpeModel(Dictionary<string, int> vocabulary, MergeTable merges, BpeOptions options)
    {
        this.vocabulary = vocabulary;
        spanLookup = vocabulary.GetAlternateLookup<ReadOnlySpan<char>>();
        tokens = ReverseVocabulary(vocabulary);
        this.merges = merges;
        this.options = options;
        unkId = options.UnkToken is { } unk && vocabulary.TryGetValue(unk, out var id) ? id : null;
        unkMissing = options.UnkToken is not null && unkId is null;
    }

    public override int IdLimit => tokens.Length;

    public override int? TokenToId(string token) => vocabulary.TryGetValue(token, out var id) ? id : null;

    public override string? IdToToken(int id) => (uint)id < (uint)tokens.Length ? tokens[id] : null;

    public override void Tokenize(string word, List<int> ids)
    {
        if (options.IgnoreMerges && vocabulary.TryGetValue(word, out var whole))
        {
            ids.Add(whole);
            return;
        }
        if (cache.TryGetValue(word, out var cached))
        {
            ids.AddRange(cached);
            return;
        }
        var result = Merge(word);
        // ConcurrentDictionary.Count takes every lock, so the size is counted here.
        if (word.Length < MaxCachedWordLength && Volatile.Read(ref cachedWords) < CacheCapacity && cache.TryAdd(word, result))
            Interlocked.Increment(ref cachedWords);
        ids.AddRange(result);
    }

    private int[] Merge(string word)
    {
        var scratch = mergeScratch ??= new MergeScratch();
        var symbols = scratch.Symbols;
        symbols.Clear();
        InitialSymbols(word, symbols);
        var count = symbols.Count;
        if (count < 2)
            return [.. symbols];

        scratch.Reset(count);
        var id = scratch.Ids;
        var previous = scratch.Previous;
        var next = scratch.Next;
        symbols.CopyTo(id);
        for (var i = 0; i < count; i++)
        {
            previous[i] = i - 1;
            next[i] = i + 1 < count ? i + 1 : -1;
        }

        // Lowest rank first, then leftmost; an entry is stale once its pair has changed.
        var queue = scratch.Queue;
        for (var i = 0; i + 1 < count; i++)
            Enqueue(queue, i, id[i], id[i + 1]);

        while (queue.TryDequeue(out var position, out var newId))
        {
            var right = next[position];
            if (id[position] < 0 || right < 0
                || !merges.TryGet(id[position], id[right], out _, out var currentId) || currentId != newId)
                continue;

            id[position] = newId;
            id[right] = -1; // removed
            next[position] = next[right];
            if (next[right] >= 0)
                previous[next[right]] = position;

            if (previous[position] >= 0)
                Enqueue(queue, previous[position], id[previous[position]], newId);
            if (next[position] >= 0)
                Enqueue(queue, position, newId, id[next[position]]);
        }

        var length = 0;
        for (var i = 0; i >= 0; i = next[i])
            length++;
        var result = new int[length];
        length = 0;
        for (var i = 0; i >= 0; i = next[i])
            result[length++] = id[i];
        return result;
    }

    private void Enqueue(MergeQueue queue, int position, int left, int right)
    {
        if (merges.TryGet(left, right, out var rank, out var newId))
            queue.Enqueue(((long)rank << 32) | (uint)position, newId);
    }

    private void InitialSymbols(string word, List<int> symbols)
    {
        int? pendingUnk = null; // an unk waiting to be written, fused with the next ones if asked
        var scratch = new StringBuilder();
        var index = 0;
        foreach (var rune in word.EnumerateRunes())
        {
            var length = rune.Utf16SequenceLength;
            var isFirst = index == 0;
            index += length;
            var isLast = index == word.Length;

            int id;
            string? symbol = null;
            if ((isFirst || options.ContinuingSubwordPrefix is null) && (!isLast || options.EndOfWordSuffix is null))
            {
                if (!spanLookup.TryGetValue(word.AsSpan(index - length, length), out id))
                    id = -1;
            }
            else
            {
                scratch.Clear();
                if (!isFirst)
                    scratch.Append(options.ContinuingSubwordPrefix);
                scratch.Append(word, index - length, length);
                if (isLast)
                    scratch.Append(options.EndOfWordSuffix);
                symbol = scratch.ToString();
                id = vocabulary.GetValueOrDefault(symbol, -1);
            }

            if (id >= 0)
            {
                if (pendingUnk is { } unk)
                    symbols.Add(unk);
                pendingUnk = null;
                symbols.Add(id);
                continue;
            }
            if (options.ByteFallback && TryAddBytes(symbol ?? word.Substring(index - length, length), symbols))
                continue;
            if (unkMissing)
                throw new InvalidDataException($"The BPE model's unk_token '{options.UnkToken}' is not in its vocabulary, and '{rune}' needs it.");
            if (unkId is { } unkTokenId)
            {
                if (pendingUnk is not null && !options.FuseUnk)
                    symbols.Add(pendingUnk.Value);
                pendingUnk = unkTokenId;
            }
        }
        if (pendingUnk is { } last)
            symbols.Add(last);
    }

    // Every UTF-8 byte of the symbol as a <0xXX> token, or nothing when one is missing.
    private bool TryAddBytes(string symbol, List<int> symbols)
    {
        var bytes = Encoding.UTF8.GetBytes(symbol);
        var start = symbols.Count;
        foreach (var b in bytes)
        {
            if (!vocabulary.TryGetValue(BytePiece(b), out var id))
            {
                symbols.RemoveRange(start, symbols.Count - start);
                return false;
            }
            symbols.Add(id);
        }
        return true;
    }

    /// <summary>Per-thread buffers for <see cref="Merge"/>, grown as needed and reused.</summary>
    private sealed class MergeScratch
    {
        public List<int> Symbols { get; } = [];

        public int[] Ids { get; private set; } = new int[64];

        public int[] Previous { get; private set; } = new int[64];

        public int[] Next { get; private set; } = new int[64];

        public MergeQueue Queue { get; } = new();

        public void Reset(int count)
        {
            if (Ids.Length < count)
            {
                var size = Math.Max(count, Ids.Length * 2);
                Ids = new int[size];
                Previous = new int[size];
                Next = new int[size];
            }
            Queue.Clear();
        }
    }

    /// <summary>A binary min-heap of (priority, merged id); priority is rank &lt;&lt; 32 | position.</summary>
    private sealed class MergeQueue
    {
        private long[] priorities = new long[64];
        private int[] values = new int[64];
        private int count;

        public void Clear() => count = 0;

        public void Enqueue(long priority, int value)
        {
            if (count == priorities.Length)
            {
                Array.Resize(ref priorities, count * 2);
                Array.Resize(ref values, count * 2);
            }
            var i = count++;
            while (i > 0)
            {
                var parent = (i - 1) >> 1;
                if (priorities[parent] <= priority)
                    break;
                priorities[i] = priorities[parent];
                values[i] = values[parent];
                i = parent;
            }
            priorities[i] = priority;
            values[i] = value;
        }

        /// <summary>Removes the smallest entry; position is its priority's low 32 bits.</summary>
        public bool TryDequeue(out int position, out int value)
        {
            if (count == 0)
            {
                position = value = 0;
                return false;
            }
            position = (int)priorities[0];
            value = values[0];
            var lastPriority = priorities[--count];
            var lastValue = values[count];
            var i = 0;
            while (true)
            {
                var child = 2 * i + 1;
                if (child >= count)
                    break;
                if (child + 1 < count && priorities[child + 1] < priorities[child])
                    child++;
                if (priorities[child] >= lastPriority)
                    break;
                priorities[i] = priorities[child];
                values[i] = values[child];
                i = child;
            }
            priorities[i] = lastPriority;
            values[i] = lastValue;
            return true;
        }
    }
}
