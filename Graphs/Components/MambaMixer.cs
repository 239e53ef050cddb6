using Recur.Graphs.Config;
using Recur.Graphs.Ir;
using Recur.Graphs.Weights;

namespace Recur.Graphs;

/// <summary>How a Mamba-1 mixer normalises the x_proj outputs (time step, B, C) before the scan.</summary>
public enum MixerNorms
{
    /// <summary>Mamba (MambaMixer): no normalisation.</summary>
    None,
    /// <summary>Falcon-Mamba (FalconMambaMixer): x * rsqrt(mean(x^2) + mixer_rms_eps), no weight.</summary>
    Weightless,
    /// <summary>Jamba (JambaMambaMixer): RMSNorms with weights dt_layernorm, b_layernorm, c_layernorm.</summary>
    Weighted,
}

/// <summary>The shape and options of one Mamba-1 mixer, shared by Mamba, Falcon-Mamba and Jamba.</summary>
/// <param name="ProjectionBias">in_proj and out_proj carry biases (Mamba use_bias, Jamba mamba_proj_bias).</param>
/// <param name="NormEpsilon">eps of the time step / B / C norms (mixer_rms_eps, Jamba rms_norm_eps); unused for <see cref="MixerNorms.None"/>.</param>
public sealed record MambaMixerShape(long Hidden, long Intermediate, long StateSize, long ConvKernel, long TimeStepRank,
    bool ProjectionBias, bool ConvBias, MixerNorms Norms, float NormEpsilon)
{
    /// <summary>The time step rank field (Mamba time_step_rank, Jamba mamba_dt_rank): an integer or "auto" (= ceil(hidden_size / 16)), "auto" when missing.</summary>
    public static int ReadTimeStepRank(ModelConfig c, string key, int hidden)
    {
        if (!c.Has(key)) return (hidden + 15) / 16;
        if (c.Scalars().TryGetValue(key, out var v) && v is string s)
            return s == "auto" ? (hidden + 15) / 16 : throw c.Invalid(key, $"'{s}'", "a positive integer or 'auto'");
        return c.Positive(key);
    }

    /// <summary>The conv kernel field (Mamba conv_kernel, Jamba mamba_d_conv): at least 2, so the conv has a window to carry.</summary>
    public static int ReadConvKernel(ModelConfig c, string key)
    {
        int kernel = c.Positive(key, 4);
        return kernel >= 2 ? kernel : throw c.Invalid(key, kernel.ToString(System.Globalization.CultureInfo.InvariantCulture), "at least 2");
    }
}

public sealed partial class GraphBuilder
{
    /// <summary>
    /// The Mamba-1 mixer of Hugging Face's MambaMixer / FalconMambaMixer / JambaMambaMixer (slow_forward), with its
    /// conv window and SSM state as the state of <paramref name="layer"/>:
    /// <code>
    /// u [B, T, hidden]
    /// xs, gate = split(in_proj(u))                                   [B, T, I] each (HF chunks xs first)
    /// xs = silu(causal_depthwise_conv1d(xs * m)) * m                 m = tokenMask, when given
    /// dt, Bm, Cm = split(x_proj(xs))                                 [R], [N], [N]
    /// dt, Bm, Cm = norm(dt), norm(Bm), norm(Cm)                      by Norms (none, weightless RMS, weighted RMS)
    /// dt = softplus(dt_proj(dt))                                     float32, dt_proj with bias
    /// y = selective_scan(xs, dt, A = -exp(A_log), Bm, Cm, D)         h [B, I, N]
    /// out = out_proj(y * silu(gate))
    /// </code>
    /// State: past_key_values.{layer}.conv_state [batch, I, K-1] (the last K-1 conv inputs; HF keeps K) and
    /// past_key_values.{layer}.ssm_state [batch, I, N], float32, zeros at the start.
    /// <paramref name="tokenMask"/> [B, T] int64 (1 = token, 0 = padding) zeroes padded positions before and after
    /// the convolution, as Jamba does with its attention mask: a left-padded row then sees zeros, as a fresh start.
    /// </summary>
    public Value MambaMixer(Value u, string prefix, MambaMixerShape s, int layer, Value? tokenMask = null)
    {
        using var _ = Scope("mixer");
        string p = prefix;
        long inner = s.Intermediate, n = s.StateSize, rank = s.TimeStepRank;
        string? Bias(string proj) => s.ProjectionBias ? $"{p}.{proj}.bias" : null;
        var mask = tokenMask is null ? null : Unsqueeze(Cast(tokenMask, TensorDType.Float32), -1);   // [B, T, 1]

        var halves = Split(Linear(u, $"{p}.in_proj.weight", s.Hidden, 2 * inner, Bias("in_proj")), -1, inner, inner);
        Value xs = halves[0], gate = halves[1];
        if (mask is not null) xs = Mul(xs, mask);

        var convState = StateInput(layer, "conv_state", TensorDType.Float32, ["batch", inner, s.ConvKernel - 1], 0);
        var conv = CausalConv1d(xs, convState, $"{p}.conv1d.weight", s.ConvBias ? $"{p}.conv1d.bias" : null, inner, s.ConvKernel);
        StateOutput(convState, conv.Window);
        xs = Silu(conv.Output);
        if (mask is not null) xs = Mul(xs, mask);

        var parts = Split(Linear(xs, $"{p}.x_proj.weight", inner, rank + 2 * n), -1, rank, n, n);   // time_step, B, C
        Value timeStep = MixerNorm(parts[0], s, $"{p}.dt_layernorm.weight", rank);
        Value bm = MixerNorm(parts[1], s, $"{p}.b_layernorm.weight", n);
        Value cm = MixerNorm(parts[2], s, $"{p}.c_layernorm.weight", n);
        var dt = TorchSoftplus(Linear(timeStep, $"{p}.dt_proj.weight", rank, inner, $"{p}.dt_proj.bias"));
        var a = Weight($"{p}.A_log", [inner, n], fold: v => -MathF.Exp(v)); // folded at conversion: A = -exp(A_log), in float32 as HF
        var d = Weight($"{p}.D", [inner]);

        var ssmState = StateInput(layer, "ssm_state", TensorDType.Float32, ["batch", inner, n], 0);
        var scan = SelectiveScan(xs, dt, a, bm, cm, d, ssmState);
        StateOutput(ssmState, scan.State);

        return Linear(Mul(scan.Output, Silu(gate)), $"{p}.out_proj.weight", inner, s.Hidden, Bias("out_proj"));
    }

    private Value MixerNorm(Value x, MambaMixerShape s, string weightName, long features) => s.Norms switch
    {
        MixerNorms.None => x,
        MixerNorms.Weightless => RmsNormalize(x, s.NormEpsilon),
        _ => RmsNorm(x, weightName, features, s.NormEpsilon),
    };
}
