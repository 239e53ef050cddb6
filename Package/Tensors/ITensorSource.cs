namespace Recur.Package.Tensors;

/// <summary>The element types a checkpoint tensor can have; values are ONNX TensorProto.DataType numbers.</summary>
/// <summary>A tensor's description in a checkpoint.</summary>
public sealed record TensorEntry(string Name, TensorDType DType, long[] Shape)
{
    public long ElementCount => Shape.Aggregate(1L, (a, d) => a * d);
}

/// <summary>Named tensors as an architecture pulls them; implemented by checkpoint readers.</summary>
public interface ITensorSource
{
    IReadOnlyCollection<string> Names { get; }
    bool TryGetEntry(string name, out TensorEntry entry);
    /// <summary>Reads the tensor converted to float32 (from F32, F16, BF16, F64 and integer types).</summary>
    float[] ReadFloat32(string name);
    /// <summary>Reads the raw little-endian bytes of the tensor into destination (length = element count * element size).</summary>
    void ReadRaw(string name, Span<byte> destination);
    /// <summary>Where a tensor comes from, for error messages (e.g. "model-00001-of-00002.safetensors").</summary>
    string Describe(string name);
}
