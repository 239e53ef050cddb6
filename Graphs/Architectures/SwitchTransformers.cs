using Recur.Package;
using System.Globalization;
using Recur.Graphs.Config;
using Recur.Graphs.Ir;
using Recur.Graphs.Weights;

namespace Recur.Graphs.Architectures;

/// <summary>
/// Switch Transformers (Hugging Face SwitchTransformersForConditionalGeneration, modeling_switch_transformers.py
/// v4.46): a T5 encoder-decoder whose feed-forward is a top-1 mixture of experts in every sparse_step-th block.
/// <code>
/// encoder:  x = shared[ids]; bias = rel_bias(layer 0 table, bidirectional)         [1, H, S, S]
///   per block: x += o(attn(ln(x), bias));  x += ff(ln(x))
///   enc = final_ln(x);  cross.i.key / cross.i.value = k_i(enc), v_i(enc) of every decoder block
/// decoder:  y = shared[ids]; bias = rel_bias(layer 0 table, causal) + causal mask      [1, H, T, P+T]
///   per block: y += o(attn(ln(y), [past; k], [past; v], bias));  y += o(attn(ln(y), cross.i));  y += ff(ln(y))
///   logits = lm_head(final_ln(y) [* d_model^-0.5 when tied to shared])
/// ln: T5 RMS norm (no mean, no bias); attn: softmax(q k^T + bias) v, no 1/sqrt(d_kv) scaling;
/// ff: wo(act(wi(x))) when dense, Top1Experts when sparse (block i is sparse when i % step == 1 or step == 1).
/// </code>
/// State per decoder block i (float32): past_key_values.i.key / value [batch, heads, past_sequence, d_kv].
/// The encoder graph computes the cross-attention keys and values once per input; they feed the decoder
/// inputs cross.i.key / cross.i.value [batch, heads, encoder_sequence, d_kv] on every decoder call.
/// </summary>
public sealed class SwitchTransformers : IArchitecture
{
    public string ModelType => "switch_transformers";
    public string HfClass => "SwitchTransformersForConditionalGeneration";

    /// <summary>Also output each sparse layer's router logits and top-1 expert ({side}_layer{i}_router_logits / _expert), to check routing.</summary>
    public bool ExposeRouting { get; init; }

    /// <summary>The SwitchTransformersConfig fields the graphs depend on.</summary>
    private sealed record Config(int Vocab, int Model, int KeyValue, int FeedForward, int Heads, int EncoderLayers, int DecoderLayers,
        int EncoderSparseStep, int DecoderSparseStep, int Experts, int Capacity, bool RouterBias, int Buckets, int MaxDistance,
        float Epsilon, string Activation, bool TieEmbeddings)
    {
        public static Config Read(ModelConfig c)
        {
            int layers = c.Positive("num_layers");
            int decoderLayers = c.Positive("num_decoder_layers");
            string act = c.String("dense_act_fn", "relu");
            if (!GraphBuilder.IsKnownActivation(act)) throw c.Invalid("dense_act_fn", $"'{act}'", "one of gelu, gelu_new, gelu_pytorch_tanh, relu, silu");
            string routerDType = c.String("router_dtype", "float32");
            if (routerDType != "float32") throw c.Invalid("router_dtype", $"'{routerDType}'", "'float32' (a float16/bfloat16 router is not supported)");
            int capacity = c.Int("expert_capacity", 64);
            if (capacity < 0) throw c.Invalid("expert_capacity", Text(capacity), "a token count >= 0");
            int buckets = c.Positive("relative_attention_num_buckets", 32);
            int maxDistance = c.Positive("relative_attention_max_distance", 128);
            // The encoder's bidirectional buckets keep buckets / 4 exact distances, the decoder's causal ones buckets / 2.
            if (buckets < 4) throw c.Invalid("relative_attention_num_buckets", Text(buckets), "at least 4");
            if (maxDistance <= buckets / 2) throw c.Invalid("relative_attention_max_distance", Text(maxDistance), $"more than relative_attention_num_buckets / 2 = {buckets / 2}");
            return new Config(
                Vocab: c.Positive("vocab_size"),
                Model: c.Positive("d_model"),
                KeyValue: c.Positive("d_kv"),
                FeedForward: c.Positive("d_ff"),
                Heads: c.Positive("num_heads"),
                EncoderLayers: layers,
                DecoderLayers: decoderLayers,
                EncoderSparseStep: SparseStep(c, "encoder_sparse_step", "num_sparse_encoder_layers", layers),
                DecoderSparseStep: SparseStep(c, "decoder_sparse_step", "num_sparse_decoder_layers", decoderLayers),
                Experts: c.Positive("num_experts", 8),
                Capacity: capacity,
                RouterBias: c.Bool("router_bias", false),
                Buckets: buckets,
                MaxDistance: maxDistance,
                Epsilon: (float)c.Double("layer_norm_epsilon", 1e-6),
                Activation: act,
                TieEmbeddings: c.Bool("tie_word_embeddings", true));
        }

        /// <summary>
        /// HF's config derives the step as layers // sparse layers (layers when there are none), but a stored
        /// *_sparse_step reaches the config through PretrainedConfig's extra kwargs afterwards and wins.
        /// </summary>
        private static int SparseStep(ModelConfig c, string stepKey, string countKey, int layers)
        {
            if (c.Has(stepKey)) return c.Int(stepKey);
            int sparse = c.Int(countKey, 3);
            if (sparse < 0) throw c.Invalid(countKey, Text(sparse), "a layer count >= 0");
            return sparse > 0 ? layers / sparse : layers;
        }

        /// <summary>SwitchTransformersStack: block i is sparse when i % step == 1 or step == 1 (none for step &lt;= 0).</summary>
        public static bool IsSparse(int block, int step) => step > 0 && (block % step == 1 || step == 1);

        private static string Text(int v) => v.ToString(CultureInfo.InvariantCulture);
    }

