using Recur.Package;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Recur.Graphs.Config;
using Recur.Graphs.Ir;
using Recur.Graphs.Weights;

namespace Recur.Graphs.Architectures;

/// <summary>What sets Gemma 2 apart from Gemma: data, not a subclass.</summary>
/// <param name="SandwichNorms">Gemma 2 norms each sublayer's output too (post_attention_layernorm on the
/// attention, pre_/post_feedforward_layernorm around the MLP); Gemma's post_attention_layernorm is the MLP's input norm.</param>
/// <param name="Gemma2Attention">query_pre_attn_scalar, the two logit soft caps and sliding-window layers are read.</param>
public sealed record GemmaVariant(string ModelType, string HfClass, bool SandwichNorms, bool Gemma2Attention)
{
    public static readonly GemmaVariant Gemma = new("gemma", "GemmaForCausalLM", SandwichNorms: false, Gemma2Attention: false);
    public static readonly GemmaVariant Gemma2 = new("gemma2", "Gemma2ForCausalLM", SandwichNorms: true, Gemma2Attention: true);
}

/// <summary>
/// Gemma and Gemma 2 (Hugging Face GemmaForCausalLM, modeling_gemma.py; Gemma2ForCausalLM, modeling_gemma2.py; v4.46.1).
/// <code>
/// x = emb(ids) * sqrt(hidden)                       positions p = cumsum(attention_mask) - 1
/// per layer:  h = norm_in(x)
///   q, k, v = rope(W_q h, p), rope(W_k h, p), W_v h             [B, heads | kv_heads, T, head_dim]
///   a = W_o softmax(cap_attn(q k^T * scale) + mask) v          mask: causal, padding, window on local layers
///   Gemma:    x = x + a;            x = x + mlp(norm_post_attn(x))
///   Gemma 2:  x = x + norm_post_attn(a);  x = x + norm_post_ff(mlp(norm_pre_ff(x)))
///   mlp(f) = W_down(gelu_tanh(W_gate f) * W_up f)
/// logits = cap_final(norm(x) emb^T)                 lm_head tied to the embedding unless tie_word_embeddings is false
/// norm(x) = x / sqrt(mean(x^2) + eps) * (1 + w), in float32 (1 + w folded at conversion, exact)
/// scale = head_dim^-0.5 (Gemma), query_pre_attn_scalar^-0.5 (Gemma 2); cap(x) = c tanh(x / c) (Gemma 2 only)
/// </code>
/// Inputs: input_ids int64 [batch, sequence] and attention_mask int64 [batch, total_sequence] (1 = token, 0 = padding)
/// covering the cached positions and the new ones. Positions come from the mask, so there is no position_ids input:
/// a left-padded row gives the same logits as the row alone.
/// State per layer i (float32): past_key_values.i.key / .value [batch, num_key_value_heads, past_sequence, head_dim],
/// rotary already applied to the keys; present = [past, new]. Sliding-window layers (Gemma 2) keep their whole
/// cache too and mask keys older than the window: every cache stays as long as the mask history. With a KV cache
/// length N (convert --kv-cache-length) the key/value states are [batch, num_key_value_heads, N, head_dim] buffers
/// written in place instead (CachedAttentionInPlace).
/// </summary>
public sealed class Gemma(GemmaVariant variant) : IArchitecture
{
    public string ModelType => variant.ModelType;
    public string HfClass => variant.HfClass;

