using Recur.Package;
using Recur.Graphs.Config;
using Recur.Graphs.Ir;
using Recur.Graphs.Weights;

namespace Recur.Graphs.Architectures;

/// <summary>
/// RWKV-4 (Hugging Face RwkvForCausalLM, modeling_rwkv.py).
/// <code>
/// x = emb(ids); x = pre_ln(x)                                      (block 0 only)
/// per block:  a = ln1(x);  a' = shift(a)                            time mix
///   k = W_k(mix_k a + (1-mix_k) a'), v = W_v(...), r = sigmoid(W_r(...))
///   x = x + W_o(r * wkv(k, v; u = time_first, w = -exp(time_decay)))
///             f = ln2(x);  f' = shift(f)                            channel mix
///   x = x + sigmoid(W_r(...)) * W_v(relu(W_k(mix_k f + (1-mix_k) f'))^2)
/// logits = head(ln_out(x))
/// </code>
/// State per layer i (all float32): past_key_values.i.attn_shift / ffn_shift [batch, hidden] (the last
/// normed input of each mix), wkv_num / wkv_den / wkv_max [batch, attention_hidden] (max starts at -1e38).
/// </summary>
public sealed class Rwkv : IArchitecture
{
    public string ModelType => "rwkv";
    public string HfClass => "RwkvForCausalLM";

    /// <summary>
    /// Positions per chunk of the parallel WKV (ExportOptions.WkvChunk); 0 is the Scan over positions, the default: on CPU
    /// the chunked form measured no faster (docs/PERFORMANCE.md); 16-32 is where it came closest.
    /// </summary>
    public const int DefaultWkvChunk = 0;

    /// <summary>The RwkvConfig fields the graph depends on.</summary>
    private sealed record Config(int Vocab, int Hidden, int AttentionHidden, int Intermediate, int Layers, float Epsilon, int RescaleEvery, bool TieEmbeddings,
        int WkvChunk)
    {
        public static Config Read(ModelConfig c, ExportOptions options)
        {
            int hidden = c.Positive("hidden_size");
            int rescale = c.Int("rescale_every", 6);
            if (rescale < 0) throw c.Invalid("rescale_every", rescale.ToString(System.Globalization.CultureInfo.InvariantCulture), "0 (off) or a positive block count");
            return new Config(
                Vocab: c.Positive("vocab_size"),
                Hidden: hidden,
                AttentionHidden: c.Positive("attention_hidden_size", hidden),
                Intermediate: c.Positive("intermediate_size", 4 * hidden),
                Layers: c.Positive("num_hidden_layers"),
                Epsilon: (float)c.Double("layer_norm_epsilon", 1e-5),
                RescaleEvery: rescale,
                TieEmbeddings: c.Bool("tie_word_embeddings", false),
                WkvChunk: options.WkvChunk ?? DefaultWkvChunk);
        }
    }

    public ExportedModel Build(ModelConfig modelConfig, WeightPuller weights, ExportOptions options)
    {
        var cfg = Config.Read(modelConfig, options);
        var b = new GraphBuilder("rwkv", options.Opset, weights) { MatrixWeightType = options.MatrixWeightType, Quantization = options.Quantization };
        var ids = b.Input(Contract.InputIds, TensorDType.Int64, "batch", "sequence");

        var tables = b.Embeddings("rwkv.embeddings.weight", cfg.Vocab, cfg.Hidden, cfg.TieEmbeddings, "head.weight");
        var x = b.Embed(tables, ids);
        for (int i = 0; i < cfg.Layers; i++)
        {
            using var _ = b.Scope($"blocks.{i}");
            string p = $"rwkv.blocks.{i}";
            if (i == 0) x = b.LayerNorm(x, $"{p}.pre_ln.weight", $"{p}.pre_ln.bias", cfg.Hidden, cfg.Epsilon);
            // HF divides these two weights by 2^(i / rescale_every) in eval mode and halves x after every
            // rescale_every-th block: undone by the LayerNorms except through their eps, so replicate it.
            float rescale = cfg.RescaleEvery > 0 ? MathF.Pow(2, -(i / cfg.RescaleEvery)) : 1f;
            x = b.Add(x, TimeMix(b, cfg, i, b.LayerNorm(x, $"{p}.ln1.weight", $"{p}.ln1.bias", cfg.Hidden, cfg.Epsilon), rescale));
            x = b.Add(x, ChannelMix(b, cfg, i, b.LayerNorm(x, $"{p}.ln2.weight", $"{p}.ln2.bias", cfg.Hidden, cfg.Epsilon), rescale));
            if (cfg.RescaleEvery > 0 && (i + 1) % cfg.RescaleEvery == 0) x = b.Div(x, 2f);
        }
        x = b.LayerNorm(x, "rwkv.ln_out.weight", "rwkv.ln_out.bias", cfg.Hidden, cfg.Epsilon);
        b.LogitsOutput(b.LmHead(tables, x));
        return ExportedModel.DecoderOnly(b);
    }

