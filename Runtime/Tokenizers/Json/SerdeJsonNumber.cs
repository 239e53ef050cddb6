using System.Globalization;

namespace Recur.Runtime.Tokenizers;

/// <summary>
/// A JSON number read into a double the way Hugging Face tokenizers reads it: serde_json without its
/// float_roundtrip feature. That reader is not correctly rounded, and a Unigram model's ties depend on
/// the last bit of its scores (t5-small: 8,334 of 32,100 scores land one step off the nearest double).
/// <list type="bullet">
/// <item>The digits, integer and fraction alike, accumulate into a u64 significand; the digit that
/// would overflow it and every digit after it in the same part are dropped (a dropped integer digit
/// still scales the value by ten; a dropped fraction digit does not).</item>
/// <item>The value is the significand rounded to a double, then multiplied or divided once by 10^|e|
/// from a table of the correctly rounded powers 1e0..1e308; below 1e-308 it is divided by 1e308
/// first, as often as needed.</item>
/// <item>A result that overflows to infinity, or an exponent beyond i32 with a nonzero significand and a
/// positive sign, is out of range (an error); an exponent beyond i32 otherwise gives zero.</item>
/// </list>
/// </summary>
internal static class SerdeJsonNumber
{
    private const int LargestPower = 308;

    private static readonly double[] PowersOfTen = Enumerable.Range(0, LargestPower + 1)
        .Select(k => double.Parse($"1e{k}", CultureInfo.InvariantCulture)).ToArray();

    /// <summary>The double Hugging Face reads from the JSON number <paramref name="text"/> (valid JSON
    /// number syntax), or false when it reports the number as out of range.</summary>
    public static bool TryParse(ReadOnlySpan<byte> text, out double value)
    {
        value = 0;
        var i = 0;
        var negative = i < text.Length && text[i] == '-';
        if (negative)
            i++;

        ulong significand = 0;
        var exponent = 0;
        var dropping = false;
        for (; i < text.Length && IsDigit(text[i]); i++)
        {
            if (!dropping && Fits(significand, text[i]))
                significand = significand * 10 + (uint)(text[i] - '0');
            else
                (dropping, exponent) = (true, exponent + 1);
        }
        if (i < text.Length && text[i] == '.')
        {
            dropping = false;
            for (i++; i < text.Length && IsDigit(text[i]); i++)
            {
                if (!dropping && Fits(significand, text[i]))
                    (significand, exponent) = (significand * 10 + (uint)(text[i] - '0'), exponent - 1);
                else
                    dropping = true;
            }
        }
        if (i < text.Length && text[i] is (byte)'e' or (byte)'E')
        {
            if (++i == text.Length)
                return false; // not a JSON number
            var positiveExponent = text[i] != '-';
            if (text[i] is (byte)'+' or (byte)'-')
                i++;
            var written = 0;
            for (; i < text.Length && IsDigit(text[i]); i++)
            {
                var digit = text[i] - '0';
                if (written > int.MaxValue / 10 || (written == int.MaxValue / 10 && digit > int.MaxValue % 10))
                {
                    // Beyond i32: an error towards infinity, zero towards zero.
                    if (significand != 0 && positiveExponent)
                        return false;
                    value = negative ? -0.0 : 0.0;
                    return true;
                }
                written = written * 10 + digit;
            }
            exponent = positiveExponent ? Saturate((long)exponent + written) : Saturate((long)exponent - written);
        }
        if (!TryScale(significand, exponent, out value))
            return false;
        value = negative ? -value : value;
        return true;
    }

    private static bool TryScale(ulong significand, int exponent, out double value)
    {
        value = significand; // round to nearest, as Rust's `as f64`
        while (true)
        {
            // |i32.MinValue| does not fit an i32 and, as in Rust's wrapping_abs, is never in the table.
            if (exponent != int.MinValue && Math.Abs(exponent) <= LargestPower)
            {
                if (exponent >= 0)
                {
                    value *= PowersOfTen[exponent];
                    return !double.IsInfinity(value);
                }
                value /= PowersOfTen[-exponent];
                return true;
            }
            if (value == 0)
                return true;
            if (exponent >= 0)
                return false;
            value /= PowersOfTen[LargestPower];
            exponent += LargestPower;
        }
    }

    // Whether significand * 10 + digit still fits a u64.
    private static bool Fits(ulong significand, byte digit) =>
        significand < ulong.MaxValue / 10 || (significand == ulong.MaxValue / 10 && (uint)(digit - '0') <= ulong.MaxValue % 10);

    private static bool IsDigit(byte c) => c is >= (byte)'0' and <= (byte)'9';

    private static int Saturate(long value) => (int)Math.Clamp(value, int.MinValue, int.MaxValue);
}
