using System.Text.Json.Nodes;
using Recur.Graphs.Config;

namespace Recur.Export.Checkpoints;

/// <summary>
/// The config.json of the original state-spaces repositories (mamba_ssm's MambaConfig: d_model, n_layer,
/// vocab_size, ssm_cfg, pad_vocab_size_multiple, ...) read as the Hugging Face config it converts to, for both
/// Mamba generations (ssm_cfg.layer "Mamba1", the default, or "Mamba2"). As transformers'
/// convert_mamba_ssm_checkpoint_to_pytorch.py and convert_mamba2_ssm_checkpoint_to_pytorch.py:
/// <code>
/// d_model -> hidden_size      n_layer -> num_hidden_layers      tie_embeddings -> tie_word_embeddings
/// vocab_size rounded up to pad_vocab_size_multiple (mamba_ssm pads its embedding table so)
/// Mamba1: intermediate_size = expand * d_model, time_step_rank = ceil(d_model / 16) ("auto")
/// Mamba2: num_heads = expand * d_model / headdim; bos = eos = pad = 0
/// </code>
/// where those scripts take Hugging Face's defaults for the mixer, the sizes mamba_ssm's own ssm_cfg may set
/// (d_state, d_conv, expand, headdim, ngroups, chunk_size, dt_limit, bias, conv_bias) are read from it, with
/// mamba_ssm's defaults, which are the same numbers. The weights keep their names but "embedding.", which
/// the architectures accept as Hugging Face's load hooks do. Options mamba_ssm has and the Hugging Face
/// classes do not (a per-layer MLP, attention layers, LayerNorm, a partial SSM width, the norm before the
/// gate) are refused by name. With ngroups > 1 mamba_ssm normalises the gated output per group while
/// Mamba2ForCausalLM normalises the whole width; this converts to what Mamba2ForCausalLM computes (the
/// state-spaces Mamba-2 checkpoints have ngroups 1, where the two agree).
/// </summary>
public static class MambaOriginalConfig
{
    /// <summary>A config.json without model_type that has mamba_ssm's d_model and n_layer.</summary>
    public static bool Matches(ModelConfig config) => !config.Has("model_type") && config.Has("d_model") && config.Has("n_layer");

    /// <summary>The Hugging Face config the original one converts to (errors name the original fields).</summary>
    public static ModelConfig ToHuggingFace(ModelConfig original)
    {
        var ssm = original.Section("ssm_cfg");
        string layer = ssm.String("layer", "Mamba1");
        if (layer is not ("Mamba1" or "Mamba2")) throw ssm.Invalid("layer", $"'{layer}'", "'Mamba1' or 'Mamba2'");
        if (original.Int("d_intermediate", 0) != 0)
            throw new NotSupportedException($"{original.Path}: field 'd_intermediate' is {original.Int("d_intermediate")}: a gated MLP after each mixer is not part of {HfClass(layer)}; only 0 converts");
        if (original.Has("attn_layer_idx") && original.Doubles("attn_layer_idx").Count > 0)
            throw new NotSupportedException($"{original.Path}: field 'attn_layer_idx' lists attention layers, which {HfClass(layer)} does not have");
        if (!original.Bool("rms_norm", true))
            throw new NotSupportedException($"{original.Path}: field 'rms_norm' is false: LayerNorm blocks are not part of {HfClass(layer)}; only RMSNorm converts");

        int dModel = original.Positive("d_model");
        int multiple = original.Positive("pad_vocab_size_multiple", 8);
        int vocab = original.Positive("vocab_size");
        if (vocab % multiple != 0) vocab += multiple - vocab % multiple;
        double expand = ssm.Double("expand", 2);
        var hf = new JsonObject
        {
            ["hidden_size"] = dModel,
            ["num_hidden_layers"] = original.Positive("n_layer"),
            ["vocab_size"] = vocab,
            ["expand"] = expand,
            ["conv_kernel"] = ssm.Positive("d_conv", 4),
            ["use_bias"] = ssm.Bool("bias", false),
            ["use_conv_bias"] = ssm.Bool("conv_bias", true),
            ["residual_in_fp32"] = original.Bool("residual_in_fp32", true),
            ["tie_word_embeddings"] = original.Bool("tie_embeddings", true),
            ["layer_norm_epsilon"] = 1e-5,   // mamba_ssm's norm_epsilon, which its config does not carry
            ["hidden_act"] = "silu",
            ["pad_token_id"] = 0, ["bos_token_id"] = 0, ["eos_token_id"] = 0,
        };
        if (layer == "Mamba1")
        {
            hf["model_type"] = "mamba";
            hf["architectures"] = new JsonArray("MambaForCausalLM");
            hf["intermediate_size"] = (int)(expand * dModel);
            hf["state_size"] = ssm.Positive("d_state", 16);
            hf["time_step_rank"] = ssm.Scalars().TryGetValue("dt_rank", out var rank) && rank is double r ? (int)r : "auto";
        }
        else
        {
            int headDim = ssm.Positive("headdim", 64), inner = (int)(expand * dModel);
            if (ssm.Has("d_ssm") && ssm.Int("d_ssm") != inner)
                throw new NotSupportedException($"{original.Path}: field 'ssm_cfg.d_ssm' is {ssm.Int("d_ssm")}: an SSM narrower than expand x d_model = {inner} is not part of Mamba2ForCausalLM");
            if (!ssm.Bool("rmsnorm", true) || ssm.Bool("norm_before_gate", false))
                throw new NotSupportedException($"{original.Path}: fields 'ssm_cfg.rmsnorm' / 'ssm_cfg.norm_before_gate': Mamba2ForCausalLM gates and then normalises (rmsnorm true, norm_before_gate false)");
            hf["model_type"] = "mamba2";
            hf["architectures"] = new JsonArray("Mamba2ForCausalLM");
            hf["head_dim"] = headDim;
            hf["num_heads"] = inner / headDim;
            hf["state_size"] = ssm.Positive("d_state", 128);
            hf["n_groups"] = ssm.Positive("ngroups", 1);
            hf["chunk_size"] = ssm.Positive("chunk_size", 256);
            if (ssm.Has("dt_limit"))
                hf["time_step_limit"] = new JsonArray(ssm.Doubles("dt_limit").Select(v => (JsonNode)Number(v)).ToArray());
        }
        return ModelConfig.Parse(hf.ToJsonString(), original.Path);
    }

    private static string HfClass(string layer) => layer == "Mamba2" ? "Mamba2ForCausalLM" : "MambaForCausalLM";

    /// <summary>A number as ModelConfig reads it; JSON has no Infinity, so that one travels as the word.</summary>
    private static JsonValue Number(double v) =>
        double.IsFinite(v) ? JsonValue.Create(v) : JsonValue.Create(double.IsPositiveInfinity(v) ? "Infinity" : double.IsNegativeInfinity(v) ? "-Infinity" : "NaN");
}