    /// <summary>The GemmaConfig / Gemma2Config fields the graph depends on.</summary>
    private sealed record Config(int Vocab, int Hidden, int Intermediate, int Layers, int Heads, int KvHeads, int HeadDim,
        float Epsilon, double RopeTheta, string Activation, bool AttentionBias, bool TieEmbeddings, int ContextLength,
        float Scale, float? AttentionSoftCap, float? FinalSoftCap, int? Window, bool[] Sliding)
    {
        public static Config Read(ModelConfig c, GemmaVariant variant)
        {
            int layers = c.Positive("num_hidden_layers");
            int heads = c.Positive("num_attention_heads");
            int kvHeads = c.Positive("num_key_value_heads");
            if (heads % kvHeads != 0)
                throw c.Invalid("num_key_value_heads", Str(kvHeads), $"a divisor of num_attention_heads ({heads})");
            int headDim = c.Positive("head_dim", 256); // HF's default for both configs; never hidden / heads
            if (headDim % 2 != 0) throw c.Invalid("head_dim", Str(headDim), "an even number (rotary embedding)");
            // Gemma ignores hidden_act: a null hidden_activation means gelu_pytorch_tanh (HF 4.46.1 warns and overrides).
            string activation = c.OptionalString("hidden_activation") ?? "gelu_pytorch_tanh";
            if (!GraphBuilder.IsKnownActivation(activation))
                throw c.Invalid("hidden_activation", $"'{activation}'", "gelu_pytorch_tanh, gelu, gelu_new, relu or silu");

            float scale = (float)(1 / Math.Sqrt(headDim));
            float? attentionCap = null, finalCap = null;
            int? window = null;
            var sliding = new bool[layers];
            if (variant.Gemma2Attention)
            {
                double scalar = c.Double("query_pre_attn_scalar", 256);
                if (scalar <= 0) throw c.Invalid("query_pre_attn_scalar", Str(scalar), "a positive number");
                scale = (float)Math.Pow(scalar, -0.5);
                attentionCap = SoftCap(c, "attn_logit_softcapping", 50);
                finalCap = SoftCap(c, "final_logit_softcapping", 30);
                window = c.Positive("sliding_window", 4096);
                sliding = LayerTypes(c, layers);
            }
            return new Config(
                Vocab: c.Positive("vocab_size"),
                Hidden: c.Positive("hidden_size"),
                Intermediate: c.Positive("intermediate_size"),
                Layers: layers, Heads: heads, KvHeads: kvHeads, HeadDim: headDim,
                Epsilon: (float)c.Double("rms_norm_eps", 1e-6),
                RopeTheta: c.Double("rope_theta", 10000),
                Activation: activation,
                AttentionBias: c.Bool("attention_bias", false),
                TieEmbeddings: c.Bool("tie_word_embeddings", true),
                ContextLength: c.Positive("max_position_embeddings", 8192),
                Scale: scale, AttentionSoftCap: attentionCap, FinalSoftCap: finalCap, Window: window, Sliding: sliding);
        }

        /// <summary>A soft cap: missing takes HF's default, null switches it off.</summary>
        private static float? SoftCap(ModelConfig c, string key, double fallback)
        {
            if (c.IsNull(key)) return null;
            double cap = c.Double(key, fallback);
            return cap > 0 ? (float)cap : throw c.Invalid(key, Str(cap), "a positive number, or null for no soft cap");
        }

        /// <summary>HF 4.46.1: even layers are local (layer_idx % 2 == 0). Later configs spell it out as layer_types.</summary>
        private static bool[] LayerTypes(ModelConfig c, int layers)
        {
            if (!c.Has("layer_types")) return Enumerable.Range(0, layers).Select(i => i % 2 == 0).ToArray();
            var types = c.Strings("layer_types");
            if (types.Count != layers) throw c.Invalid("layer_types", $"a list of {types.Count}", $"one entry per layer ({layers})");
            return types.Select(t => t switch
            {
                "sliding_attention" => true,
                "full_attention" => false,
                _ => throw c.Invalid("layer_types", $"'{t}'", "sliding_attention or full_attention"),
            }).ToArray();
        }
    }

    private static string Str(double v) => v.ToString(CultureInfo.InvariantCulture);

