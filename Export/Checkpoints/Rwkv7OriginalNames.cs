using System.Globalization;
using System.Text.RegularExpressions;
using Recur.Graphs.Weights;

namespace Recur.Export.Checkpoints;

/// <summary>
/// An RWKV-7 (x070) checkpoint in BlinkDL's naming (RWKV-x070-World-*.pth, rwkv7-g1-*.pth) presented under the names
/// of flash-linear-attention's RWKV7ForCausalLM, as fla's utils/convert_from_rwkv7.py maps them:
/// <code>
/// emb.weight -> model.embeddings.weight      ln_out.* -> model.norm.*      head.weight -> lm_head.weight
/// blocks.N.ln0 / ln1 / ln2.*       -> model.layers.N.pre_norm / attn_norm / ffn_norm.*
/// blocks.N.att.receptance / key / value / output / ln_x.*  -> model.layers.N.attn.r_proj / k_proj / v_proj / o_proj / g_norm.*
/// blocks.N.att.{w,a,v,g}1 [C, r]   -> model.layers.N.attn.?_lora.lora.0.weight [r, C]   (transposed)
/// blocks.N.att.{w,a,v,g}2 [r, C]   -> model.layers.N.attn.?_lora.lora.2.weight [C, r]   (transposed)
/// blocks.N.att.{w,a,v}0 [1, 1, C]  -> model.layers.N.attn.?_lora.lora.2.bias [C]
/// blocks.N.att.* (x_r .. x_g [1, 1, C], k_k, k_a [1, 1, C] -> [C], r_k [H, N]) and blocks.N.ffn.* (x_k -> [C]) keep their names
/// </code>
/// Other names get the same prefix rules and are reported by the converter's unused-tensor check.
/// </summary>
public static partial class Rwkv7OriginalNames
{
    /// <summary>True when a checkpoint uses BlinkDL's x070 naming (emb.weight and blocks.0.att.r_k, which RWKV-4 lacks).</summary>
    public static bool Matches(ITensorSource source) =>
        source.TryGetEntry("emb.weight", out _) && source.TryGetEntry("blocks.0.att.r_k", out _);

    /// <summary>The checkpoint under fla's names.</summary>
    public static RenamedTensors Open(ITensorSource source) => new(source, "original RWKV-7", (original, entry) =>
    {
        var (name, transpose) = HfName(original);
        // fla keeps the six time-mix vectors as [1, 1, C] and every other vector flat.
        bool flatten = entry.Shape is [1, 1, _] && !AttentionMix().IsMatch(name);
        return new RenamedTensors.Target(name, flatten ? [entry.Shape[2]] : null, transpose);
    });

    /// <summary>fla's name of a BlinkDL x070 tensor name, and whether fla stores it transposed.</summary>
    public static (string Name, bool Transposed) HfName(string original)
    {
        switch (original)
        {
            case "emb.weight": return ("model.embeddings.weight", false);
            case "head.weight": return ("lm_head.weight", false);
        }
        if (original.StartsWith("ln_out.", StringComparison.Ordinal)) return ("model.norm." + original["ln_out.".Length..], false);
        var m = Block().Match(original);
        if (!m.Success) return (original, false);
        string layer = $"model.layers.{m.Groups[1].Value}", part = m.Groups[2].Value, rest = m.Groups[3].Value;
        switch (part)
        {
            case "ln0": return ($"{layer}.pre_norm.{rest}", false);
            case "ln1": return ($"{layer}.attn_norm.{rest}", false);
            case "ln2": return ($"{layer}.ffn_norm.{rest}", false);
            case "ffn": return ($"{layer}.ffn.{rest}", false);
            case "att":
                var lora = Lora().Match(rest);
                if (lora.Success)
                {
                    string kind = lora.Groups[1].Value;
                    return lora.Groups[2].Value switch
                    {
                        "0" => ($"{layer}.attn.{kind}_lora.lora.2.bias", false),
                        "1" => ($"{layer}.attn.{kind}_lora.lora.0.weight", true),
                        _ => ($"{layer}.attn.{kind}_lora.lora.2.weight", true),
                    };
                }
                var dot = rest.IndexOf('.', StringComparison.Ordinal);
                string module = dot < 0 ? rest : rest[..dot], tail = dot < 0 ? "" : rest[dot..];
                string renamed = module switch
                {
                    "receptance" => "r_proj", "key" => "k_proj", "value" => "v_proj", "output" => "o_proj", "ln_x" => "g_norm",
                    _ => module,
                };
                return ($"{layer}.attn.{renamed}{tail}", false);
            default: return (original, false);
        }
    }

