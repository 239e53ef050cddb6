using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Recur.Runtime.Tokenizers;

/// <summary>
/// A regex from a tokenizer.json, written for Oniguruma (what Hugging Face tokenizers compiles
/// them with), run by .NET's engine. Two differences are bridged:
/// <list type="bullet">
/// <item>Syntax and classes: Oniguruma's \w is letters, marks, numbers and connector punctuation
/// (.NET's lacks spacing marks and most numbers), ^ and $ are line anchors, and (?m) means what
/// .NET calls (?s). Constructs .NET cannot express raise <see cref="NotSupportedException"/>.</item>
/// <item>Code points: .NET matches UTF-16 code units, so \p{L} never matches a letter outside the
/// BMP. Text with surrogate pairs is matched through a stand-in string where each pair is one
/// BMP character of the same general category, and the match bounds are mapped back.</item>
/// </list>
/// </summary>
internal sealed class OnigRegex
{
    private const string Word = @"\p{L}\p{M}\p{N}\p{Pc}";
    private const string HexDigit = "0-9a-fA-F";

    /// <summary>How long one match may take in the backtracking engine before the pattern is given up on.</summary>
    public static readonly TimeSpan MatchTimeout = TimeSpan.FromSeconds(2);

    private readonly Regex regex;
    private readonly string description; // what the pattern is and where it comes from, for errors

    private OnigRegex(Regex regex, string pattern, bool isLiteral = false, string? description = null)
    {
        this.regex = regex;
        Pattern = pattern;
        IsLiteral = isLiteral;
        this.description = description ?? $"pattern \"{pattern}\"";
    }

    public string Pattern { get; }

    /// <summary>Whether <see cref="Pattern"/> is plain text (a {"String": ...} pattern).</summary>
    public bool IsLiteral { get; }

    /// <summary>Compiles <paramref name="pattern"/>; <paramref name="component"/> names the
    /// owner (e.g. "pre_tokenizer Split") and <paramref name="source"/> where it comes from (file and
    /// JSON path) in the errors: NotSupportedException when .NET cannot run it, InvalidDataException
    /// when a match exceeds <see cref="MatchTimeout"/>.</summary>
    /// <remarks>Patterns come from files, so a match must not run forever: the non-backtracking engine
    /// (linear in the text) runs every pattern it can express, which excludes look-arounds,
    /// backreferences and atomic groups; the others run with a match timeout.</remarks>
    public static OnigRegex Create(string pattern, string component, string? source = null)
    {
        var description = $"{component} regex pattern \"{pattern}\"{(source is null ? "" : $" ({source})")}";
        try
        {
            var translated = Translate(pattern);
            const RegexOptions options = RegexOptions.CultureInvariant | RegexOptions.Multiline;
            Regex regex;
            try
            {
                regex = new Regex(translated, options | RegexOptions.NonBacktracking);
            }
            catch (NotSupportedException)
            {
                regex = new Regex(translated, options | RegexOptions.Compiled, MatchTimeout);
            }
            return new OnigRegex(regex, pattern, description: description);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException)
        {
            throw new NotSupportedException($"{description} is not supported: .NET cannot run it as written ({e.Message})", e);
        }
    }

    /// <summary>A regex for a literal string, as tokenizer.json's {"String": ...} patterns mean.</summary>
    public static OnigRegex Literal(string text) =>
        new(new Regex(Regex.Escape(text), RegexOptions.CultureInvariant), text, isLiteral: true);

    /// <summary>Appends every match of the pattern in <paramref name="text"/> as (start, length).</summary>
    public void FindAll(string text, List<(int Start, int Length)> matches)
    {
        try
        {
            FindAllUnguarded(text, matches);
        }
        catch (RegexMatchTimeoutException)
        {
            throw new InvalidDataException(
                $"The {description} took more than {MatchTimeout.TotalSeconds:0} s on a text of {text.Length} characters: it backtracks without end on such text.");
        }
    }