    public ExportedModel Build(ModelConfig modelConfig, WeightPuller weights, ExportOptions options)
    {
        var cfg = Config.Read(modelConfig, variant);
        var b = new GraphBuilder(variant.ModelType, options.Opset, weights) { MatrixWeightType = options.MatrixWeightType, Quantization = options.Quantization, KvCacheType = options.KvCacheType };
        var ids = b.Input(Contract.InputIds, TensorDType.Int64, "batch", "sequence");
        var mask = b.Input(Contract.AttentionMask, TensorDType.Int64, "batch", "total_sequence");
        var keyPositions = b.MaskPositions(mask);                                                     // [B, P+T]
        var queryPositions = b.Slice(keyPositions, b.Neg(b.DimOf(ids, 1)), b.Ints(long.MaxValue), [1]); // [B, T]
        var slots = options.KvCacheLength is int n
            ? b.InPlaceCacheSlots(ids, keyPositions, queryPositions, mask, n, cfg.KvHeads, cfg.HeadDim)
            : null;

        var tables = b.Embeddings("model.embed_tokens.weight", cfg.Vocab, cfg.Hidden, cfg.TieEmbeddings, "lm_head.weight");
        var x = b.Embed(tables, ids);
        // HF multiplies by sqrt(hidden) as a tensor of the compute dtype: float32 here, so sqrt(80) stays 8.944272
        // (a bfloat16 run rounds it to 8.9375; Recur computes in float32 whatever the weight dtype).
        x = b.Mul(x, (float)Math.Sqrt(cfg.Hidden));

        for (int i = 0; i < cfg.Layers; i++)
        {
            using var _ = b.Scope($"layers.{i}");
            string p = $"model.layers.{i}";
            var attention = Attention(b, cfg, options.KvCacheLength, slots, i, Norm(b, cfg, x, $"{p}.input_layernorm.weight"), queryPositions, keyPositions, mask);
            if (variant.SandwichNorms) attention = Norm(b, cfg, attention, $"{p}.post_attention_layernorm.weight");
            x = b.Add(x, attention);
            var preMlp = Norm(b, cfg, x, variant.SandwichNorms ? $"{p}.pre_feedforward_layernorm.weight" : $"{p}.post_attention_layernorm.weight");
            Value mlp;
            using (b.Scope("mlp"))
                mlp = b.GatedMlp(preMlp, $"{p}.mlp", cfg.Hidden, cfg.Intermediate, cfg.Activation);
            if (variant.SandwichNorms) mlp = Norm(b, cfg, mlp, $"{p}.post_feedforward_layernorm.weight");
            x = b.Add(x, mlp);
        }
        x = Norm(b, cfg, x, "model.norm.weight");

        var logits = b.LmHead(tables, x);
        if (cfg.FinalSoftCap is float cap) logits = b.SoftCap(logits, cap); // in float32 after the (maybe fp16) MatMul
        b.LogitsOutput(logits);
        // onnxruntime-genai grows a cache by the present's length; a buffer written in place is not its contract.
        if (options.KvCacheLength is not null) return ExportedModel.DecoderOnly(b);
        return ExportedModel.DecoderOnly(b) with
        {
            ExtraFiles = new Dictionary<string, string> { ["genai_config.json"] = GenaiConfig(modelConfig, cfg) },
        };
    }

    private static Value Attention(GraphBuilder b, Config cfg, int? cacheLength, GraphBuilder.CacheSlots? slots, int layer, Value h, Value queryPositions, Value keyPositions, Value mask)
    {
        using var _ = b.Scope("self_attn");
        string p = $"model.layers.{layer}.self_attn";
        string? Bias(string proj) => cfg.AttentionBias ? $"{p}.{proj}.bias" : null;
        long d = cfg.HeadDim;
        Value Heads(Value y, long heads) => b.SplitHeads(y, heads, d);
        var q = Heads(b.Linear(h, $"{p}.q_proj.weight", cfg.Hidden, cfg.Heads * d, Bias("q_proj")), cfg.Heads);
        var k = Heads(b.Linear(h, $"{p}.k_proj.weight", cfg.Hidden, cfg.KvHeads * d, Bias("k_proj")), cfg.KvHeads);
        var v = Heads(b.Linear(h, $"{p}.v_proj.weight", cfg.Hidden, cfg.KvHeads * d, Bias("v_proj")), cfg.KvHeads);
        q = b.Rotary(q, queryPositions, cfg.RopeTheta, d);
        k = b.Rotary(k, queryPositions, cfg.RopeTheta, d);

        Dim length = cacheLength is int n ? n : "past_sequence";
        int? inPlace = cacheLength is null ? null : 2;
        var pastKey = b.StateInput(layer, "key", b.KvCacheType, ["batch", cfg.KvHeads, length, d], 0, inPlace);
        var pastValue = b.StateInput(layer, "value", b.KvCacheType, ["batch", cfg.KvHeads, length, d], 0, inPlace);
        long? window = cfg.Sliding[layer] ? cfg.Window : null;
        var (output, key, value) = slots is null
            ? b.CachedAttention(q, k, v, pastKey, pastValue, queryPositions, keyPositions, mask, cfg.Scale, cfg.AttentionSoftCap, window)
            : b.CachedAttentionInPlace(q, k, v, pastKey, pastValue, queryPositions, slots, cfg.Scale, cfg.AttentionSoftCap, window);
        b.StateOutput(pastKey, key);
        b.StateOutput(pastValue, value);

        return b.Linear(b.MergeHeads(output), $"{p}.o_proj.weight", cfg.Heads * d, cfg.Hidden, Bias("o_proj"));
    }

