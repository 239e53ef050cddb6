using System.Globalization;
using System.Text;

namespace Recur.Runtime.Tokenizers;

/// <summary>
/// A tokenizer.json "decoder": turns token strings back into text. Each step rewrites the list
/// of token strings (Hugging Face's decode_chain); the text is their concatenation at the end.
/// </summary>
internal abstract class Decoder
{
    public abstract void DecodeChain(List<string> tokens);
}

internal sealed class SequenceDecoder(IReadOnlyList<Decoder> decoders) : Decoder
{
    public override void DecodeChain(List<string> tokens)
    {
        foreach (var decoder in decoders)
            decoder.DecodeChain(tokens);
    }
}

/// <summary>
/// Byte-level: each token's characters back to bytes (a token with a character outside the
/// alphabet, such as an added token, contributes its own UTF-8), and all the bytes read as UTF-8,
/// invalid sequences becoming U+FFFD.
/// </summary>
internal sealed class ByteLevelDecoder : Decoder
{
    public override void DecodeChain(List<string> tokens)
    {
        var bytes = new List<byte>(tokens.Count * 4);
        foreach (var token in tokens)
        {
            var start = bytes.Count;
            foreach (var c in token)
            {
                var b = ByteLevelAlphabet.CharToByte(c);
                if (b < 0)
                {
                    bytes.RemoveRange(start, bytes.Count - start);
                    bytes.AddRange(Encoding.UTF8.GetBytes(token));
                    break;
                }
                bytes.Add((byte)b);
            }
        }
        tokens.Clear();
        tokens.Add(Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes)));
    }
}

/// <summary>
/// Metaspace: '▁' back to spaces; in the first token the replacement character is dropped
/// instead, since the pre-tokenizer put it there (unless prepend_scheme is "never").
/// </summary>
internal sealed class MetaspaceDecoder(char replacement, PrependScheme scheme) : Decoder
{
    public override void DecodeChain(List<string> tokens)
    {
        for (var i = 0; i < tokens.Count; i++)
        {
            tokens[i] = i == 0 && scheme != PrependScheme.Never
                ? tokens[i].Replace(replacement.ToString(), string.Empty, StringComparison.Ordinal)
                : tokens[i].Replace(replacement, ' ');
        }
    }
}

/// <summary>Replaces a literal or regex pattern in every token.</summary>
internal sealed class ReplaceDecoder(OnigRegex pattern, string content) : Decoder
{
    public override void DecodeChain(List<string> tokens)
    {
        for (var i = 0; i < tokens.Count; i++)
            tokens[i] = ReplaceNormalizer.Replace(pattern, content, tokens[i]);
    }
}

/// <summary>
/// Byte fallback: runs of "&lt;0xXX&gt;" tokens become the text of their bytes; a run that is not
/// valid UTF-8 becomes one U+FFFD per byte.
/// </summary>
internal sealed class ByteFallbackDecoder : Decoder
{
    public override void DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        var pending = new List<byte>();
        foreach (var token in tokens)
        {
            if (TryParseByte(token, out var value))
            {
                pending.Add(value);
                continue;
            }
            Flush(pending, result);
            result.Add(token);
        }
        Flush(pending, result);
        tokens.Clear();
        tokens.AddRange(result);
    }

    public static bool TryParseByte(string token, out byte value)
    {
        value = 0;
        return token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
            && byte.TryParse(token.AsSpan(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
    }

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    private static void Flush(List<byte> pending, List<string> result)
    {
        if (pending.Count == 0)
            return;
        try
        {
            result.Add(StrictUtf8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(pending)));
        }
        catch (DecoderFallbackException)
        {
            for (var i = 0; i < pending.Count; i++)
                result.Add("\uFFFD");
        }
        pending.Clear();
    }
}

/// <summary>Joins all tokens into one.</summary>
internal sealed class FuseDecoder : Decoder
{
    public override void DecodeChain(List<string> tokens)
    {
        var fused = string.Concat(tokens);
        tokens.Clear();
        tokens.Add(fused);
    }
}

/// <summary>Removes up to <c>start</c> leading and <c>stop</c> trailing copies of a character from each token.</summary>
internal sealed class StripDecoder(char content, int start, int stop) : Decoder
{
    public override void DecodeChain(List<string> tokens)
    {
        for (var i = 0; i < tokens.Count; i++)
        {
            var token = tokens[i];
            var from = 0;
            while (from < start && from < token.Length && token[from] == content)
                from++;
            var to = token.Length;
            while (token.Length - to < stop && to > from && token[to - 1] == content)
                to--;
            tokens[i] = token[from..to];
        }
    }
}

/// <summary>WordPiece: "##" continues a word, anything else starts a new one after a space.</summary>
internal sealed class WordPieceDecoder(string prefix, bool cleanup) : Decoder
{
    public override void DecodeChain(List<string> tokens)
    {
        for (var i = 0; i < tokens.Count; i++)
        {
            var token = tokens[i];
            if (i != 0)
                token = prefix.Length > 0 && token.StartsWith(prefix, StringComparison.Ordinal) ? token[prefix.Length..] : " " + token;
            tokens[i] = cleanup ? CleanUp(token) : token;
        }
    }

    // Hugging Face's cleanup, in its order: no space before punctuation and some contractions.
    public static string CleanUp(string text) => text.Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!")
        .Replace(" ,", ",").Replace(" ' ", "'").Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" do not", " don't")
        .Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");
}

/// <summary>Classic BPE's end-of-word suffix (e.g. "&lt;/w&gt;") becomes a space, except at the end.</summary>
internal sealed class BpeSuffixDecoder(string suffix) : Decoder
{
    public override void DecodeChain(List<string> tokens)
    {
        for (var i = 0; i < tokens.Count; i++)
            tokens[i] = tokens[i].Replace(suffix, i == tokens.Count - 1 ? string.Empty : " ", StringComparison.Ordinal);
    }
}
