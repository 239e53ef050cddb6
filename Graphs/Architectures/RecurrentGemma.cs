using Recur.Package;
using System.Globalization;
using Recur.Graphs.Config;
using Recur.Graphs.Ir;
using Recur.Graphs.Weights;

namespace Recur.Graphs.Architectures;

/// <summary>
/// RecurrentGemma / Griffin (Hugging Face RecurrentGemmaForCausalLM, modeling_recurrent_gemma.py).
/// <code>
/// x = emb(ids) * bf16(sqrt(hidden))
/// per layer (block_types cycled):
///   t = temporal_pre_norm(x)                                   RMSNorm, (1 + w)
///   recurrent:  y = act(linear_y t);  u = conv1d(linear_x t);  h = rg_lru(u);  t' = linear_out(h * y)
///   attention:  multi-query local attention over the last attention_window_size positions,
///               RoPE on the first half of each head, o_proj with bias
///   x = x + t';  x = x + down(act(gate(c)) * up(c)),  c = channel_pre_norm(x)
/// logits = softcap(final_norm(x) @ emb^T, logits_soft_cap)
/// </code>
/// State (float32 unless said):
///   past_key_values.0.position  int64 [batch]: tokens seen so far (0 = a fresh sequence: RG-LRU resets there)
///   recurrent layer i: conv_state [batch, lru_width, conv1d_width - 1], rg_lru_state [batch, lru_width]
///   attention layer i: key, value [batch, kv_heads, attention_window_size - 1, head_dim], the last
///   window - 1 keys (after RoPE) and values; slots before position 0 are masked, so the state never grows.
/// </summary>
public sealed class RecurrentGemma : IArchitecture
{
    public string ModelType => "recurrent_gemma";
    public string HfClass => "RecurrentGemmaForCausalLM";

    private const string Recurrent = "recurrent";
    private const string Attention = "attention";

    /// <summary>
    /// The RecurrentGemmaConfig fields the graph depends on. Not read: attention_dropout (training only),
    /// w_init_variance_scale and final_w_init_variance_scale (initialisation only), use_cache and the
    /// special token ids (generation only).
    /// </summary>
    private sealed record Config(
        int Vocab, int Hidden, int Intermediate, int Heads, int KvHeads, int HeadDim, int LruWidth, int Window,
        int ConvWidth, float SoftCap, float Epsilon, string Activation, int RotaryDim, double Theta,
        IReadOnlyList<string> LayerTypes, bool AttentionBias, bool TieEmbeddings)
    {
        public static Config Read(ModelConfig c)
        {
            int hidden = c.Positive("hidden_size");
            int heads = c.Positive("num_attention_heads");
            int kvHeads = c.Positive("num_key_value_heads", heads);
            if (kvHeads > heads || heads % kvHeads != 0)
                throw c.Invalid("num_key_value_heads", Text(kvHeads), $"a divisor of num_attention_heads ({heads})");
            // HF derives head_dim as hidden // heads but lets config.json override it; the attention
            // output is viewed back as [.., hidden_size], so heads * head_dim must be hidden_size.
            int headDim = c.Positive("head_dim", hidden / heads);
            if (heads * headDim != hidden)
                throw c.Invalid("head_dim", Text(headDim), $"hidden_size / num_attention_heads ({hidden} / {heads})");
            int lru = c.Positive("lru_width", hidden);
            if (lru % heads != 0)
                throw c.Invalid("lru_width", Text(lru), $"a multiple of num_attention_heads ({heads}): the RG-LRU gates are block-diagonal per head");
            int convWidth = c.Positive("conv1d_width", 4);
            if (convWidth < 2) throw c.Invalid("conv1d_width", Text(convWidth), "at least 2");
            string activation = c.String("hidden_activation", "gelu_pytorch_tanh");
            if (!GraphBuilder.IsKnownActivation(activation))
                throw c.Invalid("hidden_activation", $"'{activation}'", "gelu_pytorch_tanh, gelu, relu or silu");
            double softCap = c.Double("logits_soft_cap", 30.0);
            if (!(softCap > 0)) throw c.Invalid("logits_soft_cap", Text(softCap), "a positive number (HF always soft-caps the logits)");

            var types = c.Has("block_types") ? c.Strings("block_types") : [Recurrent, Recurrent, Attention];
            if (types.Count == 0) throw c.Invalid("block_types", "[]", "a non-empty list of 'recurrent' and 'attention'");
            foreach (var t in types)
                if (t is not (Recurrent or Attention))
                    throw c.Invalid("block_types", $"a list holding '{t}'", "only 'recurrent' and 'attention' blocks");
            int layers = c.Positive("num_hidden_layers");
            int intermediate = c.Positive("intermediate_size", 3 * 2560) / 2; // HF's MLP is intermediate_size // 2 wide
            if (intermediate == 0) throw c.Invalid("intermediate_size", "1", "at least 2 (the MLP is intermediate_size // 2 wide)");
            var layerTypes = Enumerable.Range(0, layers).Select(i => types[i % types.Count]).ToList();

            return new Config(
                Vocab: c.Positive("vocab_size"),
                Hidden: hidden,
                Intermediate: intermediate,
                Heads: heads,
                KvHeads: kvHeads,
                HeadDim: headDim,
                LruWidth: lru,
                Window: c.Positive("attention_window_size", 2048),
                ConvWidth: convWidth,
                SoftCap: (float)softCap,
                Epsilon: (float)c.Double("rms_norm_eps", 1e-6),
                Activation: activation,
                RotaryDim: RotaryWidth(c, headDim),
                Theta: c.Double("rope_theta", 10000.0),
                LayerTypes: layerTypes,
                AttentionBias: c.Bool("attention_bias", false),
                TieEmbeddings: c.Bool("tie_word_embeddings", true));
        }

        /// <summary>
        /// HF splits each head into int(1 / partial_rotary_factor) chunks, rotates the first and keeps
        /// the second: that works only for exactly two chunks whose first matches the RoPE width.
        /// </summary>
        private static int RotaryWidth(ModelConfig c, int headDim)
        {
            double factor = c.Double("partial_rotary_factor", 0.5);
            int chunk = (headDim + 1) / 2;            // torch.chunk(.., 2): the first chunk is ceil(D / 2)
            int ropeDim = (int)(headDim * factor);
            int ropeWidth = 2 * ((ropeDim + 1) / 2);  // cos/sin come in pairs of arange(0, dim, 2)
            if (!(factor > 0) || (int)(1 / factor) != 2 || ropeWidth != chunk || chunk % 2 != 0)
                throw c.Invalid("partial_rotary_factor", Text(factor), $"a factor that splits head_dim {headDim} into two halves with an even rotary half (e.g. 0.5)");
            return chunk;
        }

        private static string Text(double v) => v.ToString(CultureInfo.InvariantCulture);
    }

