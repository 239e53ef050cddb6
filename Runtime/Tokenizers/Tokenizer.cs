using System.Text.Json;

namespace Recur.Runtime.Tokenizers;

/// <summary>
/// A Hugging Face tokenizer (tokenizer.json) that encodes text to token ids and decodes them back,
/// giving the ids the Hugging Face tokenizers library gives.
/// <para>
/// Encoding runs the pipeline that library runs: split off added tokens written verbatim
/// (normalized=false), normalize the rest, split off added tokens matched after normalization,
/// pre-tokenize into words, run the model (BPE, Unigram, WordPiece or WordLevel) on each word,
/// then let the post-processor add special tokens such as &lt;bos&gt;. Decoding maps ids to token
/// strings and runs the decoder.
/// </para>
/// Instances are immutable and safe to use from several threads.
/// </summary>
public sealed class Tokenizer
{
    private static readonly string[] BosNames = ["<bos>", "<s>", "<|begin_of_text|>", "<|startoftext|>", "[CLS]", "<|endoftext|>"];
    private static readonly string[] EosNames = ["<eos>", "</s>", "<|end_of_text|>", "<|endoftext|>", "<|im_end|>", "[SEP]", "<EOT>"];
    private static readonly string[] PadNames = ["<pad>", "<|padding|>", "[PAD]", "<|pad|>"];

    private readonly TokenizerParts parts;
    private readonly string file;
    private readonly Dictionary<int, AddedToken> addedById = [];
    private readonly Dictionary<string, int> addedByContent = new(StringComparer.Ordinal);
    private readonly HashSet<string> specialContents = new(StringComparer.Ordinal);
    private readonly AddedTokenMatcher rawMatcher;
    private readonly AddedTokenMatcher normalizedMatcher;

    private Tokenizer(TokenizerParts parts, SpecialTokenNames configured, string file)
    {
        this.parts = parts;
        this.file = file;
        foreach (var token in parts.AddedTokens)
        {
            addedById[token.Id] = token;
            addedByContent.TryAdd(token.Content, token.Id);
            if (token.Special)
                specialContents.Add(token.Content);
        }
        // Special tokens are matched first, then the others, in file order (as Hugging Face does).
        var ordered = parts.AddedTokens.Where(t => t.Special).Concat(parts.AddedTokens.Where(t => !t.Special)).ToArray();
        rawMatcher = new AddedTokenMatcher(ordered.Where(t => !t.Normalized).Select(t => (t.Content, t)));
        normalizedMatcher = new AddedTokenMatcher(ordered.Where(t => t.Normalized)
            .Select(t => (parts.Normalizer?.Normalize(t.Content) ?? t.Content, t)));

        VocabSize = Math.Max(parts.Model.IdLimit, parts.AddedTokens.Count == 0 ? 0 : parts.AddedTokens.Max(t => t.Id) + 1);
        BosId = FindSpecial(configured.Bos, parts.PostProcessor?.LeadingSpecialId, BosNames);
        EosId = FindSpecial(configured.Eos, parts.PostProcessor?.TrailingSpecialId, EosNames);
        PadId = FindSpecial(configured.Pad, null, PadNames);
    }

    /// <summary>The file name of the RWKV World vocabulary, which <see cref="FromFile"/> finds in a folder without tokenizer.json.</summary>
    public const string WorldVocabularyFile = WorldVocabulary.FileName;

    /// <summary>One more than the largest id the tokenizer can produce (model vocabulary and added tokens).</summary>
    public int VocabSize { get; }

    /// <summary>The beginning-of-sequence token: from tokenizer_config.json beside the file, else the
    /// token the post-processor puts first, else a conventional name (&lt;bos&gt;, &lt;s&gt;, ...).</summary>
    public int? BosId { get; }

    /// <summary>The end-of-sequence token, found like <see cref="BosId"/> (&lt;eos&gt;, &lt;/s&gt;, &lt;|endoftext|&gt;, ...).</summary>
    public int? EosId { get; }

    /// <summary>The padding token, from tokenizer_config.json or a conventional name (&lt;pad&gt;, ...).</summary>
    public int? PadId { get; }

