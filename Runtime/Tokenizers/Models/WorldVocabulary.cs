using System.Globalization;
using System.Text;

namespace Recur.Runtime.Tokenizers;

/// <summary>
/// Reads an RWKV World vocabulary (rwkv_vocab_v20230424.txt): one entry a line, <c>ID LITERAL BYTE_LENGTH</c>, the
/// literal a Python str ('...' or "...", its UTF-8 is the token) or bytes (b'...') literal. Malformed lines raise
/// <see cref="InvalidDataException"/> naming the file, the line and what was expected versus found.
/// </summary>
internal static class WorldVocabulary
{
    /// <summary>The file name BlinkDL's models and fla's conversions ship.</summary>
    public const string FileName = Recur.Package.PackageManifest.WorldVocabularyFile;

    public static List<(int Id, byte[] Bytes)> Read(string path)
    {
        var entries = new List<(int, byte[])>(65536);
        string content;
        try { content = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(File.ReadAllBytes(path)); }
        catch (DecoderFallbackException e) { throw new InvalidDataException($"{path}: not UTF-8 text ({e.Message})"); }
        int lineNumber = 0;
        foreach (var raw in content.Split('\n'))
        {
            lineNumber++;
            string line = raw.TrimEnd('\r');
            if (line.Length == 0) continue;
            string Where() => $"{path}:{lineNumber}";
            int first = line.IndexOf(' '), last = line.LastIndexOf(' ');
            if (first <= 0 || last <= first)
                throw new InvalidDataException($"{Where()}: expected 'ID LITERAL LENGTH', found '{Clip(line)}'");
            if (!int.TryParse(line.AsSpan(0, first), NumberStyles.None, CultureInfo.InvariantCulture, out int id))
                throw new InvalidDataException($"{Where()}: expected a token id, found '{Clip(line[..first])}'");
            if (!int.TryParse(line.AsSpan(last + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int length))
                throw new InvalidDataException($"{Where()}: expected a byte length at the end, found '{Clip(line[(last + 1)..])}'");
            byte[] bytes;
            try { bytes = PythonLiteral.Parse(line[(first + 1)..last]); }
            catch (FormatException e) { throw new InvalidDataException($"{Where()}: {e.Message}"); }
            if (bytes.Length != length)
                throw new InvalidDataException($"{Where()}: the literal is {bytes.Length} bytes but the line says {length}");
            entries.Add((id, bytes));
        }
        return entries;
    }

    private static string Clip(string s) => s.Length <= 60 ? s : s[..60] + "...";
}

/// <summary>
/// One Python string or bytes literal as the bytes the RWKV vocabulary means: a str literal's UTF-8, a bytes literal's
/// bytes. Quotes ' and "; escapes \\ \' \" \n \r \t \a \b \f \v, octal \ooo, \xhh, and in str literals \uXXXX and
/// \UXXXXXXXX; an unknown escape keeps its backslash, as Python does. Surrounding spaces are allowed.
/// </summary>
internal static class PythonLiteral
{
    public static byte[] Parse(string text)
    {
        var s = text.AsSpan().Trim(' ');
        bool isBytes = false;
        if (s.Length > 0 && s[0] is 'b' or 'B')
        {
            isBytes = true;
            s = s[1..];
        }
        if (s.Length < 2 || s[0] is not ('\'' or '"') || s[^1] != s[0])
            throw new FormatException($"expected a quoted Python literal ('...', \"...\" or b'...'), found {text.Trim()}");
        char quote = s[0];
        var body = s[1..^1];
        var output = new List<byte>(body.Length);
        var utf8 = new byte[4];
        void AddCodePoint(int cp)
        {
            if (isBytes)
            {
                if (cp > 0xFF) throw new FormatException($"bytes literal holds the non-byte character U+{cp:X4}");
                output.Add((byte)cp);
                return;
            }
            if (cp is >= 0xD800 and < 0xE000 or < 0 or > 0x10FFFF) throw new FormatException($"code point U+{cp:X4} cannot be UTF-8 encoded");
            int n = new Rune(cp).EncodeToUtf8(utf8);
            for (int k = 0; k < n; k++) output.Add(utf8[k]);
        }
        for (int i = 0; i < body.Length; i++)
        {
            char c = body[i];
            if (c == quote) throw new FormatException($"unescaped {quote} inside the literal {text.Trim()}");
            if (c != '\\')
            {
                if (char.IsHighSurrogate(c) && i + 1 < body.Length && char.IsLowSurrogate(body[i + 1]))
                {
                    AddCodePoint(char.ConvertToUtf32(c, body[++i]));
                    continue;
                }
                if (isBytes && c > 0x7F) throw new FormatException($"bytes literal holds the non-ASCII character U+{(int)c:X4}");
                AddCodePoint(c);
                continue;
            }
            if (++i >= body.Length) throw new FormatException($"the literal {text.Trim()} ends in a lone backslash");
            char e = body[i];
            switch (e)
            {
                case '\\': case '\'': case '"': AddCodePoint(e); break;
                case 'n': AddCodePoint('\n'); break;
                case 'r': AddCodePoint('\r'); break;
                case 't': AddCodePoint('\t'); break;
                case 'a': AddCodePoint(7); break;
                case 'b': AddCodePoint(8); break;
                case 'f': AddCodePoint(12); break;
                case 'v': AddCodePoint(11); break;
                case 'x': AddCodePoint(Hex(body, ref i, 2, text)); break;
                case 'u' when !isBytes: AddCodePoint(Hex(body, ref i, 4, text)); break;
                case 'U' when !isBytes: AddCodePoint(Hex(body, ref i, 8, text)); break;
                case >= '0' and <= '7':
                    int value = e - '0', digits = 1;
                    while (digits < 3 && i + 1 < body.Length && body[i + 1] is >= '0' and <= '7')
                    {
                        value = value * 8 + (body[++i] - '0');
                        digits++;
                    }
                    AddCodePoint(value);
                    break;
                default:
                    // Python keeps an unrecognised escape as written (it warns, and \N{...} is not used by the vocabulary).
                    if (e == 'N' && !isBytes) throw new FormatException($"named escapes (\\N{{...}}) are not supported: {text.Trim()}");
                    AddCodePoint('\\');
                    i--;
                    break;
            }
        }
        return [.. output];
    }

    /// <summary>The <paramref name="count"/> hex digits after body[i]; i is left on the last digit.</summary>
    private static int Hex(ReadOnlySpan<char> body, ref int i, int count, string text)
    {
        if (i + count >= body.Length)
            throw new FormatException($"truncated \\{body[i]} escape in {text.Trim()}: expected {count} hex digits");
        var digits = body.Slice(i + 1, count);
        if (!int.TryParse(digits, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int value) || digits.ContainsAny(" +-"))
            throw new FormatException($"expected {count} hex digits after \\{body[i]} in {text.Trim()}, found '{digits}'");
        i += count;
        return value;
    }
}
