using System.Globalization;
using Recur.Package;
using Recur.Graphs.Config;
using Recur.Graphs.Ir;
using Recur.Graphs.Weights;

namespace Recur.Graphs.Architectures;

/// <summary>
/// Jamba (Hugging Face JambaForCausalLM, modeling_jamba.py v4.46.1): Mamba and attention layers interleaved, each
/// followed by a dense gated MLP or a top-k mixture of experts.
/// <code>
/// x = emb(ids)                                    m = attention_mask (1 = token, 0 = padding), p = cumsum(m) - 1
/// per layer i:  h = rms_norm_in(x)
///   attention layer (i % attn_layer_period == attn_layer_offset):
///     a = W_o softmax(q k^T / sqrt(hidden / heads) + mask) v     GQA, NO positional encoding; causal and padding mask
///   Mamba layer (otherwise):
///     a = mamba_mixer(h, m)                       dt/B/C RMSNorms WITH weights (eps rms_norm_eps); padding zeroed
///   x = x + a;  f = rms_norm_pre_ff(x)
///   MoE layer (i % expert_layer_period == expert_layer_offset, num_experts > 1):
///     x = x + sum over the top num_experts_per_tok experts e of softmax(router(f))_e * mlp_e(f)   not renormalised
///   else:  x = x + mlp(f)                         mlp(f) = down(silu(gate(f)) * up(f))
/// logits = lm_head(rms_norm_final(x))             RMSNorms in float32, weight multiplies (no + 1)
/// </code>
/// Inputs: input_ids int64 [batch, sequence], attention_mask int64 [batch, total_sequence] (cached positions and the
/// new ones). State per decoder layer i (float32, zeros / empty at the start): Mamba layers
/// past_key_values.i.conv_state [batch, I, K-1] and past_key_values.i.ssm_state [batch, I, N]; attention layers
/// past_key_values.i.key / .value [batch, num_key_value_heads, past_sequence, hidden / heads]. Any number of tokens
/// may follow a prefill in one call (Hugging Face's cache restarts the conv window on such a call).
/// </summary>
public sealed class Jamba : IArchitecture
{
    public string ModelType => "jamba";
    public string HfClass => "JambaForCausalLM";

    /// <summary>Also output each MoE layer's router logits and chosen experts (layer{i}_router_logits / layer{i}_experts), to check routing.</summary>
    public bool ExposeRouting { get; init; }

    /// <summary>The JambaConfig fields the graph depends on (defaults as JambaConfig's).</summary>
    private sealed record Config(int Vocab, int Hidden, int Intermediate, int Layers, int Heads, int KvHeads, float Epsilon,
        bool TieEmbeddings, int Experts, int ExpertsPerToken, bool[] Attention, bool[] Sparse, MambaMixerShape Mixer)
    {
        public static Config Read(ModelConfig c)
        {
            int hidden = c.Positive("hidden_size", 4096);
            int layers = c.Positive("num_hidden_layers", 32);
            int heads = c.Positive("num_attention_heads", 32);
            int kvHeads = c.Positive("num_key_value_heads", 8);
            if (hidden % heads != 0) throw c.Invalid("num_attention_heads", Text(heads), $"a divisor of hidden_size ({hidden})");
            if (heads % kvHeads != 0) throw c.Invalid("num_key_value_heads", Text(kvHeads), $"a divisor of num_attention_heads ({heads})");
            string act = c.String("hidden_act", "silu");
            // The Mamba mixer applies hidden_act after its conv and to its gate; HF's kernels know only SiLU.
            if (act is not ("silu" or "swish")) throw c.Invalid("hidden_act", $"'{act}'", "'silu' (the only activation Jamba's Mamba mixer supports)");
            // HF's eager attention (the golden path) attends over every cached key; only its flash-attention path has a window.
            if (c.Has("sliding_window")) throw c.Invalid("sliding_window", Text(c.Int("sliding_window")), "null (a sliding window is not supported)");
            int experts = c.Positive("num_experts", 16);
            int perToken = c.Positive("num_experts_per_tok", 2);
            if (perToken > experts) throw c.Invalid("num_experts_per_tok", Text(perToken), $"at most num_experts ({experts})");
            int expand = c.Positive("mamba_expand", 2);
            float epsilon = (float)c.Double("rms_norm_eps", 1e-6);
            var attention = Schedule(c, "attn_layer_period", 8, "attn_layer_offset", 4, layers);
            var sparse = Schedule(c, "expert_layer_period", 2, "expert_layer_offset", 1, layers).Select(s => s && experts > 1).ToArray();
            var mixer = new MambaMixerShape(hidden, (long)expand * hidden, c.Positive("mamba_d_state", 16),
                MambaMixerShape.ReadConvKernel(c, "mamba_d_conv"), MambaMixerShape.ReadTimeStepRank(c, "mamba_dt_rank", hidden),
                ProjectionBias: c.Bool("mamba_proj_bias", false), ConvBias: c.Bool("mamba_conv_bias", true), MixerNorms.Weighted, epsilon);
            return new Config(c.Positive("vocab_size", 65536), hidden, c.Positive("intermediate_size", 14336), layers, heads, kvHeads,
                epsilon, c.Bool("tie_word_embeddings", false), experts, perToken, attention, sparse, mixer);
        }

        /// <summary>Layer i is chosen iff i % period == offset; JambaConfig refuses an offset outside [0, period).</summary>
        private static bool[] Schedule(ModelConfig c, string periodKey, int period, string offsetKey, int offset, int layers)
        {
            period = c.Positive(periodKey, period);
            offset = c.Int(offsetKey, offset);
            if (offset < 0 || offset >= period) throw c.Invalid(offsetKey, Text(offset), $"0 to {periodKey} - 1 ({period - 1})");
            return Enumerable.Range(0, layers).Select(i => i % period == offset).ToArray();
        }

        private static string Text(int v) => v.ToString(CultureInfo.InvariantCulture);
    }

