using System.Globalization;
using System.Text.RegularExpressions;
using Recur.Graphs.Weights;

namespace Recur.Export.Checkpoints;

/// <summary>
/// An RWKV-4 checkpoint in BlinkDL's original naming (the .pth files of the RWKV-4 repositories),
/// presented under the Hugging Face names Rwkv.cs pulls. The mapping is transformers'
/// convert_rwkv_checkpoint_to_hf.py, a pure rename:
/// <code>
/// emb.weight                     -> rwkv.embeddings.weight
/// blocks.0.ln0.*                 -> rwkv.blocks.0.pre_ln.*
/// blocks.N.att.*                 -> rwkv.blocks.N.attention.*       (time_decay, time_first as stored)
/// blocks.N.ffn.*                 -> rwkv.blocks.N.feed_forward.*
/// *.time_mix_k / _v / _r         -> *.time_mix_key / _value / _receptance
/// head.weight                    -> head.weight; everything else gets the "rwkv." prefix
/// </code>
/// Both namings store time_mix as [1, 1, C]; a checkpoint that stores it as [C] is presented as
/// [1, 1, C] (same bytes). Names outside the mapping pass through with the prefix, so the
/// converter's unused-tensor check still reports them.
/// </summary>
public static partial class RwkvOriginalNames
{
    /// <summary>The checkpoint under the Hugging Face names.</summary>
    public static RenamedTensors Open(ITensorSource source) => new(source, "original RWKV-4", (original, entry) =>
    {
        string hf = HfName(original);
        bool flatMix = hf.Contains(".time_mix_", StringComparison.Ordinal) && entry.Shape.Length == 1;
        return new RenamedTensors.Target(hf, flatMix ? [1, 1, entry.Shape[0]] : null);
    });

    /// <summary>True when a checkpoint uses the original naming (it has emb.weight and blocks.0.att.key.weight).</summary>
    public static bool Matches(ITensorSource source) =>
        source.TryGetEntry("emb.weight", out _) && source.TryGetEntry("blocks.0.att.key.weight", out _);

    /// <summary>The Hugging Face name of an original tensor name.</summary>
    public static string HfName(string original)
    {
        if (original == "head.weight") return original;
        string name = original.StartsWith("emb.", StringComparison.Ordinal) ? "embeddings." + original["emb.".Length..] : original;
        if (name.StartsWith("blocks.0.ln0.", StringComparison.Ordinal)) name = "blocks.0.pre_ln." + name["blocks.0.ln0.".Length..];
        name = Attention().Replace(name, "blocks.$1.attention.");
        name = FeedForward().Replace(name, "blocks.$1.feed_forward.");
        name = TimeMix().Replace(name, m => m.Groups[1].Value switch { "k" => ".time_mix_key", "v" => ".time_mix_value", _ => ".time_mix_receptance" });
        return "rwkv." + name;
    }

    /// <summary>
    /// A config.json for an original checkpoint, from its tensor shapes and RwkvConfig's defaults
    /// (what convert_rwkv_checkpoint_to_hf.py writes); one line, for the message that asks for one.
    /// </summary>
    public static string SuggestConfig(ITensorSource source)
    {
        static long Dim(ITensorSource s, string name, int axis) => s.TryGetEntry(name, out var e) && e.Shape.Length > axis ? e.Shape[axis] : -1;
        int layers = 0;
        while (source.TryGetEntry($"blocks.{layers}.att.key.weight", out _)) layers++;
        string Num(long v) => v.ToString(CultureInfo.InvariantCulture);
        return "{\"model_type\": \"rwkv\", \"architectures\": [\"RwkvForCausalLM\"], "
            + $"\"vocab_size\": {Num(Dim(source, "emb.weight", 0))}, \"hidden_size\": {Num(Dim(source, "emb.weight", 1))}, "
            + $"\"num_hidden_layers\": {Num(layers)}, \"attention_hidden_size\": {Num(Dim(source, "blocks.0.att.key.weight", 0))}, "
            + $"\"intermediate_size\": {Num(Dim(source, "blocks.0.ffn.key.weight", 0))}, "
            + "\"layer_norm_epsilon\": 1e-05, \"rescale_every\": 6, \"tie_word_embeddings\": false, \"bos_token_id\": 0, \"eos_token_id\": 0}";
    }

    [GeneratedRegex(@"^blocks\.(\d+)\.att\.")]
    private static partial Regex Attention();

    [GeneratedRegex(@"^blocks\.(\d+)\.ffn\.")]
    private static partial Regex FeedForward();

    [GeneratedRegex(@"\.time_mix_([kvr])$")]
    private static partial Regex TimeMix();
}