    public ExportedModel Build(ModelConfig modelConfig, WeightPuller weights, ExportOptions options)
    {
        var cfg = Config.Read(modelConfig);
        var b = new GraphBuilder("recurrent_gemma", options.Opset, weights) { MatrixWeightType = options.MatrixWeightType, Quantization = options.Quantization };
        var ids = b.Input(Contract.InputIds, TensorDType.Int64, "batch", "sequence");

        // One position for the whole model: the first new token's index in the sequence.
        var start = b.StateInput(0, "position", TensorDType.Int64, ["batch"], 0);
        var length = b.Squeeze(b.DimOf(ids, 1), 0);
        var positions = b.Add(b.Unsqueeze(start, 1), b.Range(b.Constant(0L), length, b.Constant(1L)));  // [B, T]
        var reset = b.Equal(positions, b.Constant(0L));                                                   // [B, T]
        var windowMask = cfg.LayerTypes.Contains(Attention) ? LocalAttentionBias(b, cfg, start, positions, length) : null;

        // HF keeps the normalizer in a bfloat16 buffer, so sqrt(hidden) is rounded to bfloat16 even in
        // float32 runs.
        float normalizer = TensorBytes.RoundToBFloat16(MathF.Sqrt(cfg.Hidden));
        var tables = b.Embeddings("model.embed_tokens.weight", cfg.Vocab, cfg.Hidden, cfg.TieEmbeddings, "lm_head.weight");
        var x = b.Mul(b.Embed(tables, ids), normalizer);
        for (int i = 0; i < cfg.LayerTypes.Count; i++)
        {
            using var _ = b.Scope($"layers.{i}");
            string p = $"model.layers.{i}";
            var t = RmsNorm(b, cfg, x, $"{p}.temporal_pre_norm.weight");
            t = cfg.LayerTypes[i] == Recurrent
                ? RecurrentBlock(b, cfg, i, t, reset)
                : AttentionBlock(b, cfg, i, t, positions, length, windowMask!);
            x = b.Add(x, t);
            using (b.Scope("mlp_block"))
                x = b.Add(x, b.GatedMlp(RmsNorm(b, cfg, x, $"{p}.channel_pre_norm.weight"), $"{p}.mlp_block", cfg.Hidden, cfg.Intermediate, cfg.Activation, biases: true));
        }
        b.StateOutput(start, b.Add(start, length));

        x = RmsNorm(b, cfg, x, "model.final_norm.weight");
        b.LogitsOutput(b.SoftCap(b.LmHead(tables, x), cfg.SoftCap));
        return ExportedModel.DecoderOnly(b);
    }

    /// <summary>Gemma's RMSNorm scales by (1 + weight): the +1 is folded at conversion (one float32 add, as HF).</summary>
    private static Value RmsNorm(GraphBuilder b, Config cfg, Value x, string weightName) =>
        b.RmsNorm(x, weightName, cfg.Hidden, cfg.Epsilon, plusOne: true);