    public ExportedModel Build(ModelConfig modelConfig, WeightPuller weights, ExportOptions options)
    {
        var cfg = Config.Read(modelConfig);
        // encoder/decoder embed_tokens (and lm_head when tied) are the same tensor as shared.weight in HF.
        weights.Ignore("encoder.embed_tokens.weight");
        weights.Ignore("decoder.embed_tokens.weight");
        if (cfg.TieEmbeddings) weights.Ignore("lm_head.weight");
        var encoder = BuildEncoder(cfg, weights, options, out var feeds);
        var decoder = BuildDecoder(cfg, weights, options);
        return new ExportedModel([new ExportedGraph("encoder", encoder), new ExportedGraph("decoder", decoder)], feeds);
    }

    private GraphBuilder BuildEncoder(Config cfg, WeightPuller weights, ExportOptions options, out List<EncoderFeed> feeds)
    {
        var b = new GraphBuilder("switch_transformers_encoder", options.Opset, weights) { MatrixWeightType = options.MatrixWeightType, Quantization = options.Quantization };
        var ids = b.Input(Contract.InputIds, TensorDType.Int64, "batch", "encoder_sequence");
        // 1 = token, 0 = padding (T5 pads on the right, so real tokens keep their positions).
        var mask = b.Input(Contract.AttentionMask, TensorDType.Int64, "batch", "encoder_sequence");
        var x = b.Embedding(ids, "shared.weight", cfg.Vocab, cfg.Model);

        Value bias;
        using (b.Scope("encoder"))
        {
            var positions = b.Range(b.Constant(0L), b.Squeeze(b.DimOf(ids, 1), 0), b.Constant(1L));
            var table = b.Weight("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", [cfg.Buckets, cfg.Heads]);
            bias = b.Add(b.RelativePositionBias(positions, positions, table, bidirectional: true, cfg.Buckets, cfg.MaxDistance), PaddingBias(b, mask));
        }
        for (int i = 0; i < cfg.EncoderLayers; i++)
        {
            using var _ = b.Scope($"encoder.block.{i}");
            string p = $"encoder.block.{i}.layer";
            var h = Norm(b, cfg, x, $"{p}.0.layer_norm.weight");
            var (q, k, v) = (Heads(b, cfg, h, $"{p}.0.SelfAttention.q.weight"), Heads(b, cfg, h, $"{p}.0.SelfAttention.k.weight"), Heads(b, cfg, h, $"{p}.0.SelfAttention.v.weight"));
            x = b.Add(x, Attention(b, cfg, q, k, v, bias, $"{p}.0.SelfAttention.o.weight"));
            x = b.Add(x, FeedForward(b, cfg, Norm(b, cfg, x, $"{p}.1.layer_norm.weight"), $"{p}.1.mlp", "encoder", i, Config.IsSparse(i, cfg.EncoderSparseStep)));
        }
        var encoded = Norm(b, cfg, x, "encoder.final_layer_norm.weight");

        // The decoder's cross-attention keys and values depend only on the encoder output: computed here, once per input.
        feeds = [new EncoderFeed("encoder_attention_mask", "encoder_attention_mask")];
        b.Output(mask, "encoder_attention_mask");
        for (int i = 0; i < cfg.DecoderLayers; i++)
        {
            using var _ = b.Scope($"decoder.block.{i}.cross");
            foreach (var (kind, proj) in new[] { ("key", "k"), ("value", "v") })
            {
                string name = $"cross.{i}.{kind}";
                b.Output(Heads(b, cfg, encoded, $"decoder.block.{i}.layer.1.EncDecAttention.{proj}.weight"), name, ["batch", cfg.Heads, "encoder_sequence", cfg.KeyValue]);
                feeds.Add(new EncoderFeed(name, name));
            }
        }
        return b;
    }

