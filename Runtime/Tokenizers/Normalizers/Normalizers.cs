using System.Globalization;
using System.Text;

namespace Recur.Runtime.Tokenizers;

/// <summary>A tokenizer.json "normalizer": rewrites the text before it is split into words.</summary>
internal abstract class Normalizer
{
    public abstract string Normalize(string text);
}

internal sealed class SequenceNormalizer(IReadOnlyList<Normalizer> normalizers) : Normalizer
{
    public override string Normalize(string text)
    {
        foreach (var normalizer in normalizers)
            text = normalizer.Normalize(text);
        return text;
    }
}

/// <summary>NFC, NFD, NFKC or NFKD.</summary>
internal sealed class UnicodeFormNormalizer(NormalizationForm form) : Normalizer
{
    public override string Normalize(string text) => UnicodeNormalization.Normalize(text, form);
}

/// <summary>Rust's char::to_lowercase, one code point at a time (so no final-sigma rule).</summary>
internal sealed class LowercaseNormalizer : Normalizer
{
    public override string Normalize(string text)
    {
        StringBuilder? builder = null;
        var index = 0;
        foreach (var rune in text.EnumerateRunes())
        {
            var lower = Rune.ToLowerInvariant(rune);
            // U+0130 is the one code point whose lowercase is two (i + combining dot above).
            if (lower != rune || rune.Value == 0x130)
            {
                builder ??= new StringBuilder(text.Length + 4).Append(text, 0, index);
                if (rune.Value == 0x130)
                    builder.Append("i\u0307");
                else
                    builder.Append(lower);
            }
            else
            {
                builder?.Append(rune);
            }
            index += rune.Utf16SequenceLength;
        }
        return builder?.ToString() ?? text;
    }
}

/// <summary>Removes leading and/or trailing whitespace.</summary>
internal sealed class StripNormalizer(bool left, bool right) : Normalizer
{
    public override string Normalize(string text)
    {
        var span = text.AsSpan();
        while (left && !span.IsEmpty && Rune.DecodeFromUtf16(span, out var rune, out var n) == System.Buffers.OperationStatus.Done
               && CharClasses.IsWhiteSpace(rune))
            span = span[n..];
        while (right && !span.IsEmpty && Rune.DecodeLastFromUtf16(span, out var rune, out var n) == System.Buffers.OperationStatus.Done
               && CharClasses.IsWhiteSpace(rune))
            span = span[..^n];
        return span.Length == text.Length ? text : span.ToString();
    }
}

/// <summary>Removes combining marks, all three kinds (used after NFD/NFKD to drop accents).</summary>
internal sealed class StripAccentsNormalizer : Normalizer
{
    public override string Normalize(string text) => RemoveMarks(text, nonSpacingOnly: false);

    /// <param name="nonSpacingOnly">Only Mn, as BertNormalizer's accent stripping does.</param>
    public static string RemoveMarks(string text, bool nonSpacingOnly)
    {
        var builder = new StringBuilder(text.Length);
        foreach (var rune in text.EnumerateRunes())
        {
            var category = Rune.GetUnicodeCategory(rune);
            var remove = category == UnicodeCategory.NonSpacingMark
                || (!nonSpacingOnly && category is UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark);
            if (!remove)
                builder.Append(rune);
        }
        return builder.Length == text.Length ? text : builder.ToString();
    }
}

/// <summary>Replaces every match of a literal or regex pattern with fixed content.</summary>
internal sealed class ReplaceNormalizer(OnigRegex pattern, string content) : Normalizer
{
    public override string Normalize(string text) => Replace(pattern, content, text);

    public static string Replace(OnigRegex pattern, string content, string text)
    {
        if (pattern.IsLiteral && pattern.Pattern.Length > 0)
            return text.Replace(pattern.Pattern, content, StringComparison.Ordinal);
        var matches = new List<(int Start, int Length)>();
        pattern.FindAll(text, matches);
        if (matches.Count == 0)
            return text;
        var builder = new StringBuilder(text.Length + matches.Count * content.Length);
        var position = 0;
        foreach (var (start, length) in matches)
        {
            builder.Append(text, position, start - position).Append(content);
            position = start + length;
        }
        return builder.Append(text, position, text.Length - position).ToString();
    }
}

