using System.Runtime.InteropServices;

namespace Recur.Package;

/// <summary>Finds NaN and infinity in raw tensor bytes: the one check behind convert's weights and loaded states.</summary>
public static class NonFinite
{
    // ONNX TensorProto element types (Graphs' TensorDType and ONNX Runtime's element type share them).
    private const int Float = 1, Float16 = 10, BFloat16 = 16;

    /// <summary>The index of the first NaN or infinite element, or -1 (always -1 for non-float types).</summary>
    public static long FirstIndex(int onnxElementType, ReadOnlySpan<byte> bytes)
    {
        switch (onnxElementType)
        {
            case Float:
                var floats = MemoryMarshal.Cast<byte, float>(bytes);
                for (int i = 0; i < floats.Length; i++) if (!float.IsFinite(floats[i])) return i;
                return -1;
            case Float16:
                var halves = MemoryMarshal.Cast<byte, Half>(bytes);
                for (int i = 0; i < halves.Length; i++) if (!Half.IsFinite(halves[i])) return i;
                return -1;
            case BFloat16:
                // bfloat16 is the top half of a float32: all exponent bits set means NaN or infinity.
                var raw = MemoryMarshal.Cast<byte, ushort>(bytes);
                for (int i = 0; i < raw.Length; i++) if ((raw[i] & 0x7F80) == 0x7F80) return i;
                return -1;
            default:
                return -1;
        }
    }

    /// <summary>"NaN", "+infinity" or "-infinity" for the element at <paramref name="index"/> of a float tensor.</summary>
    public static string Describe(int onnxElementType, ReadOnlySpan<byte> bytes, long index)
    {
        float v = onnxElementType switch
        {
            Float => MemoryMarshal.Cast<byte, float>(bytes)[(int)index],
            Float16 => (float)MemoryMarshal.Cast<byte, Half>(bytes)[(int)index],
            _ => BitConverter.Int32BitsToSingle(MemoryMarshal.Cast<byte, ushort>(bytes)[(int)index] << 16),
        };
        return float.IsNaN(v) ? "NaN" : v > 0 ? "+infinity" : "-infinity";
    }
}