    public ExportedModel Build(ModelConfig modelConfig, WeightPuller weights, ExportOptions options)
    {
        var cfg = Config.Read(modelConfig);
        var b = new GraphBuilder(ModelType, options.Opset, weights) { MatrixWeightType = options.MatrixWeightType, Quantization = options.Quantization, KvCacheType = options.KvCacheType };
        var ids = b.Input(Contract.InputIds, TensorDType.Int64, "batch", "sequence");
        var mask = b.Input(Contract.AttentionMask, TensorDType.Int64, "batch", "total_sequence");
        var newPositions = (Start: b.Neg(b.DimOf(ids, 1)), End: b.Ints(long.MaxValue));
        var keyPositions = b.MaskPositions(mask);                                                  // [B, P+T]
        var queryPositions = b.Slice(keyPositions, newPositions.Start, newPositions.End, [1]);      // [B, T]
        var tokenMask = b.Slice(mask, newPositions.Start, newPositions.End, [1]);                   // [B, T]

        // Tying points lm_head at the embedding after loading, so a stored copy is never read.
        if (cfg.TieEmbeddings) weights.Ignore("lm_head.weight");
        var tables = b.Embeddings("model.embed_tokens.weight", cfg.Vocab, cfg.Hidden, cfg.TieEmbeddings, "lm_head.weight");
        var x = b.Embed(tables, ids);
        for (int i = 0; i < cfg.Layers; i++)
        {
            using var _ = b.Scope($"layers.{i}");
            string p = $"model.layers.{i}";
            var h = Norm(b, cfg, x, $"{p}.input_layernorm.weight");
            x = b.Add(x, cfg.Attention[i]
                ? Attention(b, cfg, i, h, queryPositions, keyPositions, mask)
                : b.MambaMixer(h, $"{p}.mamba", cfg.Mixer, i, tokenMask));
            x = b.Add(x, FeedForward(b, cfg, i, Norm(b, cfg, x, $"{p}.pre_ff_layernorm.weight")));
        }
        x = Norm(b, cfg, x, "model.final_layernorm.weight");

        b.LogitsOutput(b.LmHead(tables, x));
        return ExportedModel.DecoderOnly(b);
    }

    private static Value Attention(GraphBuilder b, Config cfg, int layer, Value h, Value queryPositions, Value keyPositions, Value mask)
    {
        using var _ = b.Scope("self_attn");
        string p = $"model.layers.{layer}.self_attn";
        long d = cfg.Hidden / cfg.Heads;
        var q = b.SplitHeads(b.Linear(h, $"{p}.q_proj.weight", cfg.Hidden, cfg.Heads * d), cfg.Heads, d);
        var k = b.SplitHeads(b.Linear(h, $"{p}.k_proj.weight", cfg.Hidden, cfg.KvHeads * d), cfg.KvHeads, d);
        var v = b.SplitHeads(b.Linear(h, $"{p}.v_proj.weight", cfg.Hidden, cfg.KvHeads * d), cfg.KvHeads, d);

        var pastKey = b.StateInput(layer, "key", b.KvCacheType, ["batch", cfg.KvHeads, "past_sequence", d], 0);
        var pastValue = b.StateInput(layer, "value", b.KvCacheType, ["batch", cfg.KvHeads, "past_sequence", d], 0);
        var (output, key, value) = b.CachedAttention(q, k, v, pastKey, pastValue, queryPositions, keyPositions, mask,
            (float)(1 / Math.Sqrt(d)));
        b.StateOutput(pastKey, key);
        b.StateOutput(pastValue, value);
        return b.Linear(b.MergeHeads(output), $"{p}.o_proj.weight", cfg.Heads * d, cfg.Hidden);
    }

    /// <summary>JambaMLP, or JambaSparseMoeBlock on the expert layers: experts are JambaMLPs under feed_forward.experts.{e}.</summary>
    private Value FeedForward(GraphBuilder b, Config cfg, int layer, Value f)
    {
        using var _ = b.Scope("feed_forward");
        string p = $"model.layers.{layer}.feed_forward";
        if (!cfg.Sparse[layer]) return b.GatedMlp(f, p, cfg.Hidden, cfg.Intermediate, "silu");
        var moe = b.TopKExperts(f, $"{p}.router.weight", null, cfg.Hidden, cfg.Experts, cfg.ExpertsPerToken,
            (tokens, e) => b.GatedMlp(tokens, $"{p}.experts.{e}", cfg.Hidden, cfg.Intermediate, "silu"));
        if (ExposeRouting)
        {
            b.Output(moe.RouterLogits, $"layer{layer}_router_logits");
            b.Output(moe.Experts, $"layer{layer}_experts");
        }
        return moe.Output;
    }

    /// <summary>JambaRMSNorm: float32, eps rms_norm_eps, weight multiplies.</summary>
    private static Value Norm(GraphBuilder b, Config cfg, Value x, string weightName) => b.RmsNorm(x, weightName, cfg.Hidden, cfg.Epsilon);
}
