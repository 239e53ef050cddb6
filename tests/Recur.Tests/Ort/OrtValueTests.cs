using Recur.Runtime.Ort;
using static Recur.Tests.Ort.OnnxModels;
using DataType = Recur.Graphs.Onnx.TensorProto.Types.DataType;

namespace Recur.Tests.Ort;

public sealed class OrtValueTests
{
    public OrtValueTests() => OrtTestLibrary.EnsureInitialized();

    [Fact]
    public void Float16_CastsBothWays()
    {
        float[] floats = [1.5f, -2.25f, 65504f, 0.099975586f, 0f, -0f];
        using (var toHalf = Session(Unary("Cast", DataType.Float, DataType.Float16, [6], Int("to", (long)DataType.Float16))))
        using (var x = OrtValue.FromArray(floats, [6]))
        using (var y = toHalf.Run(["x"], [x], ["y"])[0])
        {
            Assert.Equal(TensorElementType.Float16, y.ElementType);
            Assert.Equal(floats.Select(f => (Half)f).ToArray(), y.AsSpan<Half>().ToArray());
            Assert.Equal(floats.Select(f => BitConverter.HalfToUInt16Bits((Half)f)).ToArray(), y.AsSpan<ushort>().ToArray());
        }

        Half[] halves = [(Half)0.5f, (Half)(-3.75f), Half.MaxValue, Half.Epsilon, Half.NegativeInfinity];
        using var toFloat = Session(Unary("Cast", DataType.Float16, DataType.Float, [5], Int("to", (long)DataType.Float)));
        using var h = OrtValue.FromArray(halves, [5]);
        Assert.Equal(TensorElementType.Float16, h.ElementType);
        using var f = toFloat.Run(["x"], [h], ["y"])[0];
        Assert.Equal(halves.Select(v => (float)v).ToArray(), f.AsSpan<float>().ToArray());
    }

    [Fact]
    public void BFloat16_CastsBothWays_AndRoundsLikeOnnxRuntime()
    {
        // Ties (1 + 2^-8 and 1 + 3*2^-8) go to the even neighbour; the rest round to nearest.
        float[] floats = [1f, 1.00390625f, 1.01171875f, 3.14159265f, -2.5e-3f, 65504f, 1e30f, -7.0f, 0f];
        using (var toBf16 = Session(Unary("Cast", DataType.Float, DataType.Bfloat16, [floats.Length], Int("to", (long)DataType.Bfloat16))))
        using (var x = OrtValue.FromArray(floats, [floats.Length]))
        using (var y = toBf16.Run(["x"], [x], ["y"])[0])
        {
            Assert.Equal(TensorElementType.BFloat16, y.ElementType);
            var expected = floats.Select(v => ((BFloat16)v).Bits).ToArray();
            Assert.Equal(expected, y.AsSpan<BFloat16>().ToArray().Select(v => v.Bits).ToArray());
            Assert.Equal(expected, y.AsSpan<ushort>().ToArray());
            Assert.Equal((ushort)0x3F80, y.AsSpan<BFloat16>()[1].Bits); // tie down to even 1.0
            Assert.Equal((ushort)0x3F82, y.AsSpan<BFloat16>()[2].Bits); // tie up to even 1.015625
        }

        BFloat16[] values = [(BFloat16)0.5f, (BFloat16)(-3.75f), (BFloat16)1e-20f, BFloat16.FromBits(0x7F80)];
        using var toFloat = Session(Unary("Cast", DataType.Bfloat16, DataType.Float, [4], Int("to", (long)DataType.Float)));
        using var b = OrtValue.FromArray(values, [4]);
        using var f = toFloat.Run(["x"], [b], ["y"])[0];
        Assert.Equal(values.Select(v => (float)v).ToArray(), f.AsSpan<float>().ToArray());
        Assert.Equal(float.PositiveInfinity, f.AsSpan<float>()[3]);
    }

