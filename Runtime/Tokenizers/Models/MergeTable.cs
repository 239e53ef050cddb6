using System.Numerics;

namespace Recur.Runtime.Tokenizers;

/// <summary>
/// BPE merges: (left id, right id) to (rank, merged id), in one open-addressing array. A merge
/// loop does several lookups per merge over tables of up to ~600k pairs (Gemma), where
/// Dictionary's two-array layout costs a second cache miss per lookup.
/// </summary>
internal sealed class MergeTable
{
    private const long Empty = -1;   // keys are (left << 32 | right) with non-negative ids

    private readonly long[] slots;   // key at 2i, (rank << 32 | merged id) at 2i + 1
    private readonly int shift;

    public MergeTable(int capacity)
    {
        var size = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(capacity * 2, 16));
        shift = 64 - BitOperations.Log2((uint)size);
        slots = new long[size * 2];
        for (var i = 0; i < slots.Length; i += 2)
            slots[i] = Empty;
    }

    public int Count { get; private set; }

    public static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>Adds or replaces a merge (a later duplicate wins, as in Hugging Face).</summary>
    public void Set(int left, int right, int rank, int mergedId)
    {
        var key = Key(left, right);
        var mask = slots.Length / 2 - 1;
        for (var i = Slot(key); ; i = (i + 1) & mask)
        {
            if (slots[2 * i] == Empty)
                Count++;
            else if (slots[2 * i] != key)
                continue;
            slots[2 * i] = key;
            slots[2 * i + 1] = ((long)rank << 32) | (uint)mergedId;
            return;
        }
    }

    public bool TryGet(int left, int right, out int rank, out int mergedId)
    {
        var key = Key(left, right);
        var mask = slots.Length / 2 - 1;
        for (var i = Slot(key); ; i = (i + 1) & mask)
        {
            var found = slots[2 * i];
            if (found == key)
            {
                var value = slots[2 * i + 1];
                rank = (int)(value >> 32);
                mergedId = (int)value;
                return true;
            }
            if (found == Empty)
            {
                rank = mergedId = 0;
                return false;
            }
        }
    }

    private int Slot(long key) => (int)((ulong)(key * unchecked((long)0x9E3779B97F4A7C15)) >> shift);
}
