using System.Text.Json.Nodes;

namespace Recur.SyntheticCheckpoint;

/// <summary>
/// The benchmark shapes: each preset is a config.json (the field set of the matching tests/golden case,
/// sizes scaled up) and the tensor list Hugging Face's model class would save for it.
/// </summary>
internal static class Presets
{
    public static readonly IReadOnlyDictionary<string, Func<(JsonObject Config, List<TensorSpec> Tensors)>> All =
        new Dictionary<string, Func<(JsonObject, List<TensorSpec>)>>
        {
            ["rwkv-169m"] = Rwkv169M,
            ["rwkv7-0.1b"] = Rwkv7World01B,
            ["mamba-130m"] = () => Mamba130M(falcon: false),
            ["mamba2-130m"] = Mamba2130M,
            ["falcon-mamba-130m"] = () => Mamba130M(falcon: true),
            ["gemma-46m"] = Gemma46M,
            ["recurrent-gemma-35m"] = RecurrentGemma35M,
            ["switch-105m"] = Switch105M,
            ["jamba-tiny-306m"] = JambaTiny306M,
        };

    // Weight scales: N(0, 0.02) for matrices as HF's initializer_range; norms start at 1 (Gemma's store
    // w with the scale 1 + w, so theirs are near 0).
    private static TensorSpec Matrix(string name, params long[] shape) => new(name, shape, (r, _) => 0.02f * r.Next());
    private static TensorSpec Ones(string name, long n) => new(name, [n], (r, _) => 1f + 0.02f * r.Next());
    private static TensorSpec Small(string name, params long[] shape) => new(name, shape, (r, _) => 0.02f * r.Next());
    private static TensorSpec Zeros(string name, long n) => new(name, [n], (_, _) => 0f);
    private static TensorSpec Uniform(string name, long[] shape, float low, float high) =>
        new(name, shape, (r, _) => low + (high - low) * (float)r.Uniform());

