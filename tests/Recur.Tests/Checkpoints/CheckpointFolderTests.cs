using System.Security.Cryptography;
using System.Text;
using Recur.Export.Checkpoints;
using static Recur.Tests.Checkpoints.SafetensorsTestFiles;

using Recur.Tests.Support;

namespace Recur.Tests.Checkpoints;

/// <summary>Checkpoint folders: single file, sharded with an index, and the ways a folder can be wrong.</summary>
public sealed class CheckpointFolderTests
{
    private const string Index = "model.safetensors.index.json";
    private const string Shard1 = "model-00001-of-00002.safetensors";
    private const string Shard2 = "model-00002-of-00002.safetensors";

    /// <summary>Splits a golden model into two shards and an index, as save_pretrained does for large models.</summary>
    private static List<RawTensor> WriteSharded(string folder, string caseName, Func<List<RawTensor>, List<RawTensor>, string>? indexJson = null)
    {
        var tensors = Read(Path.Combine(GoldenCases.Dir(caseName), "model.safetensors"));
        var first = tensors.Where((_, i) => i % 2 == 0).ToList();
        var second = tensors.Where((_, i) => i % 2 == 1).ToList();
        Write(Path.Combine(folder, Shard1), first, new Dictionary<string, string> { ["format"] = "pt" });
        Write(Path.Combine(folder, Shard2), second, new Dictionary<string, string> { ["format"] = "pt" });
        File.WriteAllText(Path.Combine(folder, Index), (indexJson ?? IndexJson)(first, second));
        return tensors;
    }

    private static string IndexJson(List<RawTensor> first, List<RawTensor> second)
    {
        var entries = first.Select(t => $"\"{t.Name}\": \"{Shard1}\"").Concat(second.Select(t => $"\"{t.Name}\": \"{Shard2}\""));
        long total = first.Concat(second).Sum(t => (long)t.Data.Length);
        return $"{{\"metadata\": {{\"total_size\": {total}}}, \"weight_map\": {{{string.Join(", ", entries)}}}}}";
    }

