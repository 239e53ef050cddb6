using Recur.Export.Checkpoints;
using static Recur.Tests.Checkpoints.SafetensorsTestFiles;

namespace Recur.Tests.Checkpoints;

/// <summary>
/// Malformed and unsupported single files: each must fail on open with the right exception type and
/// a one-line message naming the file and the specific problem (tensor, key, found versus expected).
/// </summary>
public sealed class MalformedSafetensorsTests
{
    private sealed record Case(Func<byte[]> Content, Type Exception, params string[] MessageParts);

    private const string W4 = "\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}";

    private static readonly Dictionary<string, Case> Cases = new()
    {
        ["empty_file"] = new(() => [], typeof(InvalidDataException), "empty", "0 bytes"),
        ["shorter_than_prefix"] = new(() => [1, 2, 3, 4, 5], typeof(InvalidDataException), "5 bytes", "8-byte header length"),
        ["header_length_past_end"] = new(() => [.. Prefix(1000), .. "{}"u8], typeof(InvalidDataException), "header length 1000", "10 bytes"),
        ["header_length_2^63-1"] = new(() => [.. Prefix(long.MaxValue), .. "{}"u8], typeof(InvalidDataException), "header length 9223372036854775807"),
        ["header_length_2^64-1"] = new(() => [.. Prefix(ulong.MaxValue), .. "{}"u8], typeof(InvalidDataException), "header length 18446744073709551615"),
        ["header_length_zero"] = new(() => Prefix(0), typeof(InvalidDataException), "not valid JSON"),
        ["json_does_not_parse"] = new(() => Bytes("{\"w\": {\"dtype\": ", 0), typeof(InvalidDataException), "not valid JSON"),
        ["json_is_an_array"] = new(() => Bytes("[1, 2]", 0), typeof(InvalidDataException), "JSON array", "expected an object"),
        ["header_not_utf8"] = new(() => [.. Prefix(6), .. "{\""u8, 0xff, 0xfe, .. "\"}"u8], typeof(InvalidDataException), "not valid UTF-8", "offset 2"),
        ["entry_not_an_object"] = new(() => Bytes("{\"w\": 3}", 0), typeof(InvalidDataException), "'w'", "JSON number"),
        ["missing_dtype"] = new(() => Bytes("{\"w\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4), typeof(InvalidDataException), "'w'", "no \"dtype\""),
        ["missing_shape"] = new(() => Bytes("{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", 4), typeof(InvalidDataException), "'w'", "no \"shape\""),
        ["missing_data_offsets"] = new(() => Bytes("{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4), typeof(InvalidDataException), "'w'", "no \"data_offsets\""),
        ["dtype_not_a_string"] = new(() => Bytes("{\"w\": {\"dtype\": 5, \"shape\": [1], \"data_offsets\": [0, 4]}}", 4), typeof(InvalidDataException), "'w'", "\"dtype\" is a JSON number"),
        ["shape_not_an_array"] = new(() => Bytes("{\"w\": {\"dtype\": \"F32\", \"shape\": \"1\", \"data_offsets\": [0, 4]}}", 4), typeof(InvalidDataException), "'w'", "\"shape\" is a JSON string"),
        ["duplicate_field"] = new(() => Bytes("{\"w\": {\"dtype\": \"F32\", \"dtype\": \"F16\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4), typeof(InvalidDataException), "'w'", "two \"dtype\""),
        ["data_offsets_three_entries"] = new(() => Bytes("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}", 8), typeof(InvalidDataException), "'w'", "[0, 4, 8]", "[begin, end]"),
        ["data_offsets_negative"] = new(() => Bytes("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}", 4), typeof(InvalidDataException), "'w'", "begin is -4"),
        ["data_offsets_past_end"] = new(() => Bytes("{\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 4), typeof(InvalidDataException), "'w'", "[0, 8]", "4 bytes"),
        ["data_offsets_u64_max"] = new(() => Bytes("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 18446744073709551615]}}", 4), typeof(InvalidDataException), "'w'", "past the end"),
        ["end_before_begin"] = new(() => Bytes("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 0]}}", 4), typeof(InvalidDataException), "'w'", "end 0 is before begin 4"),
        ["overlapping_tensors"] = new(() => Bytes("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", 12), typeof(InvalidDataException), "'a'", "'b'", "overlap"),
        ["hole_between_tensors"] = new(() => Bytes("{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}", 12), typeof(InvalidDataException), "'b'", "[4, 8)", "holes"),
        ["trailing_bytes"] = new(() => Bytes("{" + W4 + "}", 12), typeof(InvalidDataException), "12 bytes", "cover 4", "trailing"),
        ["unknown_dtype"] = new(() => Bytes("{\"w\": {\"dtype\": \"Q4\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4), typeof(InvalidDataException), "'w'", "unknown dtype 'Q4'"),
        ["unsupported_dtype_f8"] = new(() => Bytes("{\"w\": {\"dtype\": \"F8_E4M3\", \"shape\": [4], \"data_offsets\": [0, 4]}}", 4), typeof(NotSupportedException), "'w'", "F8_E4M3"),
        ["unsupported_dtype_i16"] = new(() => Bytes("{\"w\": {\"dtype\": \"I16\", \"shape\": [2], \"data_offsets\": [0, 4]}}", 4), typeof(NotSupportedException), "'w'", "I16"),
        ["negative_dim"] = new(() => Bytes("{\"w\": {\"dtype\": \"F32\", \"shape\": [2, -1], \"data_offsets\": [0, 4]}}", 4), typeof(InvalidDataException), "'w'", "dim 1 is -1"),
        ["fractional_dim"] = new(() => Bytes("{\"w\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}", 4), typeof(InvalidDataException), "'w'", "dim 0 is 1.5"),
        ["rank_above_64"] = new(() => Bytes("{\"w\": {\"dtype\": \"F32\", \"shape\": [" + string.Join(", ", Enumerable.Repeat(1, 65)) + "], \"data_offsets\": [0, 4]}}", 4), typeof(NotSupportedException), "'w'", "65 dims"),
        ["shape_bytes_mismatch"] = new(() => Bytes("{\"w\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8), typeof(InvalidDataException), "'w'", "needs 12 bytes", "hold 8"),
        ["shape_product_overflow"] = new(() => Bytes("{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296], \"data_offsets\": [0, 4]}}", 4), typeof(InvalidDataException), "'w'", "overflows"),
        ["metadata_value_not_string"] = new(() => Bytes("{\"__metadata__\": {\"format\": 1}, " + W4 + "}", 4), typeof(InvalidDataException), "__metadata__", "'format'", "JSON number"),
        ["metadata_not_an_object"] = new(() => Bytes("{\"__metadata__\": [\"pt\"], " + W4 + "}", 4), typeof(InvalidDataException), "__metadata__", "JSON array"),
        ["duplicate_tensor_name"] = new(() => Bytes("{" + W4 + ", " + W4 + "}", 4), typeof(InvalidDataException), "'w'", "twice"),
        ["control_characters_in_name"] = new(() => Bytes("{\"a\\nb\": {\"dtype\": \"Q4\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4), typeof(InvalidDataException), "'a\\u000ab'"),
    };

    public static TheoryData<string> CaseNames() => [.. Cases.Keys];

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void FailsWithAPreciseOneLineMessage(string caseName)
    {
        var c = Cases[caseName];
        using var temp = new TempFolder();
        string path = temp.File(caseName + ".safetensors");
        File.WriteAllBytes(path, c.Content());

        var e = Assert.Throws(c.Exception, () => SafetensorsFile.Open(path).Dispose());
        Assert.Contains(path, e.Message);
        foreach (var part in c.MessageParts) Assert.Contains(part, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void MalformedCasesAreAtLeastTwentyFive() => Assert.True(Cases.Count >= 25);

    [Fact]
    public void MissingFileIsFileNotFound()
    {
        using var temp = new TempFolder();
        var e = Assert.Throws<FileNotFoundException>(() => SafetensorsFile.Open(temp.File("nope.safetensors")));
        Assert.Contains("nope.safetensors", e.Message);
    }

    [Fact]
    public void ValidEmptyTensorsAndNoTensorsOpen()
    {
        using var temp = new TempFolder();
        File.WriteAllBytes(temp.File("none.safetensors"), Bytes("{\"__metadata__\": {\"a\": \"b\"}}  ", 0));
        using (var none = SafetensorsFile.Open(temp.File("none.safetensors")))
        {
            Assert.Empty(none.Names);
            Assert.Equal("b", none.Metadata["a"]);
        }
        File.WriteAllBytes(temp.File("empty.safetensors"), Bytes(
            "{\"e\": {\"dtype\": \"F32\", \"shape\": [0, 3], \"data_offsets\": [4, 4]}, " + W4 + "}", 4));
        using var file = SafetensorsFile.Open(temp.File("empty.safetensors"));
        Assert.Empty(file.ReadFloat32("e"));
        Assert.Equal([0f], file.ReadFloat32("w"));
    }

    [Fact]
    public void RandomCorruptionGivesOnlyDataOrSupportErrors()
    {
        // Flipped bytes in a valid file's prefix and header: open either succeeds or fails with one of the two
        // documented exceptions; never another exception type, a hang or a huge allocation.
        using var temp = new TempFolder();
        string valid = temp.File("valid.safetensors");
        Write(valid, [
            new RawTensor("a", "F32", [2, 2], new byte[16]), new RawTensor("b", "BF16", [3], new byte[6]),
            new RawTensor("c", "I64", [1], new byte[8]),
        ], new Dictionary<string, string> { ["format"] = "pt" });
        var original = File.ReadAllBytes(valid);
        int headerEnd = 8 + (int)BitConverter.ToUInt64(original, 0);
        var random = new Random(1234);
        string path = temp.File("corrupt.safetensors");
        for (int trial = 0; trial < 400; trial++)
        {
            var bytes = (byte[])original.Clone();
            for (int k = random.Next(1, 4); k > 0; k--)
                bytes[random.Next(headerEnd)] = (byte)random.Next(256);
            if (random.Next(8) == 0) bytes = bytes[..random.Next(bytes.Length)];
            File.WriteAllBytes(path, bytes);
            try
            {
                using var file = SafetensorsFile.Open(path);
                foreach (var name in file.Names) file.ReadFloat32(name);
            }
            catch (Exception e) when (e is InvalidDataException or NotSupportedException)
            {
                Assert.Contains(path, e.Message);
                Assert.DoesNotContain('\n', e.Message);
            }
        }
    }

    [Fact]
    public void EveryDTypeReadsAndConverts()
    {
        using var temp = new TempFolder();
        string path = temp.File("dtypes.safetensors");
        static byte[] Of<T>(params T[] values) where T : unmanaged =>
            System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
        Write(path, [
            new RawTensor("f32", "F32", [3], Of(1.5f, -0f, float.MaxValue)),
            // F16: 1, -2, 65504 (largest), 2^-24 (smallest subnormal), +inf
            new RawTensor("f16", "F16", [5], Of<ushort>(0x3C00, 0xC000, 0x7BFF, 0x0001, 0x7C00)),
            // BF16: 1, 3.140625, -inf, the smallest normal 2^-126
            new RawTensor("bf16", "BF16", [4], Of<ushort>(0x3F80, 0x4049, 0xFF80, 0x0080)),
            new RawTensor("f64", "F64", [2], Of(0.1, -1e300)),
            new RawTensor("i64", "I64", [2], Of(-3L, 1L << 40)),
            new RawTensor("i32", "I32", [2], Of(7, int.MinValue)),
            new RawTensor("i8", "I8", [2], Of<sbyte>(-128, 127)),
            new RawTensor("u8", "U8", [2], Of<byte>(0, 255)),
            new RawTensor("bool", "BOOL", [3], Of<byte>(0, 1, 1)),
        ]);
        using var file = SafetensorsFile.Open(path);
        Assert.Equal([1.5f, -0f, float.MaxValue], file.ReadFloat32("f32"));
        Assert.Equal([1f, -2f, 65504f, MathF.Pow(2, -24), float.PositiveInfinity], file.ReadFloat32("f16"));
        Assert.Equal([1f, 3.140625f, float.NegativeInfinity, MathF.Pow(2, -126)], file.ReadFloat32("bf16"));
        Assert.Equal([0.1f, float.NegativeInfinity], file.ReadFloat32("f64"));
        Assert.Equal([-3f, 1099511627776f], file.ReadFloat32("i64"));
        Assert.Equal([7f, -2147483648f], file.ReadFloat32("i32"));
        Assert.Equal([-128f, 127f], file.ReadFloat32("i8"));
        Assert.Equal([0f, 255f], file.ReadFloat32("u8"));
        Assert.Equal([0f, 1f, 1f], file.ReadFloat32("bool"));

        var raw = new byte[10];
        file.ReadRaw("f16", raw);
        Assert.Equal(Of<ushort>(0x3C00, 0xC000, 0x7BFF, 0x0001, 0x7C00), raw);
        Assert.True(file.TryGetEntry("i8", out var entry));
        Assert.Equal(TensorDType.Int8, entry.DType);
    }

    [Fact]
    public void ReadRawRejectsAWrongDestinationSize()
    {
        using var temp = new TempFolder();
        string path = temp.File("one.safetensors");
        File.WriteAllBytes(path, Bytes("{" + W4 + "}", 4));
        using var file = SafetensorsFile.Open(path);
        var e = Assert.Throws<ArgumentException>(() => file.ReadRaw("w", new byte[8]));
        Assert.Contains("'w'", e.Message);
        Assert.Contains("has 4 bytes", e.Message);
        Assert.Contains("holds 8", e.Message);
    }

    [Fact]
    public void MissingNameInAFileSuggestsClosest()
    {
        using var temp = new TempFolder();
        string path = temp.File("one.safetensors");
        File.WriteAllBytes(path, Bytes("{" + W4 + "}", 4));
        using var file = SafetensorsFile.Open(path);
        var e = Assert.Throws<KeyNotFoundException>(() => file.ReadFloat32("v"));
        Assert.Contains(path, e.Message);
        Assert.Contains("closest names: 'w'", e.Message);
        Assert.False(file.TryGetEntry("v", out _));
    }

    [Fact]
    public void ReadsAfterDisposeThrow()
    {
        using var temp = new TempFolder();
        string path = temp.File("one.safetensors");
        File.WriteAllBytes(path, Bytes("{" + W4 + "}", 4));
        var file = SafetensorsFile.Open(path);
        file.Dispose();
        file.Dispose();
        Assert.Throws<ObjectDisposedException>(() => file.ReadFloat32("w"));
    }

    [Fact]
    public void ReaderSharesNoMutableShape()
    {
        using var temp = new TempFolder();
        string path = temp.File("one.safetensors");
        File.WriteAllBytes(path, Bytes("{" + W4 + "}", 4));
        using var file = SafetensorsFile.Open(path);
        Assert.True(file.TryGetEntry("w", out var first));
        first.Shape[0] = 99;
        Assert.True(file.TryGetEntry("w", out var second));
        Assert.Equal([1L], second.Shape);
        Assert.Equal("one.safetensors", file.Describe("w"));
    }
}
