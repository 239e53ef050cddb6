using System.Security.Cryptography;
using System.Text.Json;
using Recur.Export.Checkpoints;
using Recur.Graphs.Weights;

using Recur.Tests.Support;

namespace Recur.Tests.Checkpoints;

/// <summary>
/// Every tensor of every golden file against golden_tensor_sums.json, a table written by
/// golden_tensor_sums.py with Python's standard library alone (an independent reader).
/// </summary>
public sealed class GoldenCheckpointTests
{
    private sealed record Expected(string Name, string DType, long[] Shape, long Count, double Sum, double AbsSum, string Sha256);

    private static readonly Lazy<Dictionary<string, List<Expected>>> Table = new(() =>
    {
        string path = Path.Combine(GoldenCases.RepositoryRoot, "tests", "Recur.Tests", "Checkpoints", "golden_tensor_sums.json");
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        return doc.RootElement.GetProperty("cases").EnumerateObject().ToDictionary(
            c => c.Name,
            c => c.Value.EnumerateArray().Select(t => new Expected(
                t.GetProperty("name").GetString()!,
                t.GetProperty("dtype").GetString()!,
                t.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray(),
                t.GetProperty("count").GetInt64(),
                t.GetProperty("sum").GetDouble(),
                t.GetProperty("abs_sum").GetDouble(),
                t.GetProperty("sha256").GetString()!)).ToList());
    });

    private static readonly Dictionary<string, TensorDType> DTypes = new()
    {
        ["F32"] = TensorDType.Float32, ["BF16"] = TensorDType.BFloat16, ["F16"] = TensorDType.Float16, ["I64"] = TensorDType.Int64,
    };

    public static TheoryData<string, string> Files()
    {
        var data = new TheoryData<string, string>();
        foreach (var c in GoldenCases.All)
        {
            data.Add(c, "model.safetensors");
            data.Add(c, "expected.safetensors");
        }
        return data;
    }

    [Fact]
    public void TableCoversEveryGoldenFile()
    {
        var files = GoldenCases.All.SelectMany(c => new[] { $"{c}/model.safetensors", $"{c}/expected.safetensors" });
        Assert.Equal(files.Order(StringComparer.Ordinal), Table.Value.Keys.Order(StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void EveryTensorMatchesTheIndependentReference(string caseName, string file)
    {
        using var reader = SafetensorsFile.Open(Path.Combine(GoldenCases.Dir(caseName), file));
        AssertMatches(reader, Table.Value[$"{caseName}/{file}"]);
        Assert.Equal("pt", reader.Metadata["format"]);
    }

    [Theory]
    [MemberData(nameof(GoldenCaseNames))]
    public void CheckpointFolderReadsTheModel(string caseName)
    {
        using var checkpoint = Checkpoint.Open(GoldenCases.Dir(caseName));
        Assert.Equal(["model.safetensors"], checkpoint.Files);
        AssertMatches(checkpoint, Table.Value[$"{caseName}/model.safetensors"]);
        Assert.Equal("model.safetensors", checkpoint.Describe(checkpoint.Names.First()));
        // One file: the hash is the file's own SHA-256, what sha256sum prints.
        var expected = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(GoldenCases.Dir(caseName), "model.safetensors"))));
        Assert.Equal(expected, checkpoint.ContentHash);
    }

    public static TheoryData<string> GoldenCaseNames() => [.. GoldenCases.All];

    [Theory]
    [InlineData("gemma_bf16")]
    [InlineData("recurrent_gemma_bf16")]
    public void Bf16WidensExactlyByShifting(string caseName)
    {
        using var checkpoint = Checkpoint.Open(GoldenCases.Dir(caseName));
        foreach (var name in checkpoint.Names)
        {
            Assert.True(checkpoint.TryGetEntry(name, out var entry));
            Assert.Equal(TensorDType.BFloat16, entry.DType);
            var raw = new byte[entry.ElementCount * 2];
            checkpoint.ReadRaw(name, raw);
            var floats = checkpoint.ReadFloat32(name);
            for (int i = 0; i < floats.Length; i++)
                Assert.Equal(BitConverter.ToUInt16(raw, 2 * i) << 16, BitConverter.SingleToInt32Bits(floats[i]));
        }
    }

    [Fact]
    public void Bf16KnownElements()
    {
        // First elements of gemma_bf16's embedding, with the values Python's struct gives for bits << 16.
        using var checkpoint = Checkpoint.Open(GoldenCases.Dir("gemma_bf16"));
        var values = checkpoint.ReadFloat32("model.embed_tokens.weight");
        (int Bits, float Value)[] expected =
        [
            (unchecked((int)0xbe410000), -0.1884765625f), (0x3e5c0000, 0.21484375f), (0x3e9a0000, 0.30078125f),
            (0x3d490000, 0.049072265625f), (unchecked((int)0xbe750000), -0.2392578125f), (0x3ee60000, 0.44921875f),
        ];
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.Equal(expected[i].Bits, BitConverter.SingleToInt32Bits(values[i]));
            Assert.Equal(expected[i].Value, values[i]);
        }
    }

    private static void AssertMatches(ITensorSource source, List<Expected> expected)
    {
        Assert.Equal(expected.Select(e => e.Name).Order(StringComparer.Ordinal), source.Names);
        foreach (var e in expected)
        {
            Assert.True(source.TryGetEntry(e.Name, out var entry), e.Name);
            Assert.Equal(e.Name, entry.Name);
            Assert.Equal(DTypes[e.DType], entry.DType);
            Assert.Equal(e.Shape, entry.Shape);
            Assert.Equal(e.Count, entry.ElementCount);

            var values = source.ReadFloat32(e.Name);
            Assert.Equal(e.Count, values.Length);
            double sum = 0;
            foreach (float v in values) sum += v;
            Assert.True(Math.Abs(sum - e.Sum) <= 1e-6 * Math.Max(e.AbsSum, 1e-30),
                $"{e.Name}: sum {sum:R}, reference {e.Sum:R}");

            var raw = new byte[values.Length * (e.DType is "F32" ? 4 : e.DType is "I64" ? 8 : 2)];
            source.ReadRaw(e.Name, raw);
            Assert.Equal(e.Sha256, Convert.ToHexStringLower(SHA256.HashData(raw)));
        }
    }
}
