using Recur.Graphs.Config;
using Recur.Graphs.Weights;

namespace Recur.Graphs.Architectures;

/// <summary>How a conversion was asked to build the graph.</summary>
public sealed record ExportOptions
{
    public int Opset { get; init; } = GraphBuilder.DefaultOpset;
    /// <summary>Storage type of matrix weights; norms, exp/softplus, softmax and soft caps stay float32.</summary>
    public TensorDType MatrixWeightType { get; init; } = TensorDType.Float32;
    /// <summary>Integer matrix weights (int8 / int4 through MatMulNBits) instead of float ones; null for float.</summary>
    public WeightQuantization? Quantization { get; init; }
    /// <summary>RWKV-4: positions per chunk of the parallel WKV for prompts, 0 for the Scan over positions; null for the default.</summary>
    public int? WkvChunk { get; init; }
    /// <summary>
    /// Attention caches as buffers of this many positions updated in place (no copy of the cache per step); null
    /// keeps caches that grow by Concat, which onnxruntime-genai drives as they are.
    /// </summary>
    public int? KvCacheLength { get; init; }
    /// <summary>Storage type of growing attention caches: Float32, or Float16 to halve them (attention stays float32).</summary>
    public TensorDType KvCacheType { get; init; } = TensorDType.Float32;
}

/// <summary>One graph of a package: "decoder" (every model) or "encoder" (encoder-decoder models).</summary>
public sealed record ExportedGraph(string Role, GraphBuilder Graph);

/// <summary>An encoder output that feeds the decoder input of the same meaning on every decoder call.</summary>
public sealed record EncoderFeed(string EncoderOutput, string DecoderInput);

public sealed record ExportedModel(IReadOnlyList<ExportedGraph> Graphs, IReadOnlyList<EncoderFeed> Feeds)
{
    /// <summary>Extra files for the package, name -> text (e.g. genai_config.json for onnxruntime-genai).</summary>
    public IReadOnlyDictionary<string, string> ExtraFiles { get; init; } = new Dictionary<string, string>();

    public static ExportedModel DecoderOnly(GraphBuilder decoder) => new([new ExportedGraph("decoder", decoder)], []);
}

/// <summary>A Hugging Face model_type that Recur can convert.</summary>
public interface IArchitecture
{
    string ModelType { get; }
    /// <summary>The Hugging Face class whose forward pass the graph reproduces.</summary>
    string HfClass { get; }
    ExportedModel Build(ModelConfig config, WeightPuller weights, ExportOptions options);
}
