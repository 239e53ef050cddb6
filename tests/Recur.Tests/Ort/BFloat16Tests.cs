using Recur.Runtime.Ort;

namespace Recur.Tests.Ort;

public sealed class BFloat16Tests
{
    [Theory]
    [InlineData(1.0f, 0x3F80)]
    [InlineData(-2.0f, 0xC000)]
    [InlineData(0.0f, 0x0000)]
    [InlineData(-0.0f, 0x8000)]
    [InlineData(1.00390625f, 0x3F80)]      // exactly half-way, mantissa even: stays
    [InlineData(1.01171875f, 0x3F82)]      // exactly half-way, mantissa odd: rounds up to even
    [InlineData(1.0039064f, 0x3F81)]       // just above half-way: up
    [InlineData(3.4028235e38f, 0x7F80)]    // float max rounds to infinity
    [InlineData(float.PositiveInfinity, 0x7F80)]
    [InlineData(float.NegativeInfinity, 0xFF80)]
    public void FromFloat_RoundsToNearestEven(float value, int bits)
    {
        Assert.Equal((ushort)bits, ((BFloat16)value).Bits);
    }

    [Fact]
    public void NaN_StaysNaN_EvenWithPayloadOnlyInLowBits()
    {
        var quiet = (BFloat16)float.NaN;
        Assert.True(float.IsNaN((float)quiet));
        var lowPayload = BitConverter.UInt32BitsToSingle(0x7F800001);
        Assert.True(float.IsNaN(lowPayload));
        Assert.True(float.IsNaN((float)(BFloat16)lowPayload));
        var negative = BitConverter.UInt32BitsToSingle(0xFF800001);
        Assert.Equal(0x8000, ((BFloat16)negative).Bits & 0x8000);
    }

    [Fact]
    public void ToFloat_IsExact_AndRoundTrips()
    {
        for (int bits = 0; bits <= 0xFFFF; bits += 7)
        {
            var value = BFloat16.FromBits((ushort)bits);
            float f = (float)value;
            if (!float.IsNaN(f))
            {
                Assert.Equal(value, (BFloat16)f);
            }
        }
        Assert.Equal(3.140625f, (float)(BFloat16)3.14159265f);
    }

    [Fact]
    public void Equality_IsBitwise()
    {
        Assert.Equal(BFloat16.FromBits(0x3F80), (BFloat16)1f);
        Assert.True((BFloat16)1f == BFloat16.FromBits(0x3F80));
        Assert.True((BFloat16)0f != (BFloat16)(-0f));
        Assert.Equal("1.5", ((BFloat16)1.5f).ToString());
        Assert.Equal(2, System.Runtime.CompilerServices.Unsafe.SizeOf<BFloat16>());
    }
}
