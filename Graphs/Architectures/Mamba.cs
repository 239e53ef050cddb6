using Recur.Graphs.Config;
using Recur.Graphs.Ir;
using Recur.Graphs.Weights;

namespace Recur.Graphs.Architectures;

/// <summary>What sets Falcon-Mamba apart from Mamba: data, not a subclass.</summary>
/// <param name="Norms">How the mixer normalises its time step, B and C; <paramref name="NormEpsilonKey"/> names their eps in config.json.</param>
public sealed record MambaVariant(string ModelType, string HfClass, MixerNorms Norms, string? NormEpsilonKey, double NormEpsilonDefault)
{
    public static readonly MambaVariant Mamba = new("mamba", "MambaForCausalLM", MixerNorms.None, null, 0);
    /// <summary>FalconMambaConfig.mixer_rms_eps defaults to 1e-6 (the block norms keep layer_norm_epsilon).</summary>
    public static readonly MambaVariant FalconMamba = new("falcon_mamba", "FalconMambaForCausalLM", MixerNorms.Weightless, "mixer_rms_eps", 1e-6);
}

/// <summary>
/// Mamba and Falcon-Mamba (Hugging Face MambaForCausalLM, modeling_mamba.py; FalconMambaForCausalLM,
/// modeling_falcon_mamba.py; v4.46.1, the slow_forward path).
/// <code>
/// x = emb(ids)
/// per layer:  x = x + mamba_mixer(rms_norm(x))                   see GraphBuilder.MambaMixer
///   Falcon-Mamba only: the mixer's time step, B and C are RMS-normalised without a weight (eps mixer_rms_eps)
/// logits = lm_head(rms_norm_f(x))                                 lm_head tied to emb by default
/// </code>
/// State per layer i (float32, zeros at the start): past_key_values.i.conv_state [batch, I, K-1] (the
/// last K-1 inputs of the convolution; Hugging Face's MambaCache keeps K) and past_key_values.i.ssm_state
/// [batch, I, N]. Unlike Hugging Face's cache, any number of tokens may follow a prefill in one call.
/// </summary>
public sealed class Mamba(MambaVariant variant) : IArchitecture
{
    public string ModelType => variant.ModelType;
    public string HfClass => variant.HfClass;

    /// <summary>The MambaConfig / FalconMambaConfig fields the graph depends on (defaults as theirs).</summary>
    private sealed record Config(int Vocab, int Hidden, int Layers, float Epsilon, bool TieEmbeddings, MambaMixerShape Mixer)
    {
        public static Config Read(ModelConfig c, MambaVariant variant)
        {
            int hidden = c.Positive("hidden_size");
            double expand = c.Double("expand", 2);
            if (!(expand > 0)) throw c.Invalid("expand", Text(expand), "a positive number");
            // MambaConfig sets int(expand * hidden_size), but an intermediate_size in config.json overrides it.
            int intermediate = c.Positive("intermediate_size", (int)(expand * hidden));
            string act = c.String("hidden_act", "silu");
            // The mixer applies hidden_act after the conv and to the gate; HF's kernels know only SiLU.
            if (act is not ("silu" or "swish")) throw c.Invalid("hidden_act", $"'{act}'", "'silu' (the only activation Mamba's mixer supports)");
            // residual_in_fp32 keeps the residual stream in float32: Recur's activations always are, so it is honoured either way.
            c.Bool("residual_in_fp32", true);
            double mixerEps = variant.NormEpsilonKey is string key ? c.Double(key, variant.NormEpsilonDefault) : 0;
            if (variant.NormEpsilonKey is string k && !(mixerEps > 0)) throw c.Invalid(k, Text(mixerEps), "a positive number");
            return new Config(
                Vocab: c.Positive("vocab_size"),
                Hidden: hidden,
                Layers: c.Positive("num_hidden_layers"),
                Epsilon: (float)c.Double("layer_norm_epsilon", 1e-5),
                TieEmbeddings: c.Bool("tie_word_embeddings", true),
                Mixer: new MambaMixerShape(hidden, intermediate, c.Positive("state_size"), MambaMixerShape.ReadConvKernel(c, "conv_kernel"),
                    MambaMixerShape.ReadTimeStepRank(c, "time_step_rank", hidden),
                    ProjectionBias: c.Bool("use_bias", true), ConvBias: c.Bool("use_conv_bias", true), variant.Norms, (float)mixerEps));
        }

        private static string Text(double v) => v.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    public ExportedModel Build(ModelConfig modelConfig, WeightPuller weights, ExportOptions options)
    {
        var cfg = Config.Read(modelConfig, variant);
        var b = new GraphBuilder(variant.ModelType, options.Opset, weights) { MatrixWeightType = options.MatrixWeightType, Quantization = options.Quantization };
        b.MambaBackbone(cfg.Vocab, cfg.Hidden, cfg.Layers, cfg.Epsilon, cfg.TieEmbeddings,
            (i, normed) => b.MambaMixer(normed, $"backbone.layers.{i}.mixer", cfg.Mixer, i));
        return ExportedModel.DecoderOnly(b);
    }
}
