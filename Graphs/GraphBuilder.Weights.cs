using Recur.Graphs.Ir;
using Recur.Graphs.Weights;

namespace Recur.Graphs;

public sealed partial class GraphBuilder
{
    private WeightPuller RequireWeights() =>
        Weights ?? throw new InvalidOperationException($"graph '{name}' was built without a checkpoint");

    /// <summary>The storage type of matrix weights (float32, or float16 / bfloat16 on request).</summary>
    public TensorDType MatrixWeightType { get; init; } = TensorDType.Float32;

    /// <summary>Storage type of growing attention caches (convert --kv-dtype): float16 halves them; attention runs in float32.</summary>
    public TensorDType KvCacheType { get; init; } = TensorDType.Float32;

    /// <summary>
    /// A checkpoint tensor as float32, optionally reshaped and transformed elementwise at conversion
    /// (constant folding, e.g. Gemma's 1 + weight), pulled by its Hugging Face name.
    /// </summary>
    public Value Weight(string hfName, long[]? expectedShape = null, Func<float, float>? fold = null, long[]? reshape = null)
    {
        var puller = RequireWeights();
        var entry = puller.Entry(hfName, expectedShape);
        long[] shape = reshape ?? entry.Shape;
        if (shape.Aggregate(1L, (a, d) => a * d) != entry.ElementCount)
            throw Error("Weight", $"cannot view '{hfName}' [{string.Join(", ", entry.Shape)}] as [{string.Join(", ", shape)}]");
        return Initializer(hfName, TensorDType.Float32, shape, () =>
        {
            var data = puller.Read(hfName);
            if (fold is not null)
                for (int i = 0; i < data.Length; i++) data[i] = fold(data[i]);
            return TensorBytes.FromFloat32(data, TensorDType.Float32);
        });
    }

    /// <summary>
    /// A [out, in] checkpoint matrix stored transposed as [in, out] in <see cref="MatrixWeightType"/>,
    /// so <c>x @ W^T</c> is one MatMul with no transpose at run time.
    /// </summary>
    public Value WeightTransposed(string hfName, long[]? expectedShape = null, float scale = 1f)
    {
        var puller = RequireWeights();
        var entry = puller.Entry(hfName, expectedShape);
        if (entry.Shape.Length != 2)
            throw Error("Weight", $"'{hfName}' should be a matrix but has shape [{string.Join(", ", entry.Shape)}]");
        long rows = entry.Shape[0], cols = entry.Shape[1];
        var storage = MatrixWeightType;
        return Initializer(hfName + ".T", storage, [cols, rows], () =>
        {
            var data = puller.Read(hfName);
            // float32 storage transposes straight into the output bytes: one copy of the matrix fewer at the conversion's peak.
            var bytes = storage == TensorDType.Float32 ? new byte[data.LongLength * 4] : null;
            var t = bytes is null ? new float[data.Length] : System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes.AsSpan());
            for (long r = 0; r < rows; r++)
                for (long c = 0; c < cols; c++)
                    t[(int)(c * rows + r)] = data[r * cols + c] * scale;
            return bytes ?? TensorBytes.FromFloat32(t, storage);
        });
    }

    /// <summary>A matrix stored as is ([rows, cols]) in <see cref="MatrixWeightType"/>, e.g. an embedding table.</summary>
    public Value WeightMatrix(string hfName, long[]? expectedShape = null, float scale = 1f)
    {
        var puller = RequireWeights();
        var entry = puller.Entry(hfName, expectedShape);
        var storage = MatrixWeightType;
        return Initializer(hfName, storage, entry.Shape, () =>
        {
            var data = puller.Read(hfName);
            if (scale != 1f)
                for (int i = 0; i < data.Length; i++) data[i] *= scale;
            return TensorBytes.FromFloat32(data, storage);
        });
    }

    /// <summary>A tensor computed at conversion from several checkpoint tensors (e.g. stacked experts).</summary>
    public Value Derived(string derivedName, TensorDType storage, long[] shape, IReadOnlyList<string> sources, Func<Func<string, float[]>, float[]> compute)
    {
        var puller = RequireWeights();
        foreach (var s in sources) puller.Entry(s);
        return Initializer(derivedName, storage, shape, () =>
        {
            var data = compute(puller.Read);
            if (data.LongLength != shape.Aggregate(1L, (a, d) => a * d))
                throw new InvalidOperationException($"'{derivedName}' produced {data.Length} values for shape [{string.Join(", ", shape)}]");
            return TensorBytes.FromFloat32(data, storage);
        });
    }

    /// <summary>Whether the checkpoint has this tensor (for optional biases and tied weights).</summary>
    public bool HasWeight(string hfName) => RequireWeights().Contains(hfName);
}
