using Recur.Package;
using Recur.Graphs.Config;
using Recur.Graphs.Ir;
using Recur.Graphs.Weights;

namespace Recur.Graphs.Architectures;

/// <summary>
/// RWKV-7 "Goose" (x070), as BlinkDL's reference RWKV-v7/rwkv_v7_demo_rnn.py computes it; weights under the names
/// of flash-linear-attention's RWKV7ForCausalLM (modeling_rwkv7.py, model_type rwkv7). BlinkDL's .pth files are
/// presented under those names by Rwkv7OriginalNames.
/// <code>
/// x = pre_norm(emb(ids))                                               (block 0; BlinkDL folds ln0 into emb)
/// per block:  a = attn_norm(x);  d = shift(a) - a                      time mix
///   x? = a + d * x_?   for ? in r w k v a g
///   r = R xr;  k = K xk;  v = V xv
///   w = exp(-0.606531 * sigmoid(w0 + tanh(xw W1) W2))                  decay, float32
///   v = v + (v_first - v) * sigmoid(v0 + xv V1 V2)                     blocks > 0; block 0 sets v_first = v
///   a = sigmoid(a0 + xa A1 A2);   g = sigmoid(xg G1) G2
///   kk = normalize(k * k_k) per head;   k = k * (1 + (a - 1) * k_a)
///   S = S diag(w) + (S (-kk)) (kk a)^T + v k^T;   o = S r              per head, S [N, N]
///   o = group_norm(o, heads) + sum(r * k * r_k per head) * v
///   x = x + O (o * g)
///             f = ffn_norm(x);  x = x + Value(relu(Key(f + (shift(f) - f) * x_k))^2)      channel mix
/// logits = lm_head(norm(x))
/// </code>
/// State per layer i (float32, zeros at the start): past_key_values.i.attn_shift and .ffn_shift [batch, hidden]
/// (the last normed input of each mix) and .wkv_state [batch, heads, head_size, head_size] indexed [value, key].
/// </summary>
public sealed class Rwkv7 : IArchitecture
{
    public string ModelType => "rwkv7";
    public string HfClass => "RWKV7ForCausalLM";