    private static Value TimeMix(GraphBuilder b, Config cfg, int layer, Value a, float rescale)
    {
        using var _ = b.Scope("attention");
        string p = $"rwkv.blocks.{layer}.attention";
        var shiftState = b.StateInput(layer, "attn_shift", TensorDType.Float32, ["batch", cfg.Hidden], 0);
        var (shifted, last) = b.TokenShift(a, shiftState);
        b.StateOutput(shiftState, last);

        var k = b.Linear(Mix(b, a, shifted, $"{p}.time_mix_key", cfg.Hidden), $"{p}.key.weight", cfg.Hidden, cfg.AttentionHidden);
        var v = b.Linear(Mix(b, a, shifted, $"{p}.time_mix_value", cfg.Hidden), $"{p}.value.weight", cfg.Hidden, cfg.AttentionHidden);
        var r = b.Sigmoid(b.Linear(Mix(b, a, shifted, $"{p}.time_mix_receptance", cfg.Hidden), $"{p}.receptance.weight", cfg.Hidden, cfg.AttentionHidden));

        var num = b.StateInput(layer, "wkv_num", TensorDType.Float32, ["batch", cfg.AttentionHidden], 0);
        var den = b.StateInput(layer, "wkv_den", TensorDType.Float32, ["batch", cfg.AttentionHidden], 0);
        // The running max starts far below any exponent so the empty state weighs nothing.
        var max = b.StateInput(layer, "wkv_max", TensorDType.Float32, ["batch", cfg.AttentionHidden], -1e38);
        var u = b.Weight($"{p}.time_first", [cfg.AttentionHidden]);
        var w = b.Weight($"{p}.time_decay", [cfg.AttentionHidden], fold: d => -MathF.Exp(d)); // folded at conversion: w = -exp(time_decay)
        var wkv = cfg.WkvChunk > 0 ? b.WkvChunked(k, v, u, w, num, den, max, cfg.WkvChunk) : b.WkvScan(k, v, u, w, num, den, max);
        b.StateOutput(num, wkv.Num);
        b.StateOutput(den, wkv.Den);
        b.StateOutput(max, wkv.Max);
        return b.Linear(b.Mul(r, wkv.Output), $"{p}.output.weight", cfg.AttentionHidden, cfg.Hidden, scale: rescale);
    }

    private static Value ChannelMix(GraphBuilder b, Config cfg, int layer, Value f, float rescale)
    {
        using var _ = b.Scope("feed_forward");
        string p = $"rwkv.blocks.{layer}.feed_forward";
        var shiftState = b.StateInput(layer, "ffn_shift", TensorDType.Float32, ["batch", cfg.Hidden], 0);
        var (shifted, last) = b.TokenShift(f, shiftState);
        b.StateOutput(shiftState, last);

        var k = b.Relu(b.Linear(Mix(b, f, shifted, $"{p}.time_mix_key", cfg.Hidden), $"{p}.key.weight", cfg.Hidden, cfg.Intermediate));
        var v = b.Linear(b.Mul(k, k), $"{p}.value.weight", cfg.Intermediate, cfg.Hidden, scale: rescale);
        var r = b.Sigmoid(b.Linear(Mix(b, f, shifted, $"{p}.time_mix_receptance", cfg.Hidden), $"{p}.receptance.weight", cfg.Hidden, cfg.Hidden));
        return b.Mul(r, v);
    }

    /// <summary>x * mix + shifted * (1 - mix), mix stored as [1, 1, hidden] in the checkpoint.</summary>
    private static Value Mix(GraphBuilder b, Value x, Value shifted, string mixName, int hidden)
    {
        var mix = b.Weight(mixName, [1, 1, hidden]);
        return b.Add(b.Mul(x, mix), b.Mul(shifted, b.Sub(b.Constant(1f), mix)));
    }
}