    private GraphBuilder BuildDecoder(Config cfg, WeightPuller weights, ExportOptions options)
    {
        var b = new GraphBuilder("switch_transformers_decoder", options.Opset, weights) { MatrixWeightType = options.MatrixWeightType, Quantization = options.Quantization };
        var ids = b.Input(Contract.InputIds, TensorDType.Int64, "batch", "sequence");
        var pasts = Enumerable.Range(0, cfg.DecoderLayers).Select(i => (
            Key: b.StateInput(i, "key", TensorDType.Float32, ["batch", cfg.Heads, "past_sequence", cfg.KeyValue], 0),
            Value: b.StateInput(i, "value", TensorDType.Float32, ["batch", cfg.Heads, "past_sequence", cfg.KeyValue], 0))).ToList();
        var cross = Enumerable.Range(0, cfg.DecoderLayers).Select(i => (
            Key: b.Input($"cross.{i}.key", TensorDType.Float32, "batch", cfg.Heads, "encoder_sequence", cfg.KeyValue),
            Value: b.Input($"cross.{i}.value", TensorDType.Float32, "batch", cfg.Heads, "encoder_sequence", cfg.KeyValue))).ToList();
        var encoderMask = b.Input("encoder_attention_mask", TensorDType.Int64, "batch", "encoder_sequence");
        var crossBias = PaddingBias(b, encoderMask);
        var tables = b.Embeddings("shared.weight", cfg.Vocab, cfg.Model, cfg.TieEmbeddings, "lm_head.weight");
        var y = b.Embed(tables, ids);

        Value bias;
        using (b.Scope("decoder"))
        {
            // New positions continue from the cached length: queries past..past+T-1 over keys 0..past+T-1.
            var past = b.Squeeze(b.DimOf(pasts[0].Key, 2), 0);
            var total = b.Add(past, b.Squeeze(b.DimOf(ids, 1), 0));
            var queries = b.Range(past, total, b.Constant(1L));
            var keys = b.Range(b.Constant(0L), total, b.Constant(1L));
            var table = b.Weight("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", [cfg.Buckets, cfg.Heads]);
            var position = b.RelativePositionBias(queries, keys, table, bidirectional: false, cfg.Buckets, cfg.MaxDistance);
            // HF adds finfo(float32).min to the bias where a key lies in the query's future.
            var future = b.Greater(b.Unsqueeze(keys, 0), b.Unsqueeze(queries, 1));
            bias = b.Where(future, b.Constant(float.MinValue), position);
        }
        for (int i = 0; i < cfg.DecoderLayers; i++)
        {
            using var _ = b.Scope($"decoder.block.{i}");
            string p = $"decoder.block.{i}.layer";
            var h = Norm(b, cfg, y, $"{p}.0.layer_norm.weight");
            var q = Heads(b, cfg, h, $"{p}.0.SelfAttention.q.weight");
            var k = b.Concat(2, pasts[i].Key, Heads(b, cfg, h, $"{p}.0.SelfAttention.k.weight"));
            var v = b.Concat(2, pasts[i].Value, Heads(b, cfg, h, $"{p}.0.SelfAttention.v.weight"));
            b.StateOutput(pasts[i].Key, k);
            b.StateOutput(pasts[i].Value, v);
            y = b.Add(y, Attention(b, cfg, q, k, v, bias, $"{p}.0.SelfAttention.o.weight"));

            h = Norm(b, cfg, y, $"{p}.1.layer_norm.weight");
            // Cross-attention has no position bias; padded encoder positions are masked.
            y = b.Add(y, Attention(b, cfg, Heads(b, cfg, h, $"{p}.1.EncDecAttention.q.weight"), cross[i].Key, cross[i].Value, crossBias, $"{p}.1.EncDecAttention.o.weight"));
            y = b.Add(y, FeedForward(b, cfg, Norm(b, cfg, y, $"{p}.2.layer_norm.weight"), $"{p}.2.mlp", "decoder", i, Config.IsSparse(i, cfg.DecoderSparseStep)));
        }
        y = Norm(b, cfg, y, "decoder.final_layer_norm.weight");
        // Tied to the input embedding, the output is rescaled by d_model^-0.5 first (Mesh TensorFlow's convention).
        if (cfg.TieEmbeddings) y = b.Mul(y, (float)Math.Pow(cfg.Model, -0.5));
        b.LogitsOutput(b.LmHead(tables, y));
        return b;
    }

