using Recur.Package;
using Recur.Graphs.Ir;
using Recur.Graphs.Weights;

namespace Recur.Graphs;

public sealed partial class GraphBuilder
{
    /// <summary>
    /// y = x W^T (+ b) for a Hugging Face nn.Linear, W pulled by name as [out, in] and stored pre-transposed,
    /// or quantised block-wise in its own [out, in] layout when the graph has a <see cref="Quantization"/>.
    /// <paramref name="scale"/> is folded into W at conversion (exact up to rounding).
    /// </summary>
    public Value Linear(Value x, string weightName, long inFeatures, long outFeatures, string? biasName = null, float scale = 1f)
    {
        using var _ = Scope(ShortName(weightName));
        var y = Quantization is not null
            ? QuantizedMatMul(x, weightName, inFeatures, outFeatures, scale)
            : MatMulWeight(x, WeightTransposed(weightName, [outFeatures, inFeatures], scale));
        return biasName is null ? y : Add(y, Weight(biasName, [outFeatures]));
    }

    /// <summary>
    /// x @ w for float32 activations and a weight stored as float32, float16 or bfloat16. float16 is
    /// written as a float16 MatMul between casts: providers with float16 kernels (CUDA, DirectML, ARM64
    /// CPU) run it in float16; ONNX Runtime's x86 CPU build has none and widens it back to float32 at
    /// session start, so there float16 halves the package, not the memory. bfloat16 widens the weight
    /// in the graph (no provider here multiplies bfloat16).
    /// </summary>
    public Value MatMulWeight(Value x, Value w) => w.Type switch
    {
        _ when w.Type == x.Type => MatMul(x, w),
        TensorDType.Float16 => Cast(MatMul(Cast(x, TensorDType.Float16), w), x.Type),
        _ => MatMul(x, Cast(w, x.Type)),
    };

    /// <summary>Rows of an embedding table [vocab, hidden] for int64 ids, as float32.</summary>
    public Value Embedding(Value ids, string tableName, long vocab, long hidden, float scale = 1f)
    {
        using var _ = Scope(ShortName(tableName));
        return Cast(Gather(WeightMatrix(tableName, [vocab, hidden], scale), ids), TensorDType.Float32);
    }

    /// <summary>
    /// The input embedding and the output projection of a model whose lm_head is tied to it (or not):
    /// a tied table is stored ONCE, transposed to [hidden, vocab], so the lm_head is one MatMul and the
    /// embedding gathers along axis 1. With quantised weights a tied table is stored twice: float32 for the
    /// gather (one row per token, exact embeddings) and quantised for the lm_head (every row per token: the
    /// largest matrix of a small model, so it is the one decode must read in fewer bytes).
    /// </summary>
    public sealed record EmbeddingTables(string TableName, Value? TiedTransposed, string? HeadName, long Vocab, long Hidden);

    public EmbeddingTables Embeddings(string tableName, long vocab, long hidden, bool tied, string headName) =>
        Quantization is not null ? new(tableName, null, tied ? tableName : headName, vocab, hidden)
        : new(tableName, tied ? WeightTransposed(tableName, [vocab, hidden]) : null, tied ? null : headName, vocab, hidden);

    /// <summary>Rows of the embedding table for int64 ids [B, T] -> [B, T, hidden] float32.</summary>
    public Value Embed(EmbeddingTables tables, Value ids)
    {
        if (tables.TiedTransposed is not { } tableT) return Embedding(ids, tables.TableName, tables.Vocab, tables.Hidden);
        using var _ = Scope(ShortName(tables.TableName));
        return Cast(Transpose(Gather(tableT, ids, axis: 1), 1, 2, 0), TensorDType.Float32);
    }

    /// <summary>The lm_head: x [B, T, hidden] -> logits [B, T, vocab] float32.</summary>
    public Value LmHead(EmbeddingTables tables, Value x)
    {
        x = KeepLastPositions(x);
        if (tables.TiedTransposed is { } tableT)
        {
            using var _ = Scope("lm_head");
            return MatMulWeight(x, tableT);
        }
        if (Quantization is null) return Linear(x, tables.HeadName!, tables.Hidden, tables.Vocab);
        // Quantised: the head's own matrix or, tied, a quantised copy of the table ([vocab, hidden] as is), at the head's bits.
        using var __ = Scope(tables.HeadName == tables.TableName ? "lm_head" : ShortName(tables.HeadName!));
        return QuantizedMatMul(x, tables.HeadName!, tables.Hidden, tables.Vocab, policy: Quantization.ForHead());
    }

    /// <summary>
    /// x [B, T, C] -> its last <c>logits_to_keep</c> positions. A prompt's next token needs only the last
    /// position, and the lm_head over every prompt position is a large share of a prefill (vocab x hidden
    /// per position). The input defaults to 0 (all positions) through an initializer of the same name, so
    /// a caller that does not know it gets every position's logits.
    /// </summary>
    public Value KeepLastPositions(Value x)
    {
        using var _ = Scope(Contract.LogitsToKeep);
        var keep = InputWithDefault(Contract.LogitsToKeep, 0L);
        var length = DimOf(x, 1);
        // start = T - keep when 0 < keep < T, else 0.
        var start = Where(Greater(keep, Constant(0L)), Max(Sub(length, Unsqueeze(keep, 0)), Ints(0)), Ints(0));
        return Slice(x, start, Ints(long.MaxValue), [1]);
    }

    /// <summary>"model.layers.0.self_attn.q_proj.weight" -> "q_proj", for node names.</summary>
    private static string ShortName(string hfName)
    {
        var parts = hfName.Split('.');
        return parts.Length >= 2 && parts[^1] is "weight" or "bias" ? parts[^2] : parts[^1];
    }
}
