namespace Recur.Runtime.Ort;

/// <summary>ONNX tensor element types (values of <c>ONNXTensorElementDataType</c> and TensorProto.DataType).</summary>
public enum TensorElementType
{
    /// <summary>Not a tensor (a sequence or map input/output), or a type Recur does not name.</summary>
    Undefined = 0,
    Float = 1,
    UInt8 = 2,
    Int8 = 3,
    UInt16 = 4,
    Int16 = 5,
    Int32 = 6,
    Int64 = 7,
    String = 8,
    Bool = 9,
    Float16 = 10,
    Double = 11,
    UInt32 = 12,
    UInt64 = 13,
    BFloat16 = 16,
}

/// <summary>Which CLR element type stands for which ONNX element type, and their sizes.</summary>
internal static class TensorElementTypes
{
    /// <summary>The element type that a T[] is stored as. Each test folds to a constant per T in the JIT.</summary>
    internal static TensorElementType Of<T>()
        where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return TensorElementType.Float;
        if (typeof(T) == typeof(double)) return TensorElementType.Double;
        if (typeof(T) == typeof(Half)) return TensorElementType.Float16;
        if (typeof(T) == typeof(BFloat16)) return TensorElementType.BFloat16;
        if (typeof(T) == typeof(long)) return TensorElementType.Int64;
        if (typeof(T) == typeof(int)) return TensorElementType.Int32;
        if (typeof(T) == typeof(short)) return TensorElementType.Int16;
        if (typeof(T) == typeof(sbyte)) return TensorElementType.Int8;
        if (typeof(T) == typeof(ulong)) return TensorElementType.UInt64;
        if (typeof(T) == typeof(uint)) return TensorElementType.UInt32;
        if (typeof(T) == typeof(ushort)) return TensorElementType.UInt16;
        if (typeof(T) == typeof(byte)) return TensorElementType.UInt8;
        if (typeof(T) == typeof(bool)) return TensorElementType.Bool;
        throw new NotSupportedException($"{typeof(T).Name} has no ONNX tensor element type");
    }

    /// <summary>Whether a tensor of <paramref name="type"/> may be viewed as a span of T.</summary>
    internal static bool CanView<T>(TensorElementType type)
        where T : unmanaged =>
        Of<T>() == type
        // Raw 16-bit patterns, for code that converts half-precision values itself.
        || (typeof(T) == typeof(ushort) && type is TensorElementType.Float16 or TensorElementType.BFloat16);

    internal static int SizeOf(TensorElementType type) => type switch
    {
        TensorElementType.Bool or TensorElementType.UInt8 or TensorElementType.Int8 => 1,
        TensorElementType.Float16 or TensorElementType.BFloat16 or TensorElementType.UInt16 or TensorElementType.Int16 => 2,
        TensorElementType.Float or TensorElementType.Int32 or TensorElementType.UInt32 => 4,
        TensorElementType.Double or TensorElementType.Int64 or TensorElementType.UInt64 => 8,
        _ => throw new NotSupportedException($"tensors of {type} elements are not supported (numeric and bool tensors only)"),
    };
}