    [Theory]
    [InlineData("rwkv")]
    [InlineData("gemma_bf16")]
    [InlineData("switch")]
    public void ShardedReadsEqualTheUnshardedFile(string caseName)
    {
        using var temp = new TempFolder();
        var tensors = WriteSharded(temp.Path, caseName);
        using var sharded = Checkpoint.Open(temp.Path);
        using var whole = SafetensorsFile.Open(Path.Combine(GoldenCases.Dir(caseName), "model.safetensors"));

        Assert.Equal([Index, Shard1, Shard2], sharded.Files);
        Assert.Equal(whole.Names, sharded.Names);
        for (int i = 0; i < tensors.Count; i++)
        {
            string name = tensors[i].Name;
            Assert.True(sharded.TryGetEntry(name, out var got));
            Assert.True(whole.TryGetEntry(name, out var want));
            Assert.Equal(want.DType, got.DType);
            Assert.Equal(want.Shape, got.Shape);
            Assert.Equal(whole.ReadFloat32(name), sharded.ReadFloat32(name));
            var raw = new byte[tensors[i].Data.Length];
            sharded.ReadRaw(name, raw);
            Assert.Equal(tensors[i].Data, raw);
            Assert.Equal(i % 2 == 0 ? Shard1 : Shard2, sharded.Describe(name));
        }

        // The hash of a sharded checkpoint is the hash of sha256sum's output over its files.
        var manifest = new StringBuilder();
        foreach (var file in new[] { Shard1, Shard2, Index }.Order(StringComparer.Ordinal))
            manifest.Append($"{Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(temp.File(file))))}  {file}\n");
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(manifest.ToString()))), sharded.ContentHash);
    }

    [Fact]
    public void IndexNamingAMissingShard()
    {
        using var temp = new TempFolder();
        WriteSharded(temp.Path, "rwkv");
        File.Delete(temp.File(Shard2));
        var e = Assert.Throws<FileNotFoundException>(() => Checkpoint.Open(temp.Path));
        Assert.Contains(Shard2, e.Message);
        Assert.Contains(temp.File(Index), e.Message);
        Assert.Equal(temp.File(Shard2), e.FileName);
    }

    [Fact]
    public void IndexThatDoesNotParse()
    {
        using var temp = new TempFolder();
        WriteSharded(temp.Path, "rwkv", (_, _) => "{\"weight_map\": {\"a\": ");
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Open(temp.Path));
        Assert.Contains(temp.File(Index), e.Message);
        Assert.Contains("not valid JSON", e.Message);
    }

    [Theory]
    [InlineData("[]", "JSON array")]
    [InlineData("{\"metadata\": {}}", "no \"weight_map\"")]
    [InlineData("{\"weight_map\": {}}", "empty")]
    [InlineData("{\"weight_map\": {\"a\": 3}}", "'a'")]
    [InlineData("{\"weight_map\": {\"a\": \"../model.safetensors\"}}", "'../model.safetensors'")]
    [InlineData("{\"weight_map\": {\"a\": \"x.safetensors\", \"a\": \"x.safetensors\"}}", "twice")]
    public void MalformedIndex(string json, string messagePart)
    {
        using var temp = new TempFolder();
        File.WriteAllText(temp.File(Index), json);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Open(temp.Path));
        Assert.Contains(temp.File(Index), e.Message);
        Assert.Contains(messagePart, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void IndexTensorAbsentFromItsShard()
    {
        using var temp = new TempFolder();
        WriteSharded(temp.Path, "rwkv", (first, second) =>
            IndexJson(first, [.. second, new RawTensor("rwkv.blocks.9.ghost.weight", "F32", [1], [])]));
        using var checkpoint = Checkpoint.Open(temp.Path); // shards open lazily ...
        var firstName = Read(temp.File(Shard1))[0].Name;
        Assert.NotEmpty(checkpoint.ReadFloat32(firstName)); // ... so the good shard still reads
        var secondName = Read(temp.File(Shard2))[0].Name;
        var e = Assert.Throws<InvalidDataException>(() => checkpoint.ReadFloat32(secondName));
        Assert.Contains("'rwkv.blocks.9.ghost.weight'", e.Message);
        Assert.Contains(Shard2, e.Message);
        Assert.Contains(temp.File(Index), e.Message);
    }

    [Fact]
    public void ShardHoldingTensorsTheIndexDoesNotList()
    {
        using var temp = new TempFolder();
        var tensors = WriteSharded(temp.Path, "rwkv", (first, second) => IndexJson(first, second.Skip(1).ToList()));
        var unlisted = Read(temp.File(Shard2))[0].Name;
        using var checkpoint = Checkpoint.Open(temp.Path);
        Assert.DoesNotContain(unlisted, checkpoint.Names);
        var e = Assert.Throws<InvalidDataException>(() => checkpoint.ReadFloat32(Read(temp.File(Shard2))[1].Name));
        Assert.Contains(temp.File(Shard2), e.Message);
        Assert.Contains($"'{unlisted}'", e.Message);
        Assert.Contains("does not map", e.Message);
    }

    [Fact]
    public void FolderWithNoCheckpoint()
    {
        using var temp = new TempFolder();
        File.WriteAllText(temp.File("config.json"), "{}");
        var e = Assert.Throws<FileNotFoundException>(() => Checkpoint.Open(temp.Path));
        Assert.Contains(temp.Path, e.Message);
        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains(Index, e.Message);
        Assert.Contains("pytorch_model.bin", e.Message);
    }

    [Fact]
    public void FolderWithAnOddlyNamedSafetensorsFile()
    {
        using var temp = new TempFolder();
        File.Copy(Path.Combine(GoldenCases.Dir("rwkv"), "model.safetensors"), temp.File("weights.safetensors"));
        var e = Assert.Throws<FileNotFoundException>(() => Checkpoint.Open(temp.Path));
        Assert.Contains("weights.safetensors", e.Message);
    }

    [Theory]
    [InlineData("pytorch_model.bin")]
    [InlineData("consolidated.pth")]
    public void LegacyPyTorchFormatIsNotSupported(string file)
    {
        using var temp = new TempFolder();
        File.WriteAllBytes(temp.File(file), [0x80, 0x02]); // the pickled magic number the pre-1.6 format starts with
        var e = Assert.Throws<NotSupportedException>(() => Checkpoint.Open(temp.Path));
        Assert.Contains(temp.File(file), e.Message);
        Assert.Contains("legacy format", e.Message);
        Assert.Contains("safetensors", e.Message);
    }

    [Fact]
    public void SafetensorsWinsOverPickle()
    {
        using var temp = new TempFolder();
        File.Copy(Path.Combine(GoldenCases.Dir("mamba"), "model.safetensors"), temp.File("model.safetensors"));
        File.WriteAllBytes(temp.File("pytorch_model.bin"), [0x80, 0x02]);
        using var checkpoint = Checkpoint.Open(temp.Path);
        Assert.NotEmpty(checkpoint.Names);
    }

    [Fact]
    public void FolderThatDoesNotExist()
    {
        using var temp = new TempFolder();
        var e = Assert.Throws<DirectoryNotFoundException>(() => Checkpoint.Open(temp.File("absent")));
        Assert.Contains(temp.File("absent"), e.Message);
    }

    [Fact]
    public void MissingTensorSuggestsTheClosestNames()
    {
        using var checkpoint = Checkpoint.Open(GoldenCases.Dir("rwkv"));
        const string Typo = "rwkv.blocks.0.attention.key.weigth";
        var e = Assert.Throws<KeyNotFoundException>(() => checkpoint.ReadFloat32(Typo));
        Assert.Contains($"'{Typo}'", e.Message);
        Assert.Contains(GoldenCases.Dir("rwkv"), e.Message);
        Assert.Contains("closest names: 'rwkv.blocks.0.attention.key.weight'", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Throws<KeyNotFoundException>(() => checkpoint.ReadRaw(Typo, new byte[4]));
        Assert.Throws<KeyNotFoundException>(() => checkpoint.Describe(Typo));
        Assert.False(checkpoint.TryGetEntry(Typo, out _));
    }

    [Fact]
    public void ClosestNamesAreRankedByEditDistanceThenSuffix()
    {
        string[] names = ["model.layers.0.mlp.up_proj.weight", "model.layers.1.mlp.up_proj.weight", "model.layers.0.mlp.down_proj.weight", "lm_head.weight"];
        Assert.Equal(
            ["model.layers.0.mlp.up_proj.weight", "model.layers.1.mlp.up_proj.weight", "model.layers.0.mlp.down_proj.weight"],
            NameSuggestions.Closest("model.layers.0.mlp.up_proj.weights", names, 3));
        Assert.Empty(NameSuggestions.Closest("x", [], 3));
    }

    [Fact]
    public void DisposedCheckpointThrows()
    {
        var checkpoint = Checkpoint.Open(GoldenCases.Dir("mamba"));
        string name = checkpoint.Names.First();
        checkpoint.Dispose();
        Assert.Throws<ObjectDisposedException>(() => checkpoint.ReadFloat32(name));
    }
}
