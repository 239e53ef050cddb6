using System.Globalization;
using Recur.Graphs.Config;
using Recur.Graphs.Ir;
using Recur.Graphs.Weights;

namespace Recur.Graphs.Architectures;

/// <summary>
/// Mamba-2 (Hugging Face Mamba2ForCausalLM, modeling_mamba2.py; the math of its single-token branch and of
/// mamba_ssm, see the notes on 4.46.1's multi-token branch below).
/// <code>
/// x = emb(ids)
/// per layer:  u = rms_norm(x)
///   gate, xBC, dt = split(in_proj(u))                        [I], [I + 2 G N], [H]     I = H P = expand * hidden
///   xBC = silu(causal_depthwise_conv1d(xBC))                 kernel K, window of K-1 as state
///   xs, Bm, Cm = split(xBC)                                  [H, P], [G, N], [G, N]: head h reads group h / (H / G)
///   dt = clamp(softplus(dt + dt_bias), time_step_limit)      [H], float32
///   y = ssd(xs, dt, A = -exp(A_log), Bm, Cm, D)              h [B, H, P, N] as state; chunks of chunk_size
///   y = rms_norm(y * silu(gate))                             over the whole width I (HF's MambaRMSNormGated)
///   x = x + out_proj(y)
/// logits = lm_head(rms_norm_f(x))
/// </code>
/// State per layer i (float32, zeros at the start): past_key_values.i.conv_state [batch, I + 2 G N, K-1] (the
/// last K-1 inputs of the convolution, x|B|C channels; Mamba2Cache keeps K) and past_key_values.i.ssm_state
/// [batch, H, P, N]. Any number of tokens may follow a prefill in one call.
/// Hugging Face 4.46.1's multi-token branch tiles the B/C groups over the heads (head h reads group
/// h % G) and sums the inter-chunk state over the wrong axis; both were fixed upstream. Its single-token
/// branch and mamba_ssm give head h group h / (H / G), as this graph does (tests/golden/mamba2/expected.json).
/// </summary>
public sealed class Mamba2 : IArchitecture
{
    public string ModelType => "mamba2";
    public string HfClass => "Mamba2ForCausalLM";

    /// <summary>The Mamba2Config fields the graph depends on (defaults as Mamba2Config's).</summary>
    private sealed record Config(int Vocab, int Hidden, int Heads, int HeadDim, int Groups, int StateSize, int ConvKernel,
        int ChunkSize, int Layers, float Epsilon, float TimeStepFloor, float TimeStepCeiling, bool UseBias, bool UseConvBias,
        bool TieEmbeddings)
    {
        public int Intermediate => Heads * HeadDim;
        public int ConvChannels => Intermediate + 2 * Groups * StateSize;

        public static Config Read(ModelConfig c)
        {
            int hidden = c.Positive("hidden_size");
            double expand = c.Double("expand", 2);
            if (!(expand > 0)) throw c.Invalid("expand", Text(expand), "a positive number");
            int heads = c.Positive("num_heads", 128), headDim = c.Positive("head_dim", 64), groups = c.Positive("n_groups", 8);
            // The mixer reshapes the int(expand * hidden_size) channels into num_heads x head_dim.
            int intermediate = (int)(expand * hidden);
            if (heads * headDim != intermediate)
                throw c.Invalid("num_heads", $"{heads} (x head_dim {headDim} = {heads * headDim})", $"num_heads x head_dim = expand x hidden_size = {intermediate}");
            if (heads % groups != 0) throw c.Invalid("n_groups", Text(groups), $"a divisor of num_heads {heads}");
            int kernel = c.Positive("conv_kernel", 4);
            if (kernel < 2) throw c.Invalid("conv_kernel", Text(kernel), "at least 2");
            string act = c.String("hidden_act", "silu");
            // The mixer applies hidden_act after the conv and to the gate; mamba_ssm's kernels know only SiLU.
            if (act is not ("silu" or "swish")) throw c.Invalid("hidden_act", $"'{act}'", "'silu' (the only activation Mamba-2's mixer supports)");
            // residual_in_fp32 keeps the residual stream in float32: Recur's activations always are, so it is honoured either way.
            c.Bool("residual_in_fp32", true);
            var (floor, ceiling) = ReadTimeStepLimit(c);
            return new Config(
                Vocab: c.Positive("vocab_size"),
                Hidden: hidden,
                Heads: heads,
                HeadDim: headDim,
                Groups: groups,
                StateSize: c.Positive("state_size", 128),
                ConvKernel: kernel,
                ChunkSize: c.Positive("chunk_size", 256),
                Layers: c.Positive("num_hidden_layers"),
                Epsilon: (float)c.Double("layer_norm_epsilon", 1e-5),
                TimeStepFloor: floor,
                TimeStepCeiling: ceiling,
                UseBias: c.Bool("use_bias", false),
                UseConvBias: c.Bool("use_conv_bias", true),
                TieEmbeddings: c.Bool("tie_word_embeddings", false));
        }

        /// <summary>
        /// dt is clamped to time_step_limit (default [0, inf], i.e. no clamp), as mamba_ssm's kernels (dt_limit),
        /// Hugging Face's CUDA path and its torch path after the fix of PR #35154 do. 4.46.1's torch path clamps
        /// below at time_step_min instead; real checkpoints were trained with the kernels' reading.
        /// </summary>
        private static (float Floor, float Ceiling) ReadTimeStepLimit(ModelConfig c)
        {
            if (!c.Has("time_step_limit")) return (0f, float.PositiveInfinity);
            var limit = c.Doubles("time_step_limit");
            string found = "[" + string.Join(", ", limit.Select(Text)) + "]";
            if (limit.Count != 2 || double.IsNaN(limit[0]) || double.IsNaN(limit[1]) || limit[0] < 0 || limit[1] < limit[0])
                throw c.Invalid("time_step_limit", found, "[low, high] with 0 <= low <= high (high may be Infinity)");
            return ((float)limit[0], (float)limit[1]);
        }

        private static string Text(double v) => v.ToString(CultureInfo.InvariantCulture);
    }