    /// <summary>
    /// The config a BlinkDL x070 checkpoint implies, from its shapes (as fla's conversion derives it), with BlinkDL's
    /// constants: LayerNorm eps 1e-5, ln_x's GroupNorm eps 64e-5 whatever the head size, and id 0 as the end of a text
    /// (ChatRWKV's tokenizer notes reserve it for &lt;|endoftext|&gt;).
    /// Returns the config.json text and a one-line summary for the user.
    /// </summary>
    public static (string Json, string Summary) InferConfig(ITensorSource source, string where)
    {
        long[] Shape(string name, int rank) =>
            source.TryGetEntry(name, out var e) && e.Shape.Length == rank ? e.Shape
                : throw new InvalidDataException(source.TryGetEntry(name, out var f)
                    ? $"{where}: tensor '{name}' has shape [{string.Join(", ", f.Shape)}]; expected {rank} dimensions"
                    : $"{where}: tensor '{name}' is missing; an RWKV-7 checkpoint without config.json needs it to infer the config");
        int layers = 0;
        while (source.TryGetEntry($"blocks.{layers}.att.r_k", out _)) layers++;
        long[] emb = Shape("emb.weight", 2), rk = Shape("blocks.0.att.r_k", 2), ffn = Shape("blocks.0.ffn.key.weight", 2);
        long decay = Shape("blocks.0.att.w1", 2)[1], a = Shape("blocks.0.att.a1", 2)[1], gate = Shape("blocks.0.att.g1", 2)[1];
        // Block 0 has no value LoRA in released files; a one-block model has none anywhere, and then its rank is unused.
        string vName = layers > 1 ? "blocks.1.att.v1" : "blocks.0.att.v1";
        long v = source.TryGetEntry(vName, out _) ? Shape(vName, 2)[1] : 16;
        string N(long x) => x.ToString(CultureInfo.InvariantCulture);
        string json = "{\"model_type\": \"rwkv7\", \"architectures\": [\"RWKV7ForCausalLM\"], "
            + $"\"vocab_size\": {N(emb[0])}, \"hidden_size\": {N(emb[1])}, \"num_hidden_layers\": {N(layers)}, "
            + $"\"num_heads\": {N(rk[0])}, \"head_dim\": {N(rk[1])}, \"intermediate_size\": {N(ffn[0])}, "
            + $"\"decay_low_rank_dim\": {N(decay)}, \"a_low_rank_dim\": {N(a)}, \"v_low_rank_dim\": {N(v)}, \"gate_low_rank_dim\": {N(gate)}, "
            + "\"norm_eps\": 1e-05, \"group_norm_epsilon\": 0.00064, \"tie_word_embeddings\": false, \"eos_token_id\": 0}";
        string summary = $"no config.json: inferred from the tensor shapes: rwkv7, {layers} layers, hidden {N(emb[1])}, {N(rk[0])} heads of {N(rk[1])}, "
            + $"vocab {N(emb[0])}, ffn {N(ffn[0])}, LoRA ranks w {N(decay)} a {N(a)} v {N(v)} g {N(gate)}";
        return (json, summary);
    }

    [GeneratedRegex(@"^blocks\.(\d+)\.(ln0|ln1|ln2|att|ffn)\.(.+)$")]
    private static partial Regex Block();

    [GeneratedRegex(@"^([wvag])([012])$")]
    private static partial Regex Lora();

    [GeneratedRegex(@"\.attn\.x_[rwkvag]$")]
    private static partial Regex AttentionMix();
}