    private void FindAllUnguarded(string text, List<(int Start, int Length)> matches)
    {
        if (!HasSurrogate(text))
        {
            foreach (var match in regex.EnumerateMatches(text))
                matches.Add((match.Index, match.Length));
            return;
        }

        // Stand-in text: one char per code point; originalIndex maps stand-in positions back.
        var standIn = new char[text.Length];
        var originalIndex = new int[text.Length + 1];
        var length = 0;
        for (var i = 0; i < text.Length; i++)
        {
            originalIndex[length] = i;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                var category = CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1]));
                standIn[length++] = StandIn(category);
                i++;
            }
            else
            {
                standIn[length++] = text[i];
            }
        }
        originalIndex[length] = text.Length;
        foreach (var match in regex.EnumerateMatches(standIn.AsSpan(0, length)))
        {
            var start = originalIndex[match.Index];
            matches.Add((start, originalIndex[match.Index + match.Length] - start));
        }
    }

    private static bool HasSurrogate(string text) => text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') >= 0;

    // BMP characters of each general category, chosen to be unlikely as literals in a pattern.
    internal static char StandIn(UnicodeCategory category) => category switch
    {
        UnicodeCategory.UppercaseLetter => '\uA732',
        UnicodeCategory.LowercaseLetter => '\uA733',
        UnicodeCategory.TitlecaseLetter => '\u01C5',
        UnicodeCategory.ModifierLetter => '\uA67F',
        UnicodeCategory.OtherLetter => '\uA000',
        UnicodeCategory.NonSpacingMark => '\u1DC0',
        UnicodeCategory.SpacingCombiningMark => '\u0903',
        UnicodeCategory.EnclosingMark => '\u20DD',
        UnicodeCategory.DecimalDigitNumber => '\uA620',
        UnicodeCategory.LetterNumber => '\u2160',
        UnicodeCategory.OtherNumber => '\u2460',
        UnicodeCategory.ConnectorPunctuation => '\uFE4F',
        UnicodeCategory.DashPunctuation => '\u2E3A',
        UnicodeCategory.OpenPunctuation => '\uFF5F',
        UnicodeCategory.ClosePunctuation => '\uFF60',
        UnicodeCategory.InitialQuotePunctuation => '\u2E0C',
        UnicodeCategory.FinalQuotePunctuation => '\u2E0D',
        UnicodeCategory.OtherPunctuation => '\uA8CE',
        UnicodeCategory.MathSymbol => '\u2A00',
        UnicodeCategory.CurrencySymbol => '\u20A0',
        UnicodeCategory.ModifierSymbol => '\uA720',
        UnicodeCategory.OtherSymbol => '\u26C0',
        UnicodeCategory.Format => '\u2060',
        UnicodeCategory.PrivateUse => '\uE000',
        _ => '\u0378', // unassigned
    };

    /// <summary>Rewrites Oniguruma-only syntax into .NET syntax with the same meaning.</summary>
    internal static string Translate(string pattern)
    {
        var output = new StringBuilder(pattern.Length + 32);
        var inClass = false;
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            if (c == '\\' && i + 1 < pattern.Length)
            {
                var next = pattern[++i];
                switch (next)
                {
                    case 'w':
                        output.Append(inClass ? Word : $"[{Word}]");
                        break;
                    case 'W' when !inClass:
                        output.Append($"[^{Word}]");
                        break;
                    case 'h':
                        output.Append(inClass ? HexDigit : $"[{HexDigit}]");
                        break;
                    case 'H' when !inClass:
                        output.Append($"[^{HexDigit}]");
                        break;
                    case 'W' or 'H':
                        throw new NotSupportedException($"\\{next} inside a character class");
                    case 'x' when i + 1 < pattern.Length && pattern[i + 1] == '{':
                        var close = pattern.IndexOf('}', i);
                        if (close < 0)
                            throw new NotSupportedException("an unterminated \\x{...} escape");
                        var codePoint = int.Parse(pattern.AsSpan(i + 2, close - i - 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                        if (codePoint > 0xFFFF && inClass)
                            throw new NotSupportedException("a code point above U+FFFF inside a character class");
                        foreach (var unit in char.ConvertFromUtf32(codePoint))
                            output.Append(CultureInfo.InvariantCulture, $"\\u{(int)unit:X4}");
                        i = close;
                        break;
                    default:
                        output.Append('\\').Append(next);
                        break;
                }
                continue;
            }
            if (inClass)
            {
                if (c == '[')
                    throw new NotSupportedException("a nested character class");
                if (c == ']' && !IsClassStart(pattern, i))
                    inClass = false;
                output.Append(c);
                continue;
            }
            if (c == '[')
                inClass = true;
            else if (c == '(' && i + 2 < pattern.Length && pattern[i + 1] == '?' && IsModifierGroup(pattern, i + 2))
            {
                // Oniguruma's (?m) is .NET's (?s): dot matches newline.
                var end = i + 2;
                while (end < pattern.Length && pattern[end] is not (':' or ')'))
                    end++;
                output.Append("(?").Append(pattern.AsSpan(i + 2, end - i - 2).ToString().Replace('m', 's'));
                i = end - 1;
                continue;
            }
            output.Append(c);
        }
        return output.ToString();
    }

    // ']' right after '[' or '[^' is a literal in both dialects.
    private static bool IsClassStart(string pattern, int index) =>
        pattern[index - 1] == '[' || (pattern[index - 1] == '^' && index >= 2 && pattern[index - 2] == '[' && !IsEscaped(pattern, index - 2));

    private static bool IsEscaped(string pattern, int index)
    {
        var backslashes = 0;
        for (var i = index - 1; i >= 0 && pattern[i] == '\\'; i--)
            backslashes++;
        return backslashes % 2 == 1;
    }

    private static bool IsModifierGroup(string pattern, int start)
    {
        var i = start;
        while (i < pattern.Length && pattern[i] is 'i' or 'm' or 'x' or '-')
            i++;
        return i > start && i < pattern.Length && pattern[i] is ':' or ')';
    }
}