    [Fact]
    public void Int64_Int32_Bool_RoundTrip()
    {
        long[] longs = [long.MinValue, -1, 0, 42, long.MaxValue];
        using (var identity = Session(Unary("Identity", DataType.Int64, DataType.Int64, [5])))
        using (var x = OrtValue.FromArray(longs, [5]))
        using (var y = identity.Run(["x"], [x], ["y"])[0])
        {
            Assert.Equal(TensorElementType.Int64, y.ElementType);
            Assert.Equal(longs, y.AsSpan<long>().ToArray());
        }

        int[] ints = [int.MinValue, -7, 0, 7, int.MaxValue];
        using (var widen = Session(Unary("Cast", DataType.Int32, DataType.Int64, [5], Int("to", (long)DataType.Int64))))
        using (var x = OrtValue.FromArray(ints, [5]))
        using (var y = widen.Run(["x"], [x], ["y"])[0])
        {
            Assert.Equal(TensorElementType.Int32, x.ElementType);
            Assert.Equal(ints.Select(i => (long)i).ToArray(), y.AsSpan<long>().ToArray());
        }

        bool[] bools = [true, false, false, true];
        using (var not = Session(Unary("Not", DataType.Bool, DataType.Bool, [2, 2])))
        using (var x = OrtValue.FromArray(bools, [2, 2]))
        using (var y = not.Run(["x"], [x], ["y"])[0])
        {
            Assert.Equal(TensorElementType.Bool, y.ElementType);
            Assert.Equal([false, true, true, false], y.AsSpan<bool>().ToArray());
        }
    }

    [Fact]
    public void EveryMappedType_RoundTripsThroughIdentity()
    {
        RoundTrip(DataType.Float, new[] { 1.25f, -0f });
        RoundTrip(DataType.Double, new[] { Math.PI, -1e300 });
        RoundTrip(DataType.Float16, new[] { (Half)1.5f, (Half)(-2f) });
        RoundTrip(DataType.Bfloat16, new[] { (BFloat16)1.5f, (BFloat16)(-2f) });
        RoundTrip(DataType.Int64, new[] { long.MaxValue, -3L });
        RoundTrip(DataType.Int32, new[] { int.MinValue, 9 });
        RoundTrip(DataType.Int16, new short[] { short.MinValue, 300 });
        RoundTrip(DataType.Uint16, new ushort[] { ushort.MaxValue, 1 });
        RoundTrip(DataType.Uint8, new byte[] { 255, 0 });
        RoundTrip(DataType.Int8, new sbyte[] { -128, 127 });
        RoundTrip(DataType.Bool, new[] { true, false });
        RoundTrip(DataType.Uint64, new[] { ulong.MaxValue, 5UL });
        RoundTrip(DataType.Uint32, new[] { uint.MaxValue, 6U });
    }

    private static void RoundTrip<T>(DataType type, T[] data)
        where T : unmanaged
    {
        using var session = Session(Unary("Identity", type, type, [data.Length]));
        Assert.Equal((TensorElementType)(int)type, session.Inputs[0].ElementType);
        using var x = OrtValue.FromArray(data, [data.Length]);
        Assert.Equal((TensorElementType)(int)type, x.ElementType);
        using var y = session.Run(["x"], [x], ["y"])[0];
        Assert.Equal((TensorElementType)(int)type, y.ElementType);
        Assert.Equal(data, y.AsSpan<T>().ToArray());
    }

    [Fact]
    public void PreallocatedOutput_OverManagedArray_IsWrittenInPlace()
    {
        using var session = Session(Doubler(2, 3));
        var result = new float[6];
        using var x = OrtValue.FromArray(new float[] { 1, 2, 3, 4, 5, 6 }, [2, 3]);
        using var y = OrtValue.FromArray(result, [2, 3]);
        var outputs = new OrtValue?[] { y };

        session.Run(["x"], [x], ["y"], outputs);

        Assert.Same(y, outputs[0]);
        Assert.Equal([2f, 4f, 6f, 8f, 10f, 12f], result);
    }

    [Fact]
    public unsafe void PreallocatedOutput_Allocated_KeepsItsBuffer_AcrossSteps()
    {
        // A state carried between steps in two ORT-owned buffers that swap roles: next = current + current.
        using var session = Session(Doubler(4));
        using var a = OrtValue.Allocate(TensorElementType.Float, [4]);
        using var b = OrtValue.Allocate(TensorElementType.Float, [4]);
        Assert.Equal([0f, 0f, 0f, 0f], a.AsSpan<float>().ToArray());
        a.AsSpan<float>().Fill(1f);
        nint aData = (nint)a.DataPointer, bData = (nint)b.DataPointer;

        var (current, next) = (a, b);
        for (int step = 0; step < 3; step++)
        {
            var outputs = new OrtValue?[] { next };
            session.Run(["x"], [current], ["y"], outputs);
            Assert.Same(next, outputs[0]);
            (current, next) = (next, current);
        }

        Assert.Equal(aData, (nint)a.DataPointer);
        Assert.Equal(bData, (nint)b.DataPointer);
        Assert.Equal([4f, 4f, 4f, 4f], a.AsSpan<float>().ToArray()); // 1 -> b 2 -> a 4 -> b 8
        Assert.Equal([8f, 8f, 8f, 8f], b.AsSpan<float>().ToArray());
    }

