using System.Runtime.InteropServices;

namespace Recur.Package.Tensors;

/// <summary>The safetensors dtype names, their element sizes, and conversion of raw bytes to float32.</summary>
public static class SafetensorsDTypes
{
    private static readonly Dictionary<string, TensorDType> Supported = new(StringComparer.Ordinal)
    {
        ["F32"] = TensorDType.Float32, ["F16"] = TensorDType.Float16, ["BF16"] = TensorDType.BFloat16,
        ["F64"] = TensorDType.Float64, ["I64"] = TensorDType.Int64, ["I32"] = TensorDType.Int32,
        ["I8"] = TensorDType.Int8, ["U8"] = TensorDType.UInt8, ["BOOL"] = TensorDType.Bool,
    };

    // Real safetensors dtypes that Recur cannot read yet: a valid file, so NotSupported rather than malformed.
    private static readonly HashSet<string> KnownUnsupported = new(StringComparer.Ordinal)
    {
        "I16", "U16", "U32", "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64",
    };

    public static string SupportedList => string.Join(", ", Supported.Keys);

    public static bool TryParse(string name, out TensorDType dtype) => Supported.TryGetValue(name, out dtype);

    public static bool IsKnownButUnsupported(string name) => KnownUnsupported.Contains(name);

    public static string NameOf(TensorDType dtype) =>
        Supported.FirstOrDefault(kv => kv.Value == dtype).Key ?? dtype.ToString();


    /// <summary>
    /// Converts little-endian elements to float32; exact for F32, F16 and BF16 (every value is
    /// representable), rounding to nearest for F64 and for integers above 2^24.
    /// The caller has checked the host is little-endian, so the bytes are reinterpreted in place.
    /// </summary>
    public static void ToFloat32(TensorDType dtype, ReadOnlySpan<byte> source, Span<float> destination)
    {
        switch (dtype)
        {
            case TensorDType.Float32:
                source.CopyTo(MemoryMarshal.AsBytes(destination));
                break;
            case TensorDType.Float16:
                var halves = MemoryMarshal.Cast<byte, Half>(source);
                for (int i = 0; i < halves.Length; i++) destination[i] = (float)halves[i];
                break;
            case TensorDType.BFloat16:
                // bfloat16 is the upper half of a float32, so widening is a shift, exact for NaN and Inf too.
                var bits = MemoryMarshal.Cast<byte, ushort>(source);
                for (int i = 0; i < bits.Length; i++) destination[i] = BitConverter.Int32BitsToSingle(bits[i] << 16);
                break;
            case TensorDType.Float64:
                var doubles = MemoryMarshal.Cast<byte, double>(source);
                for (int i = 0; i < doubles.Length; i++) destination[i] = (float)doubles[i];
                break;
            case TensorDType.Int64:
                var longs = MemoryMarshal.Cast<byte, long>(source);
                for (int i = 0; i < longs.Length; i++) destination[i] = longs[i];
                break;
            case TensorDType.Int32:
                var ints = MemoryMarshal.Cast<byte, int>(source);
                for (int i = 0; i < ints.Length; i++) destination[i] = ints[i];
                break;
            case TensorDType.Int8:
                var sbytes = MemoryMarshal.Cast<byte, sbyte>(source);
                for (int i = 0; i < sbytes.Length; i++) destination[i] = sbytes[i];
                break;
            case TensorDType.UInt8:
                for (int i = 0; i < source.Length; i++) destination[i] = source[i];
                break;
            case TensorDType.Bool:
                for (int i = 0; i < source.Length; i++) destination[i] = source[i] != 0 ? 1f : 0f;
                break;
            default:
                throw new NotSupportedException($"cannot convert dtype {dtype} to float32");
        }
    }
}