    /// <summary>GemmaRMSNorm: float32, weight (1 + w).</summary>
    private static Value Norm(GraphBuilder b, Config cfg, Value x, string weightName) =>
        b.RmsNorm(x, weightName, cfg.Hidden, cfg.Epsilon, plusOne: true);

    /// <summary>
    /// onnxruntime-genai's genai_config.json (model types gemma / gemma2). The graph derives positions from
    /// attention_mask, so no position_ids input is named; present = [past, new] grows the cache, so the
    /// past and present buffers cannot be shared.
    /// </summary>
    private string GenaiConfig(ModelConfig c, Config cfg)
    {
        var scalars = c.Scalars();
        JsonNode? Id(string key) => scalars.TryGetValue(key, out var v) && v is double d ? JsonValue.Create((long)d) : null;
        var model = new JsonObject
        {
            ["type"] = variant.ModelType,
            ["context_length"] = cfg.ContextLength,
            ["bos_token_id"] = Id("bos_token_id"),
            ["eos_token_id"] = Id("eos_token_id"),
            ["pad_token_id"] = Id("pad_token_id"),
            ["vocab_size"] = cfg.Vocab,
            ["decoder"] = new JsonObject
            {
                ["session_options"] = new JsonObject { ["log_id"] = "onnxruntime-genai", ["provider_options"] = new JsonArray() },
                ["filename"] = "model.onnx",
                ["head_size"] = cfg.HeadDim,
                ["hidden_size"] = cfg.Hidden,
                ["num_attention_heads"] = cfg.Heads,
                ["num_hidden_layers"] = cfg.Layers,
                ["num_key_value_heads"] = cfg.KvHeads,
                ["inputs"] = new JsonObject
                {
                    ["input_ids"] = "input_ids",
                    ["attention_mask"] = "attention_mask",
                    ["past_key_names"] = "past_key_values.%d.key",
                    ["past_value_names"] = "past_key_values.%d.value",
                },
                ["outputs"] = new JsonObject
                {
                    ["logits"] = "logits",
                    ["present_key_names"] = "present.%d.key",
                    ["present_value_names"] = "present.%d.value",
                },
            },
        };
        foreach (var key in model.Where(kv => kv.Value is null).Select(kv => kv.Key).ToList()) model.Remove(key);
        var search = new JsonObject
        {
            ["do_sample"] = false, ["early_stopping"] = true, ["length_penalty"] = 1.0, ["max_length"] = cfg.ContextLength,
            ["min_length"] = 0, ["no_repeat_ngram_size"] = 0, ["num_beams"] = 1, ["num_return_sequences"] = 1,
            ["past_present_share_buffer"] = false, ["repetition_penalty"] = 1.0, ["temperature"] = 1.0, ["top_k"] = 1, ["top_p"] = 1.0,
        };
        return new JsonObject { ["model"] = model, ["search"] = search }.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }
}