    /// <summary>
    /// The RWKV7Config fields the graph depends on (fla's names and defaults). BlinkDL's checkpoints carry no
    /// config: one inferred from their shapes uses the same fields (head_size and layer_norm_epsilon are accepted too).
    /// </summary>
    private sealed record Config(int Vocab, int Hidden, int Heads, int HeadSize, int Intermediate, int Layers,
        int DecayRank, int ARank, int VRank, int GateRank, float Epsilon, float GroupEpsilon, bool PreNorm)
    {
        public static Config Read(ModelConfig c)
        {
            int hidden = c.Positive("hidden_size");
            int headSize = c.Has("head_dim") ? c.Positive("head_dim") : c.Positive("head_size", c.Has("num_heads") ? hidden / c.Positive("num_heads") : 64);
            if (hidden % headSize != 0) throw c.Invalid("head_dim", Text(headSize), $"a divisor of hidden_size {hidden}");
            int heads = c.Positive("num_heads", hidden / headSize);
            if (heads * headSize != hidden) throw c.Invalid("num_heads", Text(heads), $"hidden_size / head_dim = {hidden / headSize}");
            double ratio = c.Double("hidden_ratio", 4);
            // RWKV7FeedForward: int(hidden * hidden_ratio) rounded up to a multiple of 32 unless intermediate_size is given.
            int intermediate = c.Positive("intermediate_size", (int)(hidden * ratio + 31) / 32 * 32);
            string act = c.String("hidden_act", "sqrelu");
            if (act != "sqrelu") throw c.Invalid("hidden_act", $"'{act}'", "'sqrelu' (RWKV-7's channel mixing)");
            if (c.Has("attn")) throw new NotSupportedException($"{c.Path}: field 'attn' makes a hybrid with attention layers; Recur converts pure RWKV-7 only (attn null)");
            if (c.Has("value_dim") && !ValueDimIsHidden(c, hidden))
                throw new NotSupportedException($"{c.Path}: field 'value_dim' differs from hidden_size {hidden}; Recur converts RWKV-7 with value_dim = hidden_size only");
            if (!c.Bool("norm_bias", true)) throw c.Invalid("norm_bias", "false", "true (RWKV-7's LayerNorms have biases)");
            if (c.Bool("tie_word_embeddings", false)) throw c.Invalid("tie_word_embeddings", "true", "false (RWKV-7 has its own head)");
            float eps = (float)c.Double("norm_eps", c.Double("layer_norm_epsilon", 1e-5));
            return new Config(
                Vocab: c.Positive("vocab_size"),
                Hidden: hidden,
                Heads: heads,
                HeadSize: headSize,
                Intermediate: intermediate,
                Layers: c.Positive("num_hidden_layers"),
                DecayRank: c.Positive("decay_low_rank_dim", 64),
                ARank: c.Positive("a_low_rank_dim", 64),
                VRank: c.Positive("v_low_rank_dim", 16),
                GateRank: c.Positive("gate_low_rank_dim", 128),
                Epsilon: eps,
                // fla: head_dim * norm_eps; BlinkDL's reference: 64e-5 whatever the head size (a config inferred from a .pth says so).
                GroupEpsilon: (float)c.Double("group_norm_epsilon", headSize * (double)eps),
                PreNorm: c.Bool("norm_first", true));
        }

        /// <summary>fla's value_dim: one size or one per layer; RWKV-7's released models keep it at hidden_size.</summary>
        private static bool ValueDimIsHidden(ModelConfig c, int hidden) =>
            (c.Scalars().ContainsKey("value_dim") ? [c.Int("value_dim")] : c.Ints("value_dim")).All(d => d == hidden);

        private static string Text(int v) => v.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    public ExportedModel Build(ModelConfig modelConfig, WeightPuller weights, ExportOptions options)
    {
        var cfg = Config.Read(modelConfig);
        var b = new GraphBuilder("rwkv7", options.Opset, weights) { MatrixWeightType = options.MatrixWeightType, Quantization = options.Quantization };
        var ids = b.Input(Contract.InputIds, TensorDType.Int64, "batch", "sequence");

        var tables = b.Embeddings("model.embeddings.weight", cfg.Vocab, cfg.Hidden, tied: false, "lm_head.weight");
        var x = b.Embed(tables, ids);
        Value? vFirst = null;
        for (int i = 0; i < cfg.Layers; i++)
        {
            using var _ = b.Scope($"layers.{i}");
            string p = $"model.layers.{i}";
            if (i == 0 && cfg.PreNorm) x = b.LayerNorm(x, $"{p}.pre_norm.weight", $"{p}.pre_norm.bias", cfg.Hidden, cfg.Epsilon);
            var (mixed, v) = TimeMix(b, cfg, i, b.LayerNorm(x, $"{p}.attn_norm.weight", $"{p}.attn_norm.bias", cfg.Hidden, cfg.Epsilon), vFirst);
            vFirst ??= v;
            x = b.Add(x, mixed);
            x = b.Add(x, ChannelMix(b, cfg, i, b.LayerNorm(x, $"{p}.ffn_norm.weight", $"{p}.ffn_norm.bias", cfg.Hidden, cfg.Epsilon)));
        }
        x = b.LayerNorm(x, "model.norm.weight", "model.norm.bias", cfg.Hidden, cfg.Epsilon);
        b.LogitsOutput(b.LmHead(tables, x));
        return ExportedModel.DecoderOnly(b);
    }

    /// <summary>The time mix of one block; returns its output and this block's v (block 0's is v_first).</summary>
    private static (Value Output, Value V) TimeMix(GraphBuilder b, Config cfg, int layer, Value x, Value? vFirst)
    {
        using var _ = b.Scope("attn");
        string p = $"model.layers.{layer}.attn";
        long c = cfg.Hidden, h = cfg.Heads, n = cfg.HeadSize;
        var shiftState = b.StateInput(layer, "attn_shift", TensorDType.Float32, ["batch", c], 0);
        var (shifted, last) = b.TokenShift(x, shiftState);
        b.StateOutput(shiftState, last);
        var delta = b.Sub(shifted, x);
        Value Mix(int row) => b.Add(x, b.Mul(delta, MixVector(b, p, row, c)));
        Value xr = Mix(0), xw = Mix(1), xk = Mix(2), xv = Mix(3), xa = Mix(4), xg = Mix(5);

        var r = b.Linear(xr, $"{p}.r_proj.weight", c, c);
        // exp(-exp(-softplus(-d) - 0.5)) folded: exp(-0.606531 * sigmoid(d)); 0.606531 is the reference's rounding of exp(-0.5).
        var w = b.Exp(b.Mul(b.Sigmoid(Lora(b, xw, $"{p}.w_lora", c, cfg.DecayRank, b.Tanh, bias: true)), -0.606531f));
        var k = b.Linear(xk, $"{p}.k_proj.weight", c, c);
        var v = b.Linear(xv, $"{p}.v_proj.weight", c, c);
        // BlinkDL's trainer gives block 0 a value LoRA too, but block 0's v is v_first itself: the forward never reads it.
        if (vFirst is null)
            foreach (var unused in new[] { "lora.0.weight", "lora.2.weight", "lora.2.bias" }) b.Weights!.Ignore($"{p}.v_lora.{unused}");
        else
            v = b.Add(v, b.Mul(b.Sub(vFirst, v), b.Sigmoid(Lora(b, xv, $"{p}.v_lora", c, cfg.VRank, null, bias: true))));
        var a = b.Sigmoid(Lora(b, xa, $"{p}.a_lora", c, cfg.ARank, null, bias: true));
        var g = Lora(b, xg, $"{p}.g_lora", c, cfg.GateRank, b.Sigmoid, bias: false);

        var kk = L2NormalizePerHead(b, b.Mul(k, b.Weight($"{p}.k_k", [c])), h, n);
        k = b.Mul(k, b.Add(b.Mul(b.Sub(a, 1f), b.Weight($"{p}.k_a", [c])), b.Constant(1f)));

        var wkv = b.StateInput(layer, "wkv_state", TensorDType.Float32, ["batch", h, n, n], 0);
        var (o, next) = b.DeltaRuleScan(r, w, k, v, b.Neg(kk), b.Mul(kk, a), wkv, h, n);
        b.StateOutput(wkv, next);

        o = b.GroupNorm(o, $"{p}.g_norm.weight", $"{p}.g_norm.bias", h, n, cfg.GroupEpsilon);
        // The bonus of the current token: per head, (r . (k * r_k)) v.
        var rk = b.ReduceSum(b.Reshape(b.Mul(b.Mul(r, k), b.Weight($"{p}.r_k", [h, n], reshape: [c])), 0, 0, h, n), [-1]);   // [B, T, H, 1]
        o = b.Add(o, b.Reshape(b.Mul(rk, b.Reshape(v, 0, 0, h, n)), 0, 0, c));
        return (b.Linear(b.Mul(o, g), $"{p}.o_proj.weight", c, c), v);
    }

    /// <summary>
    /// The time-mix vector x_r, x_w, x_k, x_v, x_a or x_g (row 0..5) as [1, 1, C]. fla's checkpoints from January to
    /// April 2025 stack the six as one x_x [6, C] (its load_state_dict still splits that); the row is cut out at conversion.
    /// </summary>
    private static Value MixVector(GraphBuilder b, string p, int row, long c)
    {
        string stacked = $"{p}.x_x";
        if (!b.HasWeight(stacked)) return b.Weight($"{p}.x_{"rwkvag"[row]}", [1, 1, c]);
        b.Weights!.Entry(stacked, [6, c]);
        return b.Derived($"{stacked}.{row}", TensorDType.Float32, [1, 1, c], [stacked], read => read(stacked).AsSpan((int)(row * c), (int)c).ToArray());
    }

    private static Value ChannelMix(GraphBuilder b, Config cfg, int layer, Value f)
    {
        using var _ = b.Scope("ffn");
        string p = $"model.layers.{layer}.ffn";
        var shiftState = b.StateInput(layer, "ffn_shift", TensorDType.Float32, ["batch", cfg.Hidden], 0);
        var (shifted, last) = b.TokenShift(f, shiftState);
        b.StateOutput(shiftState, last);
        var xk = b.Add(f, b.Mul(b.Sub(shifted, f), b.Weight($"{p}.x_k", [cfg.Hidden])));
        var k = b.Relu(b.Linear(xk, $"{p}.key.weight", cfg.Hidden, cfg.Intermediate));
        return b.Linear(b.Mul(k, k), $"{p}.value.weight", cfg.Intermediate, cfg.Hidden);
    }

    /// <summary>fla's LoRA: lora.2(activation(lora.0(x))), lora.2 with a bias (BlinkDL's w0, a0, v0) or none.</summary>
    private static Value Lora(GraphBuilder b, Value x, string prefix, long hidden, long rank, Func<Value, Value>? activation, bool bias)
    {
        var down = b.Linear(x, $"{prefix}.lora.0.weight", hidden, rank);
        if (activation is not null) down = activation(down);
        return b.Linear(down, $"{prefix}.lora.2.weight", rank, hidden, bias ? $"{prefix}.lora.2.bias" : null);
    }

    /// <summary>F.normalize(x, dim=-1) per head: x / max(||x||, 1e-12), over [B, T, H, N].</summary>
    private static Value L2NormalizePerHead(GraphBuilder b, Value x, long heads, long size)
    {
        var grouped = b.Reshape(x, 0, 0, heads, size);
        var norm = b.Sqrt(b.ReduceSum(b.Mul(grouped, grouped), [-1]));
        return b.Reshape(b.Div(grouped, b.Max(norm, b.Constant(1e-12f))), 0, 0, heads * size);
    }
}