    /// <summary>
    /// Loads a tokenizer.json, or the tokenizer.json inside the folder <paramref name="path"/>; an RWKV World
    /// vocabulary (a .txt file, or rwkv_vocab_v20230424.txt in a folder without tokenizer.json) through
    /// <see cref="FromWorldVocabulary"/>.
    /// </summary>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    /// <exception cref="InvalidDataException">The file is malformed; the message names the JSON path.</exception>
    /// <exception cref="NotSupportedException">The file uses a component or option Recur does not implement.</exception>
    public static Tokenizer FromFile(string path)
    {
        var file = Directory.Exists(path) ? Path.Combine(path, "tokenizer.json") : path;
        if (Directory.Exists(path) && !File.Exists(file) && File.Exists(Path.Combine(path, WorldVocabulary.FileName)))
            file = Path.Combine(path, WorldVocabulary.FileName);
        if (!File.Exists(file))
            throw new FileNotFoundException($"No tokenizer file at '{file}'.", file);
        if (file.EndsWith(".txt", StringComparison.OrdinalIgnoreCase))
            return FromWorldVocabulary(file);
        var parts = TokenizerJsonReader.Read(file);
        var config = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file))!, "tokenizer_config.json");
        return new Tokenizer(parts, File.Exists(config) ? SpecialTokenNames.Read(config) : default, file);
    }

    /// <summary>
    /// Loads an RWKV World vocabulary (rwkv_vocab_v20230424.txt; see <see cref="WorldModel"/>). As ChatRWKV's reference
    /// tokenizer, it has no special tokens in text: id 0 (&lt;|endoftext|&gt;) has no entry and decodes to nothing.
    /// </summary>
    /// <exception cref="InvalidDataException">A line is malformed, or a byte has no entry; the message names the line.</exception>
    public static Tokenizer FromWorldVocabulary(string path)
    {
        var model = new WorldModel(WorldVocabulary.Read(path));
        if (model.MissingByte() is int b)
            throw new InvalidDataException($"{path}: no entry for the single byte 0x{b:X2}; a World vocabulary has one for every byte");
        return new Tokenizer(new TokenizerParts(model, null, null, null, new ByteLevelDecoder(), []), default, path);
    }

    /// <summary>The token ids of <paramref name="text"/>, with the model's special tokens when asked.</summary>
    public int[] Encode(string text, bool addSpecialTokens = true)
    {
        var ids = new List<int>(text.Length / 3 + 4);
        Encode(text, ids, addSpecialTokens);
        return [.. ids];
    }

    /// <summary>Appends the token ids of <paramref name="text"/> to <paramref name="destination"/>.</summary>
    public void Encode(string text, List<int> destination, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(destination);

        var raw = new List<Piece>();
        rawMatcher.Split(new Piece(text, Piece.NoId, AtStart: true), raw);

        var normalized = new List<Piece>(raw.Count);
        foreach (var piece in raw)
        {
            if (piece.IsToken)
            {
                normalized.Add(piece);
                continue;
            }
            var text2 = parts.Normalizer?.Normalize(piece.Text) ?? piece.Text;
            if (text2.Length > 0) // empty pieces are dropped, never tokenized
                normalizedMatcher.Split(piece with { Text = text2 }, normalized);
        }

        var sequence = new List<int>(text.Length / 3 + 4);
        var words = new List<Piece>();
        foreach (var piece in normalized)
        {
            if (piece.IsToken)
            {
                sequence.Add(piece.Id);
                continue;
            }
            if (piece.Text.Length == 0)
                continue;
            if (parts.PreTokenizer is null)
            {
                TokenizeWord(piece.Text, sequence);
                continue;
            }
            words.Clear();
            parts.PreTokenizer.Split(piece, words);
            foreach (var word in words)
            {
                if (word.Text.Length > 0)
                    TokenizeWord(word.Text, sequence);
            }
        }

        parts.PostProcessor?.Process(sequence, addSpecialTokens);
        destination.AddRange(sequence);
    }

    // A model fails only on a file that lacks what the text needs (an unk token), so the error names the file.
    private void TokenizeWord(string word, List<int> ids)
    {
        try
        {
            parts.Model.Tokenize(word, ids);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"Tokenizer file '{file}': {e.Message}", e);
        }
    }

    /// <summary>The text of <paramref name="ids"/>; ids the tokenizer does not know are skipped.</summary>
    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false) =>
        string.Concat(DecodeToPieces(ids, skipSpecialTokens));

    /// <summary>Writes the text of <paramref name="ids"/> into <paramref name="destination"/>;
    /// false (and nothing written) when it does not fit.</summary>
    public bool TryDecode(ReadOnlySpan<int> ids, Span<char> destination, out int charsWritten, bool skipSpecialTokens = false)
    {
        var pieces = DecodeToPieces(ids, skipSpecialTokens);
        charsWritten = 0;
        if (pieces.Sum(p => p.Length) > destination.Length)
            return false;
        foreach (var piece in pieces)
        {
            piece.CopyTo(destination[charsWritten..]);
            charsWritten += piece.Length;
        }
        return true;
    }

    /// <summary>A decoder for ids that arrive one at a time (see <see cref="TokenStreamDecoder"/>).</summary>
    public TokenStreamDecoder CreateStreamDecoder(bool skipSpecialTokens = false) => new(this, skipSpecialTokens);

    /// <summary>The vocabulary string of an id (an added token's content or the model's token).</summary>
    public string? IdToToken(int id) => addedById.TryGetValue(id, out var token) ? token.Content : parts.Model.IdToToken(id);

    /// <summary>The id of a vocabulary string, added tokens first.</summary>
    public int? TokenToId(string token) => addedByContent.TryGetValue(token, out var id) ? id : parts.Model.TokenToId(token);

    // The decoded text as pieces whose concatenation is the text (the decoder's final token list).
    private List<string> DecodeToPieces(ReadOnlySpan<int> ids, bool skipSpecialTokens)
    {
        var tokens = new List<string>(ids.Length);
        foreach (var id in ids)
        {
            var token = IdToToken(id);
            if (token is not null && !(skipSpecialTokens && specialContents.Contains(token)))
                tokens.Add(token);
        }
        if (parts.Decoder is null)
            return [string.Join(' ', tokens)];
        parts.Decoder.DecodeChain(tokens);
        return tokens;
    }

    private int? FindSpecial(string? configured, int? fromPostProcessor, string[] conventionalNames)
    {
        if (configured is not null && TokenToId(configured) is { } id)
            return id;
        if (fromPostProcessor is not null)
            return fromPostProcessor;
        foreach (var name in conventionalNames)
        {
            if (TokenToId(name) is { } conventional)
                return conventional;
        }
        return null;
    }

    /// <summary>bos_token, eos_token and pad_token of a tokenizer_config.json (strings or {"content": ...}).</summary>
    private readonly record struct SpecialTokenNames(string? Bos, string? Eos, string? Pad)
    {
        public static SpecialTokenNames Read(string path)
        {
            try
            {
                using var document = JsonDocument.Parse(File.ReadAllBytes(path));
                if (document.RootElement.ValueKind != JsonValueKind.Object)
                    return default;
                return new SpecialTokenNames(Name(document.RootElement, "bos_token"), Name(document.RootElement, "eos_token"),
                    Name(document.RootElement, "pad_token"));
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"Malformed tokenizer config '{path}': not valid JSON ({e.Message}).", e);
            }
            catch (InvalidOperationException e)
            {
                // What System.Text.Json raises for a string that is not UTF-8 or has an unpaired surrogate escape.
                throw new InvalidDataException($"Malformed tokenizer config '{path}': a token name is not valid Unicode ({e.Message}).", e);
            }
        }

        private static string? Name(JsonElement root, string key) =>
            !root.TryGetProperty(key, out var value) ? null
            : value.ValueKind == JsonValueKind.String ? value.GetString()
            : value.ValueKind == JsonValueKind.Object && value.TryGetProperty("content", out var content)
              && content.ValueKind == JsonValueKind.String ? content.GetString()
            : null;
    }
}
