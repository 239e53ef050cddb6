using System.Buffers;
using System.Globalization;
using System.Text;

namespace Recur.Runtime.Tokenizers;

/// <summary>
/// The character predicates Hugging Face tokenizers uses, written over .NET's Unicode tables.
/// Each says which Rust function or regex class it stands for, because they differ from .NET's
/// nearest equivalent (char.IsPunctuation, regex \w) in ways that change token boundaries.
/// </summary>
internal static class CharClasses
{
    /// <summary>Rust's char::is_whitespace (the White_Space property); .NET's covers the same set.</summary>
    public static bool IsWhiteSpace(Rune rune) => Rune.IsWhiteSpace(rune);

    /// <summary>Rust's char::is_numeric: general categories Nd, Nl and No.</summary>
    public static bool IsNumeric(Rune rune) => Rune.GetUnicodeCategory(rune) is
        UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;

    /// <summary>
    /// Hugging Face's is_punc: ASCII punctuation (which includes symbols such as $ + &lt; = &gt; ^ ` |)
    /// or any Unicode punctuation category.
    /// </summary>
    public static bool IsPunctuation(Rune rune)
    {
        if (rune.Value < 0x80)
            return rune.Value is (>= '!' and <= '/') or (>= ':' and <= '@') or (>= '[' and <= '`') or (>= '{' and <= '~');
        return Rune.GetUnicodeCategory(rune) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
    }

    /// <summary>
    /// The Rust regex crate's \w, which Hugging Face uses for an added token's single_word check:
    /// Alphabetic, marks, decimal digits, connector punctuation and the join controls.
    /// </summary>
    public static bool IsRegexWordCharacter(Rune rune)
    {
        switch (Rune.GetUnicodeCategory(rune))
        {
            case UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter or UnicodeCategory.LetterNumber
                or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark
                or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.ConnectorPunctuation:
                return true;
            default:
                // Join_Control, and the symbols that are Other_Alphabetic (circled and squared letters).
                return rune.Value is 0x200C or 0x200D or (>= 0x24B6 and <= 0x24E9)
                    or (>= 0x1F130 and <= 0x1F149) or (>= 0x1F150 and <= 0x1F169) or (>= 0x1F170 and <= 0x1F189);
        }
    }

    /// <summary>Whether a string starts with a <see cref="IsRegexWordCharacter"/>.</summary>
    public static bool StartsWithWordCharacter(ReadOnlySpan<char> text) =>
        !text.IsEmpty && Rune.DecodeFromUtf16(text, out var rune, out _) == OperationStatus.Done && IsRegexWordCharacter(rune);

    /// <summary>Whether a string ends with a <see cref="IsRegexWordCharacter"/>.</summary>
    public static bool EndsWithWordCharacter(ReadOnlySpan<char> text) =>
        !text.IsEmpty && Rune.DecodeLastFromUtf16(text, out var rune, out _) == OperationStatus.Done && IsRegexWordCharacter(rune);
}
