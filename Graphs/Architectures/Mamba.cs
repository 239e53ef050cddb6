using Recur.Graphs.Config;
using Recur.Graphs.Ir;
using Recur.Graphs.Weights;

namespace Recur.Graphs.Architectures;

/// <summary>
/// Mamba (Hugging Face MambaForCausalLM, modeling_mamba.py, the slow_forward path).
/// <code>
/// x = emb(ids)
/// per layer:  u = rms_norm(x)
///   xs, gate = split(in_proj(u))                                  [B, T, I] each, I = intermediate
///   xs = silu(causal_depthwise_conv1d(xs))                        kernel K, window of K-1 as state
///   dt, Bm, Cm = split(x_proj(xs))                                [R], [N], [N]
///   dt = softplus(dt_proj(dt))                                    float32
///   y = selective_scan(xs, dt, A = -exp(A_log), Bm, Cm, D)        h [B, I, N] as state
///   x = x + out_proj(y * silu(gate))
/// logits = lm_head(rms_norm_f(x))                                 lm_head tied to emb by default
/// </code>
/// State per layer i (float32, zeros at the start): past_key_values.i.conv_state [batch, I, K-1] (the
/// last K-1 inputs of the convolution; Hugging Face's MambaCache keeps K) and past_key_values.i.ssm_state
/// [batch, I, N]. Unlike Hugging Face's cache, any number of tokens may follow a prefill in one call.
/// </summary>
public sealed class Mamba : IArchitecture
{
    public string ModelType => "mamba";
    public string HfClass => "MambaForCausalLM";

    /// <summary>The MambaConfig fields the graph depends on (defaults as MambaConfig's).</summary>
    private sealed record Config(int Vocab, int Hidden, int Intermediate, int StateSize, int ConvKernel, int TimeStepRank,
        int Layers, float Epsilon, bool UseBias, bool UseConvBias, bool TieEmbeddings)
    {
        public static Config Read(ModelConfig c)
        {
            int hidden = c.Positive("hidden_size");
            double expand = c.Double("expand", 2);
            if (!(expand > 0)) throw c.Invalid("expand", Text(expand), "a positive number");
            // MambaConfig sets int(expand * hidden_size), but an intermediate_size in config.json overrides it.
            int intermediate = c.Positive("intermediate_size", (int)(expand * hidden));
            int kernel = c.Positive("conv_kernel", 4);
            if (kernel < 2) throw c.Invalid("conv_kernel", Text(kernel), "at least 2");
            string act = c.String("hidden_act", "silu");
            // The mixer applies hidden_act after the conv and to the gate; HF's kernels know only SiLU.
            if (act is not ("silu" or "swish")) throw c.Invalid("hidden_act", $"'{act}'", "'silu' (the only activation Mamba's mixer supports)");
            // residual_in_fp32 keeps the residual stream in float32: Recur's activations always are, so it is honoured either way.
            c.Bool("residual_in_fp32", true);
            return new Config(
                Vocab: c.Positive("vocab_size"),
                Hidden: hidden,
                Intermediate: intermediate,
                StateSize: c.Positive("state_size"),
                ConvKernel: kernel,
                TimeStepRank: ReadTimeStepRank(c, hidden),
                Layers: c.Positive("num_hidden_layers"),
                Epsilon: (float)c.Double("layer_norm_epsilon", 1e-5),
                UseBias: c.Bool("use_bias", true),
                UseConvBias: c.Bool("use_conv_bias", true),
                TieEmbeddings: c.Bool("tie_word_embeddings", true));
        }

        /// <summary>time_step_rank is an integer or "auto" (= ceil(hidden_size / 16)).</summary>
        private static int ReadTimeStepRank(ModelConfig c, int hidden)
        {
            if (!c.Has("time_step_rank")) return (hidden + 15) / 16;
            if (c.Scalars().TryGetValue("time_step_rank", out var v) && v is string s)
                return s == "auto" ? (hidden + 15) / 16 : throw c.Invalid("time_step_rank", $"'{s}'", "a positive integer or 'auto'");
            return c.Positive("time_step_rank");
        }

        private static string Text(double v) => v.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    public ExportedModel Build(ModelConfig modelConfig, WeightPuller weights, ExportOptions options)
    {
        var cfg = Config.Read(modelConfig);
        var b = new GraphBuilder("mamba", options.Opset, weights) { MatrixWeightType = options.MatrixWeightType, Quantization = options.Quantization };
        b.MambaBackbone(cfg.Vocab, cfg.Hidden, cfg.Layers, cfg.Epsilon, cfg.TieEmbeddings, (i, u) => Mixer(b, cfg, i, u));
        return ExportedModel.DecoderOnly(b);
    }

    private static Value Mixer(GraphBuilder b, Config cfg, int layer, Value u)
    {
        using var _ = b.Scope("mixer");
        string p = $"backbone.layers.{layer}.mixer";
        long inner = cfg.Intermediate, n = cfg.StateSize;

        var projected = b.Linear(u, $"{p}.in_proj.weight", cfg.Hidden, 2 * inner, cfg.UseBias ? $"{p}.in_proj.bias" : null);
        var halves = b.Split(projected, -1, inner, inner);                 // HF chunks hidden_states first, then gate
        Value xs = halves[0], gate = halves[1];

        var convState = b.StateInput(layer, "conv_state", TensorDType.Float32, ["batch", inner, cfg.ConvKernel - 1], 0);
        var conv = b.CausalConv1d(xs, convState, $"{p}.conv1d.weight", cfg.UseConvBias ? $"{p}.conv1d.bias" : null, inner, cfg.ConvKernel);
        b.StateOutput(convState, conv.Window);
        xs = b.Silu(conv.Output);

        var ssm = b.Linear(xs, $"{p}.x_proj.weight", inner, cfg.TimeStepRank + 2 * n);
        var parts = b.Split(ssm, -1, cfg.TimeStepRank, n, n);              // time_step, B, C
        var dt = b.TorchSoftplus(b.Linear(parts[0], $"{p}.dt_proj.weight", cfg.TimeStepRank, inner, $"{p}.dt_proj.bias"));
        var a = b.Weight($"{p}.A_log", [inner, n], fold: v => -MathF.Exp(v)); // folded at conversion: A = -exp(A_log), in float32 as HF
        var d = b.Weight($"{p}.D", [inner]);

        var ssmState = b.StateInput(layer, "ssm_state", TensorDType.Float32, ["batch", inner, n], 0);
        var scan = b.SelectiveScan(xs, dt, a, parts[1], parts[2], d, ssmState);
        b.StateOutput(ssmState, scan.State);

        var y = b.Mul(scan.Output, b.Silu(gate));
        return b.Linear(y, $"{p}.out_proj.weight", inner, cfg.Hidden, cfg.UseBias ? $"{p}.out_proj.bias" : null);
    }
}