    public ExportedModel Build(ModelConfig modelConfig, WeightPuller weights, ExportOptions options)
    {
        var cfg = Config.Read(modelConfig);
        var b = new GraphBuilder("mamba2", options.Opset, weights) { MatrixWeightType = options.MatrixWeightType, Quantization = options.Quantization };
        b.MambaBackbone(cfg.Vocab, cfg.Hidden, cfg.Layers, cfg.Epsilon, cfg.TieEmbeddings, (i, u) => Mixer(b, cfg, i, u));
        return ExportedModel.DecoderOnly(b);
    }

    private static Value Mixer(GraphBuilder b, Config cfg, int layer, Value u)
    {
        using var _ = b.Scope("mixer");
        string p = $"backbone.layers.{layer}.mixer";
        long inner = cfg.Intermediate, groupWidth = (long)cfg.Groups * cfg.StateSize, channels = cfg.ConvChannels;

        // in_proj's rows: gate z, then the conv's x|B|C channels, then one dt per head (no extra MLP rows).
        var projected = b.Linear(u, $"{p}.in_proj.weight", cfg.Hidden, inner + channels + cfg.Heads, cfg.UseBias ? $"{p}.in_proj.bias" : null);
        var parts = b.Split(projected, -1, inner, channels, cfg.Heads);
        Value gate = parts[0], xbc = parts[1], dt = parts[2];

        var convState = b.StateInput(layer, "conv_state", TensorDType.Float32, ["batch", channels, cfg.ConvKernel - 1], 0);
        var conv = b.CausalConv1d(xbc, convState, $"{p}.conv1d.weight", cfg.UseConvBias ? $"{p}.conv1d.bias" : null, channels, cfg.ConvKernel);
        b.StateOutput(convState, conv.Window);
        var xBC = b.Split(b.Silu(conv.Output), -1, inner, groupWidth, groupWidth);     // x, B, C
        var xs = b.Reshape(xBC[0], 0, 0, cfg.Heads, cfg.HeadDim);                      // [B, T, H, P]
        var bm = b.Reshape(xBC[1], 0, 0, cfg.Groups, cfg.StateSize);                   // [B, T, G, N]
        var cm = b.Reshape(xBC[2], 0, 0, cfg.Groups, cfg.StateSize);

        dt = b.TorchSoftplus(b.Add(dt, b.Weight($"{p}.dt_bias", [cfg.Heads])));
        if (cfg.TimeStepFloor > 0) dt = b.Max(dt, b.Constant(cfg.TimeStepFloor));      // softplus is > 0 already: a floor of 0 is no clamp
        if (float.IsFinite(cfg.TimeStepCeiling)) dt = b.Min(dt, b.Constant(cfg.TimeStepCeiling));
        var a = b.Weight($"{p}.A_log", [cfg.Heads], fold: v => -MathF.Exp(v));       // folded at conversion: A = -exp(A_log), in float32 as HF
        var d = b.Weight($"{p}.D", [cfg.Heads]);

        var ssmState = b.StateInput(layer, "ssm_state", TensorDType.Float32, ["batch", cfg.Heads, cfg.HeadDim, cfg.StateSize], 0);
        var scan = b.StateSpaceDuality(xs, dt, a, bm, cm, d, ssmState, cfg.ChunkSize);
        b.StateOutput(ssmState, scan.State);

        // Gate first, then normalise over the whole width I (HF's MambaRMSNormGated; mamba_ssm's per-group norm differs).
        var y = b.Mul(b.Reshape(scan.Output, 0, 0, inner), b.Silu(gate));
        y = b.RmsNorm(y, $"{p}.norm.weight", inner, cfg.Epsilon);
        return b.Linear(y, $"{p}.out_proj.weight", inner, cfg.Hidden, cfg.UseBias ? $"{p}.out_proj.bias" : null);
    }
}