    [Fact]
    public void MixedOutputs_NullEntriesAreAllocatedByOrt()
    {
        var model = Model(Graph(
            "two",
            [Node("Add", ["x", "x"], ["double"]), Node("Mul", ["x", "x"], ["square"])],
            [Tensor("x", DataType.Float, 3)],
            [Tensor("double", DataType.Float, 3), Tensor("square", DataType.Float, 3)]));
        using var session = Session(model);
        using var x = OrtValue.FromArray(new float[] { 1, 2, 3 }, [3]);
        var square = new float[3];
        using var squareValue = OrtValue.FromArray(square, [3]);
        var outputs = new OrtValue?[] { null, squareValue };

        session.Run(["x"], [x], ["double", "square"], outputs);

        using var doubled = outputs[0]!;
        Assert.Equal([2f, 4f, 6f], doubled.AsSpan<float>().ToArray());
        Assert.Equal([1f, 4f, 9f], square);
    }

    [Fact]
    public void Allocate_IsZeroFilled_WithShape()
    {
        using var value = OrtValue.Allocate(TensorElementType.Int64, [2, 0, 3]);
        Assert.Equal([2L, 0L, 3L], value.Shape);
        Assert.Equal(0, value.ElementCount);
        Assert.Equal(0, value.AsSpan<long>().Length);

        using var big = OrtValue.Allocate(TensorElementType.Double, [3, 5]);
        Assert.Equal(15, big.ElementCount);
        Assert.All(big.AsSpan<double>().ToArray(), v => Assert.Equal(0d, v));

        using var scalar = OrtValue.Allocate(TensorElementType.Int32, []);
        Assert.Empty(scalar.Shape);
        Assert.Equal(1, scalar.ElementCount);
        Assert.Equal(0, scalar.AsSpan<int>()[0]);
    }

    [Fact]
    public void FromArray_SharesMemoryWithTheArray()
    {
        var data = new int[] { 1, 2, 3, 4 };
        using var value = OrtValue.FromArray(data, [2, 2]);
        value.AsSpan<int>()[3] = 40;
        data[0] = 10;
        Assert.Equal(40, data[3]);
        Assert.Equal(10, value.AsSpan<int>()[0]);
        Assert.Equal([2L, 2L], value.Shape);
        Assert.Equal(4, value.ElementCount);
    }

    [Fact]
    public void FromArray_ShapeMismatch_Throws()
    {
        var e = Assert.Throws<ArgumentException>(() => OrtValue.FromArray(new float[5], [2, 3]));
        Assert.Contains("[2, 3] holds 6 elements", e.Message);
        Assert.Contains("has 5", e.Message);
        Assert.Throws<ArgumentException>(() => OrtValue.FromArray(new float[0], [-1]));
    }

    [Fact]
    public void AsSpan_WrongType_Throws()
    {
        using var value = OrtValue.FromArray(new long[] { 1, 2 }, [2]);
        var e = Assert.Throws<InvalidOperationException>(() => value.AsSpan<int>());
        Assert.Contains("Int64", e.Message);
        Assert.Throws<InvalidOperationException>(() => value.AsSpan<ushort>());

        using var half = OrtValue.FromArray(new Half[] { (Half)1f }, [1]);
        Assert.Equal(BitConverter.HalfToUInt16Bits((Half)1f), half.AsSpan<ushort>()[0]);
        Assert.Throws<InvalidOperationException>(() => half.AsSpan<BFloat16>());
    }

    [Fact]
    public void Allocate_StringTensor_IsNotSupported()
    {
        Assert.Throws<NotSupportedException>(() => OrtValue.Allocate(TensorElementType.String, [1]));
    }
}
