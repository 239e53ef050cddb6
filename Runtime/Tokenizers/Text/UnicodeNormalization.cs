using System.IO.Compression;
using System.Text;

namespace Recur.Runtime.Tokenizers;

/// <summary>
/// Unicode normalization forms C, D, KC and KD (UAX #15), over tables generated from the
/// Unicode Character Database (UnicodeNormalizationData.cs).
/// Why not <see cref="string.Normalize(NormalizationForm)"/>: Recur builds with
/// InvariantGlobalization, where it returns non-ASCII text unchanged without any error.
/// </summary>
internal static class UnicodeNormalization
{
    // Hangul syllables compose and decompose arithmetically (Unicode chapter 3.12).
    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    private const int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    private static readonly Lazy<Tables> Data = new(Load);

    public static string Normalize(string text, NormalizationForm form)
    {
        if (IsUnchangedByQuickCheck(text, form))
            return text;

        var compatibility = form is NormalizationForm.FormKC or NormalizationForm.FormKD;
        var compose = form is NormalizationForm.FormC or NormalizationForm.FormKC;
        var tables = Data.Value;
        var codePoints = new List<int>(text.Length + 8);
        foreach (var rune in text.EnumerateRunes())
            tables.Decompose(rune.Value, compatibility, codePoints);
        tables.ReorderCanonically(codePoints);
        if (compose)
            tables.Compose(codePoints);

        var builder = new StringBuilder(codePoints.Count + 8);
        foreach (var codePoint in codePoints)
            builder.Append(new Rune(codePoint));
        return builder.ToString();
    }

    /// <summary>The canonical combining class of a code point (0 for starters).</summary>
    public static int CombiningClass(int codePoint) => Data.Value.CombiningClass(codePoint);

    // Below these bounds nothing decomposes, composes or reorders, in the given form.
    private static bool IsUnchangedByQuickCheck(string text, NormalizationForm form)
    {
        var bound = form switch
        {
            NormalizationForm.FormC => '\u0300',
            NormalizationForm.FormD => '\u00C0',
            _ => '\u00A0',
        };
        foreach (var c in text)
        {
            if (c >= bound)
                return false;
        }
        return true;
    }

    private static Tables Load()
    {
        using var deflated = new MemoryStream(Convert.FromBase64String(UnicodeNormalizationData.Deflated));
        using var inflater = new DeflateStream(deflated, CompressionMode.Decompress);
        using var raw = new MemoryStream();
        inflater.CopyTo(raw);
        var reader = new VarintReader(raw.ToArray());
        var tables = new Tables();

        var end = 0;
        for (var runs = reader.Next(); runs > 0; runs--)
        {
            var start = end + reader.Next();
            var length = reader.Next();
            var combiningClass = (byte)reader.Next();
            for (var cp = start; cp < start + length; cp++)
                tables.SetCombiningClass(cp, combiningClass);
            end = start + length;
        }

        var previous = 0;
        for (var entries = reader.Next(); entries > 0; entries--)
        {
            previous += reader.Next();
            var kind = reader.Next();
            var mapping = new int[reader.Next()];
            for (var i = 0; i < mapping.Length; i++)
                mapping[i] = reader.Next();
            (kind == 0 ? tables.Canonical : tables.Compatibility)[previous] = mapping;
        }

        previous = 0;
        for (var pairs = reader.Next(); pairs > 0; pairs--)
        {
            previous += reader.Next();
            var first = reader.Next();
            var second = reader.Next();
            tables.Compositions[PairKey(first, second)] = previous;
        }
        return tables;
    }

    private static long PairKey(int first, int second) => ((long)first << 21) | (uint)second;

    private sealed class Tables
    {
        private readonly byte[]?[] combiningClassPages = new byte[]?[0x110000 >> 8];

        public Dictionary<int, int[]> Canonical { get; } = [];

        public Dictionary<int, int[]> Compatibility { get; } = [];

        public Dictionary<long, int> Compositions { get; } = [];

        public void SetCombiningClass(int codePoint, byte value) =>
            (combiningClassPages[codePoint >> 8] ??= new byte[256])[codePoint & 0xFF] = value;

        public int CombiningClass(int codePoint) =>
            combiningClassPages[codePoint >> 8] is { } page ? page[codePoint & 0xFF] : 0;

        public void Decompose(int codePoint, bool compatibility, List<int> output)
        {
            var s = codePoint - SBase;
            if ((uint)s < SCount)
            {
                output.Add(LBase + s / NCount);
                output.Add(VBase + s % NCount / TCount);
                if (s % TCount != 0)
                    output.Add(TBase + s % TCount);
                return;
            }
            if ((compatibility && Compatibility.TryGetValue(codePoint, out var mapping))
                || Canonical.TryGetValue(codePoint, out mapping))
            {
                output.AddRange(mapping);
                return;
            }
            output.Add(codePoint);
        }

        /// <summary>Stable sort of every run of non-starters by combining class.</summary>
        public void ReorderCanonically(List<int> codePoints)
        {
            for (var i = 1; i < codePoints.Count; i++)
            {
                var current = codePoints[i];
                var currentClass = CombiningClass(current);
                if (currentClass == 0)
                    continue;
                var j = i - 1;
                while (j >= 0 && CombiningClass(codePoints[j]) > currentClass)
                {
                    codePoints[j + 1] = codePoints[j];
                    j--;
                }
                codePoints[j + 1] = current;
            }
        }

        /// <summary>The canonical composition algorithm of UAX #15, in place.</summary>
        public void Compose(List<int> codePoints)
        {
            if (codePoints.Count == 0)
                return;
            var starterIndex = 0;
            var starter = codePoints[0];
            // A leading non-starter blocks everything after it from composing with nothing.
            var lastClass = CombiningClass(starter) == 0 ? 0 : 256;
            var write = 1;
            for (var read = 1; read < codePoints.Count; read++)
            {
                var current = codePoints[read];
                var currentClass = CombiningClass(current);
                if ((lastClass < currentClass || lastClass == 0) && TryCompose(starter, current, out var composite))
                {
                    codePoints[starterIndex] = composite;
                    starter = composite;
                    continue;
                }
                if (currentClass == 0)
                {
                    starterIndex = write;
                    starter = current;
                }
                lastClass = currentClass;
                codePoints[write++] = current;
            }
            codePoints.RemoveRange(write, codePoints.Count - write);
        }

        private bool TryCompose(int first, int second, out int composite)
        {
            var l = first - LBase;
            var v = second - VBase;
            if ((uint)l < LCount && (uint)v < VCount)
            {
                composite = SBase + (l * VCount + v) * TCount;
                return true;
            }
            var s = first - SBase;
            var t = second - TBase;
            if ((uint)s < SCount && s % TCount == 0 && t > 0 && t < TCount)
            {
                composite = first + t;
                return true;
            }
            return Compositions.TryGetValue(PairKey(first, second), out composite);
        }
    }

    private ref struct VarintReader(byte[] data)
    {
        private int position;

        public int Next()
        {
            var value = 0;
            for (var shift = 0; ; shift += 7)
            {
                var b = data[position++];
                value |= (b & 0x7F) << shift;
                if (b < 0x80)
                    return value;
            }
        }
    }
}