    private static Value RecurrentBlock(GraphBuilder b, Config cfg, int layer, Value x, Value reset)
    {
        using var _ = b.Scope("temporal_block");
        string p = $"model.layers.{layer}.temporal_block";
        var y = b.Activation(cfg.Activation, b.Linear(x, $"{p}.linear_y.weight", cfg.Hidden, cfg.LruWidth, $"{p}.linear_y.bias"));
        var u = b.Linear(x, $"{p}.linear_x.weight", cfg.Hidden, cfg.LruWidth, $"{p}.linear_x.bias");

        // lru_width channels (HF's _setup_cache sizes this by hidden_size, which only its prefill path overwrites).
        var convState = b.StateInput(layer, "conv_state", TensorDType.Float32, ["batch", cfg.LruWidth, cfg.ConvWidth - 1], 0);
        var conv = b.CausalConv1d(u, convState, $"{p}.conv_1d.weight", $"{p}.conv_1d.bias", cfg.LruWidth, cfg.ConvWidth);
        b.StateOutput(convState, conv.Window);

        var lruState = b.StateInput(layer, "rg_lru_state", TensorDType.Float32, ["batch", cfg.LruWidth], 0);
        var lru = b.RgLru(conv.Output, reset, lruState, $"{p}.rg_lru", cfg.LruWidth, cfg.Heads);
        b.StateOutput(lruState, lru.State);
        return b.Linear(b.Mul(lru.Output, y), $"{p}.linear_out.weight", cfg.LruWidth, cfg.Hidden, $"{p}.linear_out.bias");
    }

    private static Value AttentionBlock(GraphBuilder b, Config cfg, int layer, Value x, Value positions, Value length, Value mask)
    {
        using var _ = b.Scope("temporal_block");
        string p = $"model.layers.{layer}.temporal_block";
        long d = cfg.HeadDim;
        Value Project(string name, int heads)
        {
            var proj = b.Linear(x, $"{p}.{name}.weight", cfg.Hidden, heads * d, cfg.AttentionBias ? $"{p}.{name}.bias" : null);
            return b.SplitHeads(proj, heads, d);
        }
        var q = b.Rotary(Project("q_proj", cfg.Heads), positions, cfg.Theta, cfg.RotaryDim);
        var k = b.Rotary(Project("k_proj", cfg.KvHeads), positions, cfg.Theta, cfg.RotaryDim);
        var v = Project("v_proj", cfg.KvHeads);

        // The window's past keys, then the new ones: key positions start - (window - 1) .. start + T - 1.
        Dim[] cacheShape = ["batch", cfg.KvHeads, cfg.Window - 1, d];
        var pastK = b.StateInput(layer, "key", TensorDType.Float32, cacheShape, 0);
        var pastV = b.StateInput(layer, "value", TensorDType.Float32, cacheShape, 0);
        var keys = b.Concat(2, pastK, k);
        var values = b.Concat(2, pastV, v);
        // The last window - 1 of [past, new] start at index T; sliced from a run-time start so a window of 1 works too.
        var keep = b.Unsqueeze(length, 0);
        var end = b.Ints(long.MaxValue);
        b.StateOutput(pastK, b.Slice(keys, keep, end, [2]));
        b.StateOutput(pastV, b.Slice(values, keep, end, [2]));

        // HF scales by head_dim ** -0.5 (not by the query's own width).
        var attended = b.ScaledDotProductAttention(q, keys, values, (float)Math.Pow(d, -0.5), mask);   // [B, H, T, D]
        return b.Linear(b.MergeHeads(attended), $"{p}.o_proj.weight", cfg.Heads * d, cfg.Hidden, $"{p}.o_proj.bias");
    }


    /// <summary>
    /// True local attention as an additive bias [B, 1, T, window - 1 + T]: the query at position q sees the
    /// keys at positions q - window + 1 .. q that exist (>= 0). HF's own cached and uncached paths both
    /// depart from this past the window (see the golden quirks); the golden logits are this.
    /// </summary>
    private static Value LocalAttentionBias(GraphBuilder b, Config cfg, Value start, Value positions, Value length)
    {
        using var _ = b.Scope("local_mask");
        long past = cfg.Window - 1;
        var slots = b.Range(b.Constant(0L), b.Add(length, b.Constant(past)), b.Constant(1L));          // [S]
        var keyPositions = b.Add(b.Unsqueeze(b.Sub(start, b.Constant(past)), 1), slots);              // [B, S]
        var distance = b.Sub(b.Unsqueeze(positions, 2), b.Unsqueeze(keyPositions, 1));                 // [B, T, S]
        var visible = b.And(
            b.And(b.GreaterOrEqual(distance, b.Constant(0L)), b.Less(distance, b.Constant((long)cfg.Window))),
            b.Unsqueeze(b.GreaterOrEqual(keyPositions, b.Constant(0L)), 1));
        // The most negative float32, as HF's masks: every query sees at least itself, so no row is all masked.
        return b.Unsqueeze(b.Where(visible, b.Constant(0f), b.Constant(float.MinValue)), 1);          // [B, 1, T, S]
    }
}