    /// <summary>T5LayerNorm: x / sqrt(mean(x^2) + eps) * weight, no mean subtraction and no bias.</summary>
    private static Value Norm(GraphBuilder b, Config cfg, Value x, string weightName) => b.RmsNorm(x, weightName, cfg.Model, cfg.Epsilon);

    /// <summary>HF's extended attention mask: (1 - mask) * float32 min over the keys, [B, 1, 1, S].</summary>
    private static Value PaddingBias(GraphBuilder b, Value mask)
    {
        using var _ = b.Scope("padding_bias");
        var padding = b.Sub(b.Constant(1f), b.Cast(mask, TensorDType.Float32));
        return b.Unsqueeze(b.Mul(padding, float.MinValue), 1, 2);
    }

    /// <summary>A q/k/v projection split into heads: [B, T, d_model] -> [B, H, T, d_kv].</summary>
    private static Value Heads(GraphBuilder b, Config cfg, Value x, string weightName) =>
        b.SplitHeads(b.Linear(x, weightName, cfg.Model, (long)cfg.Heads * cfg.KeyValue), cfg.Heads, cfg.KeyValue);

    /// <summary>T5 attention: no 1/sqrt(d_kv) scaling (folded into the initialisation of q), then the output projection.</summary>
    private static Value Attention(GraphBuilder b, Config cfg, Value q, Value k, Value v, Value? bias, string outName)
    {
        var context = b.ScaledDotProductAttention(q, k, v, scale: 1f, bias);
        return b.Linear(b.MergeHeads(context), outName, (long)cfg.Heads * cfg.KeyValue, cfg.Model);
    }

    /// <summary>The block's feed-forward on the normed input: dense wo(act(wi(x))) or the top-1 mixture of experts.</summary>
    private Value FeedForward(GraphBuilder b, Config cfg, Value x, string p, string side, int block, bool sparse)
    {
        if (!sparse) return DenseActDense(b, cfg, x, p);
        var moe = b.Top1Experts(x, $"{p}.router.classifier.weight", cfg.RouterBias ? $"{p}.router.classifier.bias" : null,
            cfg.Model, cfg.Experts, cfg.Capacity, (tokens, e) => DenseActDense(b, cfg, tokens, $"{p}.experts.expert_{e}"));
        if (ExposeRouting)
        {
            b.Output(moe.RouterLogits, $"{side}_layer{block}_router_logits");
            b.Output(moe.Expert, $"{side}_layer{block}_expert");
        }
        return moe.Output;
    }

    private static Value DenseActDense(GraphBuilder b, Config cfg, Value x, string p) =>
        b.Linear(b.Activation(cfg.Activation, b.Linear(x, $"{p}.wi.weight", cfg.Model, cfg.FeedForward)), $"{p}.wo.weight", cfg.FeedForward, cfg.Model);
}
