using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace Recur.Runtime.Tokenizers;

/// <summary>
/// SentencePiece's compiled normalization rules (T5 and other SentencePiece Unigram models carry
/// "nmt_nfkc": NFKC plus whitespace and control-character fixes), as a tokenizer.json
/// "Precompiled" normalizer.
/// <para>
/// The precompiled_charsmap blob is: a little-endian uint32 byte size of a darts-clone double-array
/// trie, that trie (uint32 units), then a pool of NUL-terminated UTF-8 replacement strings. A trie
/// key is the UTF-8 of the text to replace; its value is the offset of the replacement in the pool.
/// </para>
/// <para>
/// Hugging Face applies it per extended grapheme cluster: a cluster shorter than 6 UTF-8 bytes is
/// replaced whole by the replacement of its shortest matching prefix, when there is one; otherwise
/// each code point is looked up alone. Odd, but it is what T5's tokenizer.json is checked against.
/// </para>
/// </summary>
internal sealed class PrecompiledNormalizer : Normalizer
{
    private readonly uint[] units;
    private readonly byte[] pool;
    private string?[]? charMemo;   // filled lazily; racing writers store the same values
    private static readonly string NoReplacement = new('\0', 1);

    private PrecompiledNormalizer(uint[] units, byte[] pool)
    {
        this.units = units;
        this.pool = pool;
    }

    /// <summary>Parses the blob; null on a truncated or inconsistent one (the caller reports where).</summary>
    public static PrecompiledNormalizer? TryParse(byte[] blob)
    {
        if (blob.Length < 4)
            return null;
        var trieSize = BinaryPrimitives.ReadUInt32LittleEndian(blob);
        if (trieSize % 4 != 0 || trieSize == 0 || trieSize > (uint)(blob.Length - 4))
            return null;
        var units = new uint[trieSize / 4];
        for (var i = 0; i < units.Length; i++)
            units[i] = BinaryPrimitives.ReadUInt32LittleEndian(blob.AsSpan(4 + i * 4));
        var pool = blob.AsSpan(4 + (int)trieSize).ToArray();
        try
        {
            _ = new UTF8Encoding(false, true).GetCharCount(pool);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }
        return new PrecompiledNormalizer(units, pool);
    }

    public override string Normalize(string text)
    {
        StringBuilder? builder = null;
        Span<byte> utf8 = stackalloc byte[8];
        var span = text.AsSpan();
        var position = 0;
        while (position < span.Length)
        {
            var c = span[position];
            // Between two ASCII characters there is always a cluster boundary, except in CR LF.
            var clusterLength = c < 0x80 && c != '\r' && (position + 1 == span.Length || span[position + 1] < 0x80)
                ? 1
                : StringInfo.GetNextTextElementLength(span[position..]);
            if (clusterLength == 1 && !char.IsSurrogate(c))
            {
                if (TransformChar(c) is { } single)
                    (builder ??= Start(text, position)).Append(single);
                else
                    builder?.Append(c);
                position++;
                continue;
            }
            var cluster = span.Slice(position, clusterLength);
            if (Encoding.UTF8.GetByteCount(cluster) < 6)
            {
                var count = Encoding.UTF8.GetBytes(cluster, utf8);
                if (Transform(utf8[..count]) is { } whole)
                {
                    (builder ??= Start(text, position)).Append(whole);
                    position += clusterLength;
                    continue;
                }
            }
            foreach (var rune in cluster.EnumerateRunes())
            {
                var count = rune.EncodeToUtf8(utf8);
                if (Transform(utf8[..count]) is { } replacement)
                    (builder ??= Start(text, position)).Append(replacement);
                else
                    builder?.Append(rune);
                position += rune.Utf16SequenceLength;
            }
        }
        return builder?.ToString() ?? text;
    }

    // A lone BMP character is looked up once: most text is made of few distinct characters.
    private string? TransformChar(char c)
    {
        var memo = charMemo ??= new string?[char.MaxValue + 1];
        if (memo[c] is { } known)
            return ReferenceEquals(known, NoReplacement) ? null : known;
        Span<byte> utf8 = stackalloc byte[3];
        var count = Encoding.UTF8.GetBytes([c], utf8);
        var replacement = Transform(utf8[..count]);
        memo[c] = replacement ?? NoReplacement;
        return replacement;
    }

    private static StringBuilder Start(string text, int position) =>
        new StringBuilder(text.Length + 16).Append(text, 0, position);

    /// <summary>The replacement of the shortest prefix of <paramref name="key"/> that has one.</summary>
    private string? Transform(ReadOnlySpan<byte> key)
    {
        if (FirstPrefixValue(key) is not { } offset || offset >= pool.Length)
            return null;
        var end = pool.AsSpan(offset).IndexOf((byte)0);
        return Encoding.UTF8.GetString(pool, offset, end < 0 ? pool.Length - offset : end);
    }

    // Darts-clone unit layout: bits 0-7 label (bit 31 marks a leaf unit), bit 8 "has leaf",
    // bit 9 scales the offset (bits 10-31) by 256, a leaf's bits 0-30 are its value.
    private int? FirstPrefixValue(ReadOnlySpan<byte> key)
    {
        var node = Offset(units[0]);
        foreach (var c in key)
        {
            if (c == 0)
                return null;
            node ^= c;
            if (node >= (uint)units.Length)
                return null;
            var unit = units[node];
            if ((unit & 0x800000FFu) != c)
                return null;
            node ^= Offset(unit);
            if (((unit >> 8) & 1) != 0)
                return node < (uint)units.Length ? (int)(units[node] & 0x7FFFFFFFu) : null;
        }
        return null;
    }

    private static uint Offset(uint unit) => (unit >> 10) << (int)((unit & 0x200u) >> 6);
}
