using System.Runtime.InteropServices;
using Recur.Graphs.Weights;

namespace Recur.Graphs.Ir;

/// <summary>Element sizes and float32 to storage-type conversion for initializer bytes.</summary>
public static class TensorBytes
{
    public static bool IsFloat(TensorDType type) =>
        type is TensorDType.Float32 or TensorDType.Float16 or TensorDType.BFloat16 or TensorDType.Float64;

    /// <summary>Float32 values stored as <paramref name="type"/> (round to nearest even for 16-bit floats).</summary>
    public static byte[] FromFloat32(ReadOnlySpan<float> values, TensorDType type)
    {
        switch (type)
        {
            case TensorDType.Float32:
                return MemoryMarshal.AsBytes(values).ToArray();
            case TensorDType.Float16:
            {
                var bytes = new byte[values.Length * 2];
                var dst = MemoryMarshal.Cast<byte, Half>(bytes.AsSpan());
                for (int i = 0; i < values.Length; i++) dst[i] = (Half)values[i];
                return bytes;
            }
            case TensorDType.BFloat16:
            {
                var bytes = new byte[values.Length * 2];
                var dst = MemoryMarshal.Cast<byte, ushort>(bytes.AsSpan());
                for (int i = 0; i < values.Length; i++) dst[i] = ToBFloat16Bits(values[i]);
                return bytes;
            }
            default:
                throw new NotSupportedException($"cannot store float weights as {type}");
        }
    }

    public static ushort ToBFloat16Bits(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40);
        uint roundingBias = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + roundingBias) >> 16);
    }

    public static float RoundToBFloat16(float value) => BitConverter.UInt32BitsToSingle((uint)ToBFloat16Bits(value) << 16);
}