/// <summary>Puts a prefix in front of any non-empty text.</summary>
internal sealed class PrependNormalizer(string prefix) : Normalizer
{
    public override string Normalize(string text) => text.Length == 0 ? text : prefix + text;
}

/// <summary>Maps each UTF-8 byte to GPT-2's byte-level alphabet.</summary>
internal sealed class ByteLevelNormalizer : Normalizer
{
    public override string Normalize(string text) => ToByteLevel(text);

    public static string ToByteLevel(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        return string.Create(bytes.Length, bytes, static (chars, bytes) =>
        {
            for (var i = 0; i < bytes.Length; i++)
                chars[i] = ByteLevelAlphabet.ByteToChar(bytes[i]);
        });
    }
}

/// <summary>BERT's cleanup: drop controls, map whitespace to spaces, pad CJK ideographs, accents, case.</summary>
internal sealed class BertNormalizer(bool cleanText, bool handleChineseChars, bool stripAccents, bool lowercase) : Normalizer
{
    public override string Normalize(string text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (var rune in text.EnumerateRunes())
        {
            if (cleanText)
            {
                if (rune.Value is 0 or 0xFFFD || IsControl(rune))
                    continue;
                if (rune.Value is '\t' or '\n' or '\r' || CharClasses.IsWhiteSpace(rune))
                {
                    builder.Append(' ');
                    continue;
                }
            }
            if (handleChineseChars && IsChineseCharacter(rune.Value))
                builder.Append(' ').Append(rune).Append(' ');
            else
                builder.Append(rune);
        }
        var result = builder.ToString();
        if (stripAccents)
            result = StripAccentsNormalizer.RemoveMarks(UnicodeNormalization.Normalize(result, NormalizationForm.FormD), nonSpacingOnly: true);
        return lowercase ? new LowercaseNormalizer().Normalize(result) : result;
    }

    /// <summary>
    /// Hugging Face's is_control: tab, newline and return are whitespace; otherwise the unicode_categories
    /// crate's is_other, which is Cc, Cf and Co only (unassigned code points stay), with its Unicode 8.0
    /// tables, so the format characters assigned since then stay too.
    /// </summary>
    private static bool IsControl(Rune rune) => rune.Value is not ('\t' or '\n' or '\r') && Rune.GetUnicodeCategory(rune) switch
    {
        UnicodeCategory.Control or UnicodeCategory.PrivateUse => true,
        UnicodeCategory.Format => rune.Value is not (0x0890 or 0x0891 or 0x08E2 or 0x110CD or (>= 0x13430 and <= 0x1343F)),
        _ => false,
    };

    private static bool IsChineseCharacter(int cp) => cp is (>= 0x4E00 and <= 0x9FFF) or (>= 0x3400 and <= 0x4DBF)
        or (>= 0x20000 and <= 0x2A6DF) or (>= 0x2A700 and <= 0x2B73F) or (>= 0x2B740 and <= 0x2B81F)
        or (>= 0x2B920 and <= 0x2CEAF) or (>= 0xF900 and <= 0xFAFF) or (>= 0x2F800 and <= 0x2FA1F);
}

/// <summary>Hugging Face's "Nmt": drops some control characters and maps others to spaces.</summary>
internal sealed class NmtNormalizer : Normalizer
{
    public override string Normalize(string text)
    {
        var builder = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (c is (>= '\u0001' and <= '\u0008') or '\u000B' or (>= '\u000E' and <= '\u001F') or '\u007F' or '\u008F' or '\u009F')
                continue;
            builder.Append(c is '\u0009' or '\u000A' or '\u000C' or '\u000D' or '\u1680' or (>= '\u200B' and <= '\u200F')
                or '\u2028' or '\u2029' or '\u2581' or '\uFEFF' or '\uFFFD' ? ' ' : c);
        }
        return builder.ToString();
    }
}
