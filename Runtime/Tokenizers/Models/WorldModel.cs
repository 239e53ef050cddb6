using System.Text;

namespace Recur.Runtime.Tokenizers;

/// <summary>
/// The RWKV World tokenizer (rwkv_vocab_v20230424.txt; ChatRWKV's TRIE_TOKENIZER): the text's UTF-8 bytes are cut
/// greedily, always taking the longest vocabulary entry that matches at the current byte (a trie walk).
/// Every single byte is an entry, so any text encodes. Tokens are byte strings; they are exposed to the
/// pipeline in the byte-level alphabet so <see cref="ByteLevelDecoder"/> turns them back into bytes and reads
/// the bytes as UTF-8 (a token that ends inside a character waits for the next one when streaming).
/// </summary>
internal sealed class WorldModel : TokenizerModel
{
    private const int NoToken = -1;

    // The trie: node 0 is the root; an edge (node, byte) -> child is the key node * 256 + byte.
    private readonly Dictionary<long, int> edges = [];
    private readonly List<int> tokenAt = [NoToken];
    private readonly byte[]?[] bytesOf;
    private readonly Dictionary<string, int> idOfToken = new(StringComparer.Ordinal);

    public WorldModel(IReadOnlyList<(int Id, byte[] Bytes)> vocabulary)
    {
        bytesOf = new byte[]?[vocabulary.Count == 0 ? 0 : vocabulary.Max(v => v.Id) + 1];
        foreach (var (id, bytes) in vocabulary)
        {
            bytesOf[id] = bytes;
            int node = 0;
            foreach (var b in bytes)
            {
                long key = (long)node * 256 + b;
                if (!edges.TryGetValue(key, out int child))
                {
                    child = tokenAt.Count;
                    tokenAt.Add(NoToken);
                    edges[key] = child;
                }
                node = child;
            }
            tokenAt[node] = id; // the same bytes twice: the later line wins, as in the reference's dictionary
            idOfToken[ToAlphabet(bytes)] = id;
        }
    }

    public override int IdLimit => bytesOf.Length;

    /// <summary>The single-byte entries, one per byte value, that make any text encodable; null when one is missing.</summary>
    public int? MissingByte()
    {
        for (int b = 0; b < 256; b++)
            if (!edges.TryGetValue(b, out int node) || tokenAt[node] == NoToken) return b;
        return null;
    }

    public override void Tokenize(string word, List<int> ids)
    {
        var src = Encoding.UTF8.GetBytes(word);
        int i = 0;
        while (i < src.Length)
        {
            // The longest entry starting at i: walk the trie as far as the bytes go, remembering the last token seen.
            int node = 0, token = NoToken, end = i;
            for (int j = i; j < src.Length && edges.TryGetValue((long)node * 256 + src[j], out node); j++)
                if (tokenAt[node] != NoToken)
                {
                    token = tokenAt[node];
                    end = j + 1;
                }
            ids.Add(token);
            i = end;
        }
    }

    public override int? TokenToId(string token) => idOfToken.TryGetValue(token, out int id) ? id : null;

    public override string? IdToToken(int id) => id >= 0 && id < bytesOf.Length && bytesOf[id] is { } bytes ? ToAlphabet(bytes) : null;

    private static string ToAlphabet(byte[] bytes) => string.Create(bytes.Length, bytes, (span, b) =>
    {
        for (int k = 0; k < b.Length; k++) span[k] = ByteLevelAlphabet.ByteToChar(b[k]);
    });
}