    /// <summary>rwkv-4-169m-pile: hidden 768, 12 layers, vocab 50277, context 1024, lm head untied.</summary>
    private static (JsonObject, List<TensorSpec>) Rwkv169M()
    {
        const long hidden = 768, attention = 768, intermediate = 3072, vocab = 50277;
        const int layers = 12;
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("RwkvForCausalLM"), ["attention_hidden_size"] = attention, ["bos_token_id"] = 0,
            ["context_length"] = 1024, ["eos_token_id"] = 0, ["hidden_size"] = hidden, ["intermediate_size"] = intermediate,
            ["layer_norm_epsilon"] = 1e-5, ["model_type"] = "rwkv", ["num_hidden_layers"] = layers, ["rescale_every"] = 6,
            ["tie_word_embeddings"] = false, ["torch_dtype"] = "float32", ["transformers_version"] = "4.46.1",
            ["use_cache"] = true, ["vocab_size"] = vocab,
        };
        var t = new List<TensorSpec> { Matrix("rwkv.embeddings.weight", vocab, hidden) };
        for (int i = 0; i < layers; i++)
        {
            string p = $"rwkv.blocks.{i}";
            if (i == 0) t.AddRange([Ones($"{p}.pre_ln.weight", hidden), Zeros($"{p}.pre_ln.bias", hidden)]);
            t.AddRange([Ones($"{p}.ln1.weight", hidden), Zeros($"{p}.ln1.bias", hidden), Ones($"{p}.ln2.weight", hidden), Zeros($"{p}.ln2.bias", hidden)]);
            // time_decay spans RWKV-4's init range (-5 .. 3, so w = -exp(decay) stays finite); time_first about log(0.3).
            t.Add(new($"{p}.attention.time_decay", [attention], (_, c) => -5f + 8f * MathF.Pow(c / (attention - 1f), 0.7f + 1.3f * i / (layers - 1))));
            t.Add(new($"{p}.attention.time_first", [attention], (_, c) => MathF.Log(0.3f) + 0.5f * ((c + 1) % 3 - 1)));
            foreach (var mix in new[] { "key", "value", "receptance" }) t.Add(Uniform($"{p}.attention.time_mix_{mix}", [1, 1, hidden], 0f, 1f));
            t.AddRange([Matrix($"{p}.attention.key.weight", attention, hidden), Matrix($"{p}.attention.value.weight", attention, hidden),
                Matrix($"{p}.attention.receptance.weight", attention, hidden), Matrix($"{p}.attention.output.weight", hidden, attention)]);
            foreach (var mix in new[] { "key", "receptance" }) t.Add(Uniform($"{p}.feed_forward.time_mix_{mix}", [1, 1, hidden], 0f, 1f));
            t.AddRange([Matrix($"{p}.feed_forward.key.weight", intermediate, hidden), Matrix($"{p}.feed_forward.receptance.weight", hidden, hidden),
                Matrix($"{p}.feed_forward.value.weight", hidden, intermediate)]);
        }
        t.AddRange([Ones("rwkv.ln_out.weight", hidden), Zeros("rwkv.ln_out.bias", hidden), Matrix("head.weight", vocab, hidden)]);
        return (config, t);
    }

    /// <summary>
    /// RWKV-7 World 0.1B (RWKV-x070-World-0.1B, fla-hub/rwkv7-0.1B-world) in fla's layout: hidden 768, 12 layers, 12 heads of
    /// 64, FFN 3072, vocab 65536, LoRA ranks decay 64, a 64, v 32, gate 128 (the released file's shapes).
    /// </summary>
    private static (JsonObject, List<TensorSpec>) Rwkv7World01B()
    {
        const long hidden = 768, headSize = 64, heads = hidden / headSize, intermediate = 3072, vocab = 65536;
        const long decayRank = 64, aRank = 64, vRank = 32, gateRank = 128;
        const int layers = 12;
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("RWKV7ForCausalLM"), ["a_low_rank_dim"] = aRank, ["attn"] = null, ["attn_mode"] = "chunk",
            ["bos_token_id"] = 0, ["decay_low_rank_dim"] = decayRank, ["eos_token_id"] = 0, ["fuse_norm"] = false,
            ["gate_low_rank_dim"] = gateRank, ["head_dim"] = headSize, ["hidden_act"] = "sqrelu", ["hidden_ratio"] = 4.0,
            ["hidden_size"] = hidden, ["intermediate_size"] = intermediate, ["model_type"] = "rwkv7", ["norm_bias"] = true,
            ["norm_eps"] = 1e-5, ["norm_first"] = true, ["num_heads"] = heads, ["num_hidden_layers"] = layers,
            ["tie_word_embeddings"] = false, ["torch_dtype"] = "float32", ["v_low_rank_dim"] = vRank,
            ["value_dim"] = new JsonArray(Enumerable.Range(0, layers).Select(_ => (JsonNode)hidden).ToArray()), ["vocab_size"] = vocab,
        };
        var t = new List<TensorSpec> { Matrix("model.embeddings.weight", vocab, hidden) };
        void Lora(string p, long rank, float bias, bool hasBias = true)
        {
            t.AddRange([Matrix($"{p}.lora.0.weight", rank, hidden), Matrix($"{p}.lora.2.weight", hidden, rank)]);
            if (hasBias) t.Add(new($"{p}.lora.2.bias", [hidden], (r, _) => bias + 0.1f * r.Next()));
        }
        for (int i = 0; i < layers; i++)
        {
            string p = $"model.layers.{i}";
            if (i == 0) t.AddRange([Ones($"{p}.pre_norm.weight", hidden), Zeros($"{p}.pre_norm.bias", hidden)]);
            t.AddRange([Ones($"{p}.attn_norm.weight", hidden), Zeros($"{p}.attn_norm.bias", hidden), Ones($"{p}.ffn_norm.weight", hidden), Zeros($"{p}.ffn_norm.bias", hidden)]);
            string a = $"{p}.attn";
            foreach (var mix in "rwkvag") t.Add(Uniform($"{a}.x_{mix}", [1, 1, hidden], 0f, 1f));
            // Near fla's initial values: k_k 0.71, k_a 1.02, r_k -0.04; decay bias -6 .. -0.5 so w = exp(-0.6 sigmoid(.)) spans RWKV-7's range.
            t.AddRange([Uniform($"{a}.k_k", [hidden], 0.66f, 0.76f), Uniform($"{a}.k_a", [hidden], 0.97f, 1.07f), Uniform($"{a}.r_k", [heads, headSize], -0.09f, 0.01f)]);
            t.AddRange([Matrix($"{a}.r_proj.weight", hidden, hidden), Matrix($"{a}.k_proj.weight", hidden, hidden),
                Matrix($"{a}.v_proj.weight", hidden, hidden), Matrix($"{a}.o_proj.weight", hidden, hidden)]);
            t.AddRange([Matrix($"{a}.w_lora.lora.0.weight", decayRank, hidden), Matrix($"{a}.w_lora.lora.2.weight", hidden, decayRank),
                Uniform($"{a}.w_lora.lora.2.bias", [hidden], -6f, -0.5f)]);
            Lora($"{a}.a_lora", aRank, -0.19f);
            if (i > 0) Lora($"{a}.v_lora", vRank, 0.73f);
            Lora($"{a}.g_lora", gateRank, 0f, hasBias: false);
            t.AddRange([Ones($"{a}.g_norm.weight", hidden), Zeros($"{a}.g_norm.bias", hidden)]);
            t.AddRange([Uniform($"{p}.ffn.x_k", [hidden], 0f, 1f), Matrix($"{p}.ffn.key.weight", intermediate, hidden), Matrix($"{p}.ffn.value.weight", hidden, intermediate)]);
        }
        t.AddRange([Ones("model.norm.weight", hidden), Zeros("model.norm.bias", hidden), Matrix("lm_head.weight", vocab, hidden)]);
        return (config, t);
    }

    /// <summary>
    /// mamba-130m-hf: hidden 768, 24 layers, state 16, vocab 50280, lm head tied to the embedding. The falcon-mamba
    /// preset is the same shape as model_type falcon_mamba (its mixer's weightless B/C/dt norms, mixer_rms_eps 1e-6), so
    /// the pair times those norms alone; falcon-mamba-7b itself unties its lm head.
    /// </summary>
    private static (JsonObject, List<TensorSpec>) Mamba130M(bool falcon)
    {
        const long hidden = 768, inner = 1536, state = 16, rank = 48, kernel = 4, vocab = 50280;
        const int layers = 24;
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray(falcon ? "FalconMambaForCausalLM" : "MambaForCausalLM"), ["bos_token_id"] = 0, ["conv_kernel"] = kernel, ["eos_token_id"] = 0,
            ["expand"] = 2, ["hidden_act"] = "silu", ["hidden_size"] = hidden, ["initializer_range"] = 0.1, ["intermediate_size"] = inner,
            ["layer_norm_epsilon"] = 1e-5, ["model_type"] = falcon ? "falcon_mamba" : "mamba", ["num_hidden_layers"] = layers, ["pad_token_id"] = 0,
            ["rescale_prenorm_residual"] = false, ["residual_in_fp32"] = true, ["state_size"] = state, ["time_step_floor"] = 1e-4,
            ["time_step_init_scheme"] = "random", ["time_step_max"] = 0.1, ["time_step_min"] = 0.001, ["time_step_rank"] = rank,
            ["time_step_scale"] = 1.0, ["torch_dtype"] = "float32", ["transformers_version"] = "4.46.1", ["use_bias"] = false,
            ["use_cache"] = true, ["use_conv_bias"] = true, ["use_mambapy"] = false, ["vocab_size"] = vocab,
        };
        if (falcon) config["mixer_rms_eps"] = 1e-6;
        var t = new List<TensorSpec> { Matrix("backbone.embeddings.weight", vocab, hidden) };
        for (int i = 0; i < layers; i++)
        {
            string p = $"backbone.layers.{i}";
            t.Add(Ones($"{p}.norm.weight", hidden));
            t.AddRange(MambaMixer($"{p}.mixer", hidden, inner, state, rank, kernel, normWeights: false));
        }
        t.Add(Ones("backbone.norm_f.weight", hidden));
        return (config, t);
    }

    /// <summary>mamba2-130m: hidden 768, 24 layers, 24 heads of 64, state 128, one B/C group, vocab 50280, lm head tied.</summary>
    private static (JsonObject, List<TensorSpec>) Mamba2130M()
    {
        const long hidden = 768, inner = 1536, heads = 24, headDim = 64, groups = 1, state = 128, kernel = 4, vocab = 50280;
        const long channels = inner + 2 * groups * state;
        const int layers = 24;
        // time_step_limit is left out: its default [0, inf] (no clamp) is what save_pretrained writes, with a bare
        // Infinity that JsonObject cannot hold.
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("Mamba2ForCausalLM"), ["bos_token_id"] = 0, ["chunk_size"] = 256, ["conv_kernel"] = kernel,
            ["eos_token_id"] = 0, ["expand"] = 2, ["head_dim"] = headDim, ["hidden_act"] = "silu", ["hidden_size"] = hidden,
            ["initializer_range"] = 0.1, ["layer_norm_epsilon"] = 1e-5, ["model_type"] = "mamba2", ["n_groups"] = groups,
            ["num_heads"] = heads, ["num_hidden_layers"] = layers, ["pad_token_id"] = 0, ["rescale_prenorm_residual"] = false,
            ["residual_in_fp32"] = true, ["rms_norm"] = true, ["state_size"] = state, ["tie_word_embeddings"] = true,
            ["time_step_floor"] = 1e-4, ["time_step_max"] = 0.1, ["time_step_min"] = 0.001, ["time_step_rank"] = 48,
            ["torch_dtype"] = "float32", ["transformers_version"] = "4.46.1", ["use_bias"] = false, ["use_cache"] = true,
            ["use_conv_bias"] = true, ["vocab_size"] = vocab,
        };
        var t = new List<TensorSpec> { Matrix("backbone.embeddings.weight", vocab, hidden) };
        for (int i = 0; i < layers; i++)
        {
            string p = $"backbone.layers.{i}";
            t.Add(Ones($"{p}.norm.weight", hidden));
            // As Mamba2Mixer's init: A = -(1..H) per head, D = 1, dt_bias = softplus^-1(dt) with dt log-uniform in [0.001, 0.1].
            t.Add(new($"{p}.mixer.A_log", [heads], (_, h) => MathF.Log(1 + h)));
            t.Add(new($"{p}.mixer.D", [heads], (_, _) => 1f));
            t.Add(new($"{p}.mixer.dt_bias", [heads], (r, _) =>
            {
                double dt = Math.Exp(Math.Log(0.001) + r.Uniform() * (Math.Log(0.1) - Math.Log(0.001)));
                return (float)(dt + Math.Log(1 - Math.Exp(-dt)));
            }));
            t.AddRange([Matrix($"{p}.mixer.conv1d.weight", channels, 1, kernel), Small($"{p}.mixer.conv1d.bias", channels),
                Matrix($"{p}.mixer.in_proj.weight", inner + channels + heads, hidden), Ones($"{p}.mixer.norm.weight", inner),
                Matrix($"{p}.mixer.out_proj.weight", hidden, inner)]);
        }
        t.Add(Ones("backbone.norm_f.weight", hidden));
        return (config, t);
    }

    /// <summary>A Mamba-1 mixer's tensors (no in/out projection biases); Jamba's adds its dt/B/C norm weights.</summary>
    private static IEnumerable<TensorSpec> MambaMixer(string p, long hidden, long inner, long state, long rank, long kernel, bool normWeights)
    {
        // As MambaMixer's init: A = -(1..N) per channel, D = 1, dt_proj.bias = softplus^-1(dt) with dt log-uniform in [0.001, 0.1].
        yield return new($"{p}.A_log", [inner, state], (_, k) => MathF.Log(1 + k % state));
        yield return new($"{p}.D", [inner], (_, _) => 1f);
        yield return new($"{p}.dt_proj.bias", [inner], (r, _) =>
        {
            double dt = Math.Exp(Math.Log(0.001) + r.Uniform() * (Math.Log(0.1) - Math.Log(0.001)));
            return (float)(dt + Math.Log(1 - Math.Exp(-dt)));
        });
        foreach (var spec in new[] { Matrix($"{p}.conv1d.weight", inner, 1, kernel), Small($"{p}.conv1d.bias", inner),
            Matrix($"{p}.dt_proj.weight", inner, rank), Matrix($"{p}.in_proj.weight", 2 * inner, hidden),
            Matrix($"{p}.out_proj.weight", hidden, inner), Matrix($"{p}.x_proj.weight", rank + 2 * state, inner) })
            yield return spec;
        if (!normWeights) yield break;
        yield return Ones($"{p}.dt_layernorm.weight", rank);
        yield return Ones($"{p}.b_layernorm.weight", state);
        yield return Ones($"{p}.c_layernorm.weight", state);
    }

    /// <summary>A 46M Gemma: hidden 512, 8 layers, 8 heads of 64 with one KV head, MLP 2048, a 32000 vocabulary.</summary>
    private static (JsonObject, List<TensorSpec>) Gemma46M()
    {
        const long hidden = 512, heads = 8, kvHeads = 1, headDim = 64, intermediate = 2048, vocab = 32000;
        const int layers = 8;
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("GemmaForCausalLM"), ["attention_bias"] = false, ["attention_dropout"] = 0.0,
            ["bos_token_id"] = 2, ["eos_token_id"] = 1, ["head_dim"] = headDim, ["hidden_act"] = "gelu", ["hidden_activation"] = null,
            ["hidden_size"] = hidden, ["initializer_range"] = 0.02, ["intermediate_size"] = intermediate, ["max_position_embeddings"] = 2048,
            ["model_type"] = "gemma", ["num_attention_heads"] = heads, ["num_hidden_layers"] = layers, ["num_key_value_heads"] = kvHeads,
            ["pad_token_id"] = 0, ["rms_norm_eps"] = 1e-6, ["rope_theta"] = 10000.0, ["torch_dtype"] = "float32",
            ["transformers_version"] = "4.46.1", ["use_cache"] = true, ["vocab_size"] = vocab,
        };
        var t = new List<TensorSpec> { Matrix("model.embed_tokens.weight", vocab, hidden) };
        for (int i = 0; i < layers; i++)
        {
            string p = $"model.layers.{i}";
            t.AddRange([Small($"{p}.input_layernorm.weight", hidden), Small($"{p}.post_attention_layernorm.weight", hidden),
                Matrix($"{p}.mlp.gate_proj.weight", intermediate, hidden), Matrix($"{p}.mlp.up_proj.weight", intermediate, hidden),
                Matrix($"{p}.mlp.down_proj.weight", hidden, intermediate),
                Matrix($"{p}.self_attn.q_proj.weight", heads * headDim, hidden), Matrix($"{p}.self_attn.k_proj.weight", kvHeads * headDim, hidden),
                Matrix($"{p}.self_attn.v_proj.weight", kvHeads * headDim, hidden), Matrix($"{p}.self_attn.o_proj.weight", hidden, heads * headDim)]);
        }
        t.Add(Small("model.norm.weight", hidden));
        return (config, t);
    }

    /// <summary>A 35M RecurrentGemma: hidden 512, 6 layers (recurrent, recurrent, attention), 8 heads, MLP 1536, a 32000 vocabulary.</summary>
    private static (JsonObject, List<TensorSpec>) RecurrentGemma35M()
    {
        const long hidden = 512, lru = 512, heads = 8, kvHeads = 1, headDim = hidden / heads, intermediate = 3072, kernel = 4, vocab = 32000;
        const int layers = 6;
        string[] blockTypes = ["recurrent", "recurrent", "attention"];
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("RecurrentGemmaForCausalLM"), ["attention_bias"] = false, ["attention_dropout"] = 0.0,
            ["attention_window_size"] = 2048, ["block_types"] = new JsonArray(blockTypes.Select(s => (JsonNode)s).ToArray()),
            ["bos_token_id"] = 2, ["conv1d_width"] = kernel, ["eos_token_id"] = 1, ["final_w_init_variance_scale"] = 0.5,
            ["head_dim"] = headDim, ["hidden_activation"] = "gelu_pytorch_tanh", ["hidden_size"] = hidden, ["intermediate_size"] = intermediate,
            ["logits_soft_cap"] = 30.0, ["lru_width"] = lru, ["model_type"] = "recurrent_gemma", ["num_attention_heads"] = heads,
            ["num_hidden_layers"] = layers, ["num_key_value_heads"] = kvHeads, ["pad_token_id"] = 0, ["partial_rotary_factor"] = 0.5,
            ["rms_norm_eps"] = 1e-6, ["rope_theta"] = 10000.0, ["torch_dtype"] = "float32", ["transformers_version"] = "4.46.1",
            ["use_cache"] = true, ["vocab_size"] = vocab, ["w_init_variance_scale"] = 0.01,
        };
        long mlp = intermediate / 2; // HF's MLP block is intermediate_size // 2 wide
        var t = new List<TensorSpec> { Matrix("model.embed_tokens.weight", vocab, hidden) };
        for (int i = 0; i < layers; i++)
        {
            string p = $"model.layers.{i}";
            t.AddRange([Small($"{p}.channel_pre_norm.weight", hidden), Small($"{p}.temporal_pre_norm.weight", hidden),
                Matrix($"{p}.mlp_block.gate_proj.weight", mlp, hidden), Small($"{p}.mlp_block.gate_proj.bias", mlp),
                Matrix($"{p}.mlp_block.up_proj.weight", mlp, hidden), Small($"{p}.mlp_block.up_proj.bias", mlp),
                Matrix($"{p}.mlp_block.down_proj.weight", hidden, mlp), Small($"{p}.mlp_block.down_proj.bias", hidden)]);
            string b = $"{p}.temporal_block";
            if (blockTypes[i % blockTypes.Length] == "recurrent")
            {
                long block = lru / heads;
                t.AddRange([Matrix($"{b}.conv_1d.weight", lru, 1, kernel), Small($"{b}.conv_1d.bias", lru),
                    Matrix($"{b}.linear_x.weight", lru, hidden), Small($"{b}.linear_x.bias", lru),
                    Matrix($"{b}.linear_y.weight", lru, hidden), Small($"{b}.linear_y.bias", lru),
                    Matrix($"{b}.linear_out.weight", hidden, lru), Small($"{b}.linear_out.bias", hidden),
                    Matrix($"{b}.rg_lru.input_gate_weight", heads, block, block), Small($"{b}.rg_lru.input_gate_bias", heads, block),
                    Matrix($"{b}.rg_lru.recurrent_gate_weight", heads, block, block), Small($"{b}.rg_lru.recurrent_gate_bias", heads, block),
                    // softplus(param) small, so a = exp(-8 r softplus(param)) sits in Griffin's 0.9 .. 0.999.
                    Uniform($"{b}.rg_lru.recurrent_param", [lru], -7f, -4f)]);
            }
            else
            {
                t.AddRange([Matrix($"{b}.q_proj.weight", heads * headDim, hidden), Matrix($"{b}.k_proj.weight", kvHeads * headDim, hidden),
                    Matrix($"{b}.v_proj.weight", kvHeads * headDim, hidden), Matrix($"{b}.o_proj.weight", hidden, heads * headDim),
                    Small($"{b}.o_proj.bias", hidden)]);
            }
        }
        t.Add(Small("model.final_norm.weight", hidden));
        return (config, t);
    }

    /// <summary>A 105M Switch: d_model 512, 6 + 6 blocks, every 2nd sparse with 8 experts, d_ff 1280, 8 heads of 64, vocab 32128.</summary>
    private static (JsonObject, List<TensorSpec>) Switch105M()
    {
        const long model = 512, ff = 1280, heads = 8, kv = 64, experts = 8, buckets = 32, vocab = 32128;
        const int layers = 6, step = 2;
        var config = new JsonObject
        {
            ["add_router_probs"] = false, ["architectures"] = new JsonArray("SwitchTransformersForConditionalGeneration"),
            ["d_ff"] = ff, ["d_kv"] = kv, ["d_model"] = model, ["decoder_sparse_step"] = step, ["decoder_start_token_id"] = 0,
            ["dense_act_fn"] = "relu", ["dropout_rate"] = 0.1, ["encoder_sparse_step"] = step, ["eos_token_id"] = 1,
            ["expert_capacity"] = 64, ["initializer_factor"] = 1.0, ["is_encoder_decoder"] = true, ["layer_norm_epsilon"] = 1e-6,
            ["model_type"] = "switch_transformers", ["num_decoder_layers"] = layers, ["num_experts"] = experts, ["num_heads"] = heads,
            ["num_layers"] = layers, ["num_sparse_decoder_layers"] = layers / step, ["num_sparse_encoder_layers"] = layers / step,
            ["pad_token_id"] = 0, ["relative_attention_max_distance"] = 128, ["relative_attention_num_buckets"] = buckets,
            ["router_aux_loss_coef"] = 0.001, ["router_bias"] = false, ["router_dtype"] = "float32", ["router_ignore_padding_tokens"] = false,
            ["router_jitter_noise"] = 0.01, ["router_z_loss_coef"] = 0.001, ["torch_dtype"] = "float32",
            ["transformers_version"] = "4.46.1", ["use_cache"] = true, ["vocab_size"] = vocab,
        };
        var t = new List<TensorSpec> { Matrix("shared.weight", vocab, model) };
        void Attention(string p, bool relativeBias)
        {
            t.AddRange([Matrix($"{p}.q.weight", heads * kv, model), Matrix($"{p}.k.weight", heads * kv, model),
                Matrix($"{p}.v.weight", heads * kv, model), Matrix($"{p}.o.weight", model, heads * kv)]);
            if (relativeBias) t.Add(Matrix($"{p}.relative_attention_bias.weight", buckets, heads));
        }
        void FeedForward(string p, bool sparse)
        {
            if (!sparse) { t.AddRange([Matrix($"{p}.mlp.wi.weight", ff, model), Matrix($"{p}.mlp.wo.weight", model, ff)]); return; }
            t.Add(Matrix($"{p}.mlp.router.classifier.weight", experts, model));
            for (int e = 0; e < experts; e++)
                t.AddRange([Matrix($"{p}.mlp.experts.expert_{e}.wi.weight", ff, model), Matrix($"{p}.mlp.experts.expert_{e}.wo.weight", model, ff)]);
        }
        foreach (var side in new[] { "encoder", "decoder" })
        {
            for (int i = 0; i < layers; i++)
            {
                string p = $"{side}.block.{i}.layer";
                bool sparse = i % step == 1; // as HF: block i is sparse when i % sparse_step == 1
                Attention($"{p}.0.SelfAttention", i == 0);
                t.Add(Ones($"{p}.0.layer_norm.weight", model));
                int f = 1;
                if (side == "decoder")
                {
                    Attention($"{p}.1.EncDecAttention", false);
                    t.Add(Ones($"{p}.1.layer_norm.weight", model));
                    f = 2;
                }
                FeedForward($"{p}.{f}", sparse);
                t.Add(Ones($"{p}.{f}.layer_norm.weight", model));
            }
            t.Add(Ones($"{side}.final_layer_norm.weight", model));
        }
        return (config, t);
    }

    /// <summary>
    /// A Jamba-tiny-dev-like shape: hidden 512, 16 layers with attention at 4 and 12 (period 8, offset 4), 8 heads of 64
    /// over 2 KV heads, Mamba d_state 16 / d_conv 4 / expand 2 / dt_rank 32, experts on every odd layer, vocab 65536,
    /// lm head untied, as ai21labs/Jamba-tiny-dev's config. Its expert count and MLP width are not known here: 16 experts
    /// (top 2) of width 1024 give 306M parameters, near the 319M its model card states.
    /// </summary>
    private static (JsonObject, List<TensorSpec>) JambaTiny306M()
    {
        const long hidden = 512, heads = 8, kvHeads = 2, headDim = hidden / heads, intermediate = 1024, experts = 16;
        const long inner = 2 * hidden, state = 16, rank = 32, kernel = 4, vocab = 65536;
        const int layers = 16, attnPeriod = 8, attnOffset = 4, expertPeriod = 2, expertOffset = 1;
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("JambaForCausalLM"), ["attention_dropout"] = 0.0, ["attn_layer_offset"] = attnOffset,
            ["attn_layer_period"] = attnPeriod, ["bos_token_id"] = 1, ["eos_token_id"] = 2, ["expert_layer_offset"] = expertOffset,
            ["expert_layer_period"] = expertPeriod, ["hidden_act"] = "silu", ["hidden_size"] = hidden, ["initializer_range"] = 0.02,
            ["intermediate_size"] = intermediate, ["mamba_conv_bias"] = true, ["mamba_d_conv"] = kernel, ["mamba_d_state"] = state,
            ["mamba_dt_rank"] = rank, ["mamba_expand"] = 2, ["mamba_proj_bias"] = false, ["max_position_embeddings"] = 262144,
            ["model_type"] = "jamba", ["num_attention_heads"] = heads, ["num_experts"] = experts, ["num_experts_per_tok"] = 2,
            ["num_hidden_layers"] = layers, ["num_key_value_heads"] = kvHeads, ["num_logits_to_keep"] = 1, ["output_router_logits"] = false,
            ["pad_token_id"] = 0, ["rms_norm_eps"] = 1e-6, ["router_aux_loss_coef"] = 0.001, ["sliding_window"] = null,
            ["tie_word_embeddings"] = false, ["torch_dtype"] = "float32", ["transformers_version"] = "4.46.1", ["use_cache"] = true,
            ["use_mamba_kernels"] = false, ["vocab_size"] = vocab,
        };
        var t = new List<TensorSpec> { Matrix("model.embed_tokens.weight", vocab, hidden) };
        void Mlp(string p) => t.AddRange([Matrix($"{p}.gate_proj.weight", intermediate, hidden), Matrix($"{p}.up_proj.weight", intermediate, hidden),
            Matrix($"{p}.down_proj.weight", hidden, intermediate)]);
        for (int i = 0; i < layers; i++)
        {
            string p = $"model.layers.{i}";
            t.AddRange([Ones($"{p}.input_layernorm.weight", hidden), Ones($"{p}.pre_ff_layernorm.weight", hidden)]);
            if (i % attnPeriod == attnOffset)
                t.AddRange([Matrix($"{p}.self_attn.q_proj.weight", heads * headDim, hidden), Matrix($"{p}.self_attn.k_proj.weight", kvHeads * headDim, hidden),
                    Matrix($"{p}.self_attn.v_proj.weight", kvHeads * headDim, hidden), Matrix($"{p}.self_attn.o_proj.weight", hidden, heads * headDim)]);
            else
                t.AddRange(MambaMixer($"{p}.mamba", hidden, inner, state, rank, kernel, normWeights: true));
            if (i % expertPeriod != expertOffset) { Mlp($"{p}.feed_forward"); continue; }
            t.Add(Matrix($"{p}.feed_forward.router.weight", experts, hidden));
            for (int e = 0; e < experts; e++) Mlp($"{p}.feed_forward.experts.{e}");
        }
        t.AddRange([Ones("model.final_layernorm.weight", hidden), Matrix("lm_head.weight", vocab, hidden)]);
        return (config, t);
    }
}
