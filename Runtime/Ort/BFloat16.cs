using System.Globalization;

namespace Recur.Runtime.Ort;

/// <summary>
/// A bfloat16 value: the upper 16 bits of an IEEE float32 (1 sign, 8 exponent, 7 mantissa bits).
/// Only storage and conversion; do arithmetic in float.
/// </summary>
public readonly struct BFloat16 : IEquatable<BFloat16>
{
    private BFloat16(ushort bits) => Bits = bits;

    /// <summary>The raw bit pattern.</summary>
    public ushort Bits { get; }

    public static BFloat16 FromBits(ushort bits) => new(bits);

    /// <summary>Rounds to the nearest bfloat16, ties to even (as PyTorch and ONNX Runtime's Cast do).</summary>
    public static explicit operator BFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
        {
            // Keep the sign and force a quiet-NaN mantissa bit: truncating a NaN whose payload sits
            // only in the low 16 bits would otherwise turn it into infinity.
            return new BFloat16((ushort)((bits >> 16) | 0x0040));
        }
        uint lowestKeptBit = (bits >> 16) & 1;
        return new BFloat16((ushort)((bits + 0x7FFFu + lowestKeptBit) >> 16));
    }

    /// <summary>Exact: every bfloat16 is a float32.</summary>
    public static explicit operator float(BFloat16 value) => BitConverter.UInt32BitsToSingle((uint)value.Bits << 16);

    /// <summary>Bitwise equality (so NaN equals the same NaN, and +0 differs from -0).</summary>
    public bool Equals(BFloat16 other) => Bits == other.Bits;

    public override bool Equals(object? obj) => obj is BFloat16 other && Equals(other);

    public override int GetHashCode() => Bits;

    public static bool operator ==(BFloat16 left, BFloat16 right) => left.Equals(right);

    public static bool operator !=(BFloat16 left, BFloat16 right) => !left.Equals(right);

    public override string ToString() => ((float)this).ToString(CultureInfo.InvariantCulture);
}
