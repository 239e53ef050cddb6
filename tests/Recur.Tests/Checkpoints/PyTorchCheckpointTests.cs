using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Recur.Export.Checkpoints;
using Recur.Graphs.Onnx;
using Recur.Tests.Support;
using static Recur.Tests.Checkpoints.TorchSaveFiles;

namespace Recur.Tests.Checkpoints;

/// <summary>PyTorch zip checkpoints: same model as the safetensors twin, every view and dtype, and every file that must be refused.</summary>
public sealed class PyTorchCheckpointTests
{
    private static List<Tensor> GoldenTensors(string caseName, Func<string, string>? rename = null) =>
        SafetensorsTestFiles.Read(Path.Combine(GoldenCases.Dir(caseName), "model.safetensors"))
            .Select(t => new Tensor(rename?.Invoke(t.Name) ?? t.Name, StorageTypeOf(t.DType), t.Shape, t.Data)).ToList();

    private static void CopyConfigs(string caseName, string folder)
    {
        foreach (var name in new[] { "config.json", "generation_config.json" })
            File.Copy(Path.Combine(GoldenCases.Dir(caseName), name), Path.Combine(folder, name));
    }

    /// <summary>model.onnx without the source entry (path and hash) of its embedded manifest, the one thing that must differ.</summary>
    private static byte[] ModelWithoutSource(string package)
    {
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(package, "model.onnx")));
        var manifest = model.MetadataProps.Single(p => p.Key == "recur.package");
        var json = JsonNode.Parse(manifest.Value)!.AsObject();
        Assert.True(json.Remove("source"));
        manifest.Value = json.ToJsonString();
        return model.ToByteArray();
    }

    private static string Convert(string folder, string output)
    {
        var result = CliRunner.Run("convert", folder, "-o", output, "--quiet");
        Assert.True(result.Exit == 0, result.ToString());
        return output;
    }

    [Fact]
    public void BinConvertsToTheSameModelAsItsSafetensorsTwin()
    {
        using var temp = new TempFolder();
        string folder = Directory.CreateDirectory(temp.File("ckpt")).FullName;
        CopyConfigs("rwkv", folder);
        Write(Path.Combine(folder, "pytorch_model.bin"), GoldenTensors("rwkv"));

        string package = Convert(folder, temp.File("out"));
        Assert.Equal(ModelWithoutSource(ConvertedPackages.Get("rwkv")), ModelWithoutSource(package));
        GoldenChecks.Validate(package, "rwkv");
    }

    /// <summary>The original names, as transformers' conversion script maps them back.</summary>
    private static string OriginalName(string hf) => hf
        .Replace("rwkv.embeddings.", "emb.").Replace("rwkv.blocks.0.pre_ln.", "blocks.0.ln0.")
        .Replace(".attention.", ".att.").Replace(".feed_forward.", ".ffn.")
        .Replace(".time_mix_key", ".time_mix_k").Replace(".time_mix_value", ".time_mix_v").Replace(".time_mix_receptance", ".time_mix_r")
        .Replace("rwkv.", "");

    [Fact]
    public void OriginalRwkvNamesConvertToTheSameModel()
    {
        using var temp = new TempFolder();
        string folder = Directory.CreateDirectory(temp.File("ckpt")).FullName;
        var tensors = GoldenTensors("rwkv", OriginalName)
            // Some original files keep time_mix as [C]; the same bytes are read as [1, 1, C].
            .Select(t => t.Name.StartsWith("blocks.1.", StringComparison.Ordinal) && t.Name.Contains("time_mix") ? t with { Shape = [t.Shape[^1]] } : t)
            .ToList();
        Assert.Contains(tensors, t => t.Name == "blocks.0.att.time_mix_k");
        Assert.Contains(tensors, t => t.Name == "blocks.1.ffn.time_mix_r" && t.Shape.Length == 1);
        Write(Path.Combine(folder, "RWKV-4-Tiny-20230101-ctx64.pth"), tensors);

        // Without config.json: one line asking for it, with one derived from the shapes.
        var missing = CliRunner.Run("convert", folder, "-o", temp.File("out"), "--quiet", "--no-verify");
        Assert.Equal(2, missing.Exit);
        Assert.Single(missing.Err.Trim().Split('\n'));
        Assert.Contains("config.json", missing.Err);
        Assert.Contains("\"hidden_size\": 64, \"num_hidden_layers\": 4", missing.Err);
        Assert.Contains("\"vocab_size\": 320", missing.Err);

        CopyConfigs("rwkv", folder);
        string package = Convert(folder, temp.File("out"));
        Assert.Equal(ModelWithoutSource(ConvertedPackages.Get("rwkv")), ModelWithoutSource(package));
        GoldenChecks.Validate(package, "rwkv");
    }

    [Theory]
    [InlineData("emb.weight", "rwkv.embeddings.weight")]
    [InlineData("blocks.0.ln0.bias", "rwkv.blocks.0.pre_ln.bias")]
    [InlineData("blocks.3.ln1.weight", "rwkv.blocks.3.ln1.weight")]
    [InlineData("blocks.11.att.time_decay", "rwkv.blocks.11.attention.time_decay")]
    [InlineData("blocks.2.att.time_mix_v", "rwkv.blocks.2.attention.time_mix_value")]
    [InlineData("blocks.2.ffn.time_mix_k", "rwkv.blocks.2.feed_forward.time_mix_key")]
    [InlineData("blocks.2.ffn.receptance.weight", "rwkv.blocks.2.feed_forward.receptance.weight")]
    [InlineData("ln_out.weight", "rwkv.ln_out.weight")]
    [InlineData("head.weight", "head.weight")]
    public void OriginalToHuggingFaceNames(string original, string hf) => Assert.Equal(hf, RwkvOriginalNames.HfName(original));

    /// <summary>BlinkDL's x070 names to flash-linear-attention's, as its utils/convert_from_rwkv7.py maps them.</summary>
    [Theory]
    [InlineData("emb.weight", "model.embeddings.weight", false)]
    [InlineData("head.weight", "lm_head.weight", false)]
    [InlineData("ln_out.bias", "model.norm.bias", false)]
    [InlineData("blocks.0.ln0.weight", "model.layers.0.pre_norm.weight", false)]
    [InlineData("blocks.4.ln1.bias", "model.layers.4.attn_norm.bias", false)]
    [InlineData("blocks.4.ln2.weight", "model.layers.4.ffn_norm.weight", false)]
    [InlineData("blocks.7.att.receptance.weight", "model.layers.7.attn.r_proj.weight", false)]
    [InlineData("blocks.7.att.output.weight", "model.layers.7.attn.o_proj.weight", false)]
    [InlineData("blocks.7.att.ln_x.bias", "model.layers.7.attn.g_norm.bias", false)]
    [InlineData("blocks.7.att.w0", "model.layers.7.attn.w_lora.lora.2.bias", false)]
    [InlineData("blocks.7.att.w1", "model.layers.7.attn.w_lora.lora.0.weight", true)]
    [InlineData("blocks.7.att.g2", "model.layers.7.attn.g_lora.lora.2.weight", true)]
    [InlineData("blocks.7.att.x_g", "model.layers.7.attn.x_g", false)]
    [InlineData("blocks.7.att.r_k", "model.layers.7.attn.r_k", false)]
    [InlineData("blocks.7.ffn.x_k", "model.layers.7.ffn.x_k", false)]
    [InlineData("blocks.7.ffn.value.weight", "model.layers.7.ffn.value.weight", false)]
    public void Rwkv7OriginalToFlaNames(string original, string fla, bool transposed) =>
        Assert.Equal((fla, transposed), Rwkv7OriginalNames.HfName(original));

    [Fact]
    public void EveryDTypeReadsAsItsSafetensorsTwin()
    {
        using var temp = new TempFolder();
        var random = new Random(7);
        var raw = new List<RawTensor>();
        foreach (var dtype in new[] { "F32", "F16", "BF16", "F64", "I64", "I32", "I8", "U8", "BOOL" })
        {
            var data = new byte[6 * ElementSize(StorageTypeOf(dtype))];
            random.NextBytes(data);
            if (dtype == "BOOL") data = data.Select(b => (byte)(b & 1)).ToArray();
            if (dtype is "F32" or "F16" or "BF16" or "F64") data = FiniteFloats(dtype, data);
            raw.Add(new RawTensor("t." + dtype, dtype, [2, 3], data));
        }
        SafetensorsTestFiles.Write(temp.File("model.safetensors"), raw);
        Write(temp.File("pytorch_model.bin"), raw.Select(t => new Tensor(t.Name, StorageTypeOf(t.DType), t.Shape, t.Data)).ToList());

        using var bin = PyTorchFile.Open(temp.File("pytorch_model.bin"));
        using var twin = SafetensorsFile.Open(temp.File("model.safetensors"));
        Assert.Equal(twin.Names, bin.Names);
        foreach (var t in raw)
        {
            Assert.True(bin.TryGetEntry(t.Name, out var got));
            Assert.True(twin.TryGetEntry(t.Name, out var want));
            Assert.Equal(want, got with { Shape = want.Shape }); // records compare arrays by reference
            Assert.Equal(want.Shape, got.Shape);
            var bytes = new byte[t.Data.Length];
            bin.ReadRaw(t.Name, bytes);
            Assert.Equal(t.Data, bytes);
            Assert.Equal(twin.ReadFloat32(t.Name), bin.ReadFloat32(t.Name));
            Assert.Equal("pytorch_model.bin", bin.Describe(t.Name));
        }
    }

    private static byte[] FiniteFloats(string dtype, byte[] data)
    {
        // Random bits can be NaN, which never compares equal; small integers survive every float type.
        var values = Enumerable.Range(0, data.Length / ElementSize(StorageTypeOf(dtype))).Select(i => (float)(i * 3 - 7)).ToArray();
        return dtype switch
        {
            "F32" => MemoryMarshal.AsBytes(values.AsSpan()).ToArray(),
            "F64" => MemoryMarshal.AsBytes(values.Select(v => (double)v).ToArray().AsSpan()).ToArray(),
            "F16" => MemoryMarshal.AsBytes(values.Select(v => (Half)v).ToArray().AsSpan()).ToArray(),
            _ => MemoryMarshal.AsBytes(values.Select(v => (ushort)(BitConverter.SingleToInt32Bits(v) >> 16)).ToArray().AsSpan()).ToArray(),
        };
    }

    private static byte[] Floats(params float[] values) => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    [Theory]
    [InlineData(CompressionLevel.NoCompression, "archive")]
    [InlineData(CompressionLevel.Optimal, "pytorch_model")] // deflated records; the archive name older torch used
    public void ViewsHonourShapeStrideAndOffset(CompressionLevel compression, string archiveName)
    {
        using var temp = new TempFolder();
        var storage = Floats(Enumerable.Range(0, 12).Select(i => (float)i).ToArray());
        var tensors = new List<Tensor>
        {
            new("transposed", "FloatStorage", [3, 4], storage, Stride: [1, 3]),             // a [4, 3] matrix's .T
            new("sliced", "FloatStorage", [2], storage, Stride: [2], Offset: 5),            // storage[5:9:2]
            new("row", "FloatStorage", [1, 4], storage, Stride: [99, 1], Offset: 8),      // a size-1 dimension may carry any stride
            new("param", "FloatStorage", [2], Floats(-1, -2), AsParameter: true),           // an nn.Parameter
        };
        Write(temp.File("w.pt"), tensors, archiveName, compression);

        using var file = PyTorchFile.Open(temp.File("w.pt"));
        Assert.Equal([0f, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11], file.ReadFloat32("transposed"));
        Assert.Equal([5f, 7], file.ReadFloat32("sliced"));
        Assert.Equal([8f, 9, 10, 11], file.ReadFloat32("row"));
        Assert.Equal([-1f, -2], file.ReadFloat32("param"));
        var raw = new byte[8];
        file.ReadRaw("sliced", raw);
        Assert.Equal(Floats(5, 7), raw);
        Assert.Throws<ArgumentException>(() => file.ReadRaw("sliced", new byte[4]));
        var e = Assert.Throws<KeyNotFoundException>(() => file.ReadFloat32("slice"));
        Assert.Contains("'sliced'", e.Message);
    }

    [Fact]
    public void StackGlobalsAndNoByteOrderRecord()
    {
        using var temp = new TempFolder();
        var storage = Floats(1, 2, 3);
        var pickle = Pickle(new OrderedDict([new("w", new Call(RebuildTensorV2 with { Stacked = true },
            [new Persistent(["storage", new Global("torch", "FloatStorage", Stacked: true), "k", "cuda:0", 3L]), 0L, new object?[] { 3L }, new object?[] { 1L }, false, new OrderedDict([])]))]));
        WriteZip(temp.File("w.pth"), pickle, [("k", storage)], byteOrder: null);
        using var file = PyTorchFile.Open(temp.File("w.pth"));
        Assert.Equal([1f, 2, 3], file.ReadFloat32("w"));
    }

    [Fact]
    public void ShardedBinReadsEqualTheSafetensors()
    {
        using var temp = new TempFolder();
        var tensors = GoldenTensors("rwkv");
        var first = tensors.Where((_, i) => i % 2 == 0).ToList();
        var second = tensors.Where((_, i) => i % 2 == 1).ToList();
        Write(temp.File("pytorch_model-00001-of-00002.bin"), first);
        Write(temp.File("pytorch_model-00002-of-00002.bin"), second);
        var map = first.Select(t => $"\"{t.Name}\": \"pytorch_model-00001-of-00002.bin\"").Concat(second.Select(t => $"\"{t.Name}\": \"pytorch_model-00002-of-00002.bin\""));
        File.WriteAllText(temp.File("pytorch_model.bin.index.json"), $"{{\"metadata\": {{}}, \"weight_map\": {{{string.Join(", ", map)}}}}}");

        using var sharded = Checkpoint.Open(temp.Path);
        using var golden = SafetensorsFile.Open(Path.Combine(GoldenCases.Dir("rwkv"), "model.safetensors"));
        Assert.Equal(["pytorch_model.bin.index.json", "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"], sharded.Files);
        Assert.Equal(golden.Names, sharded.Names);
        foreach (var name in golden.Names) Assert.Equal(golden.ReadFloat32(name), sharded.ReadFloat32(name));
    }

    [Fact]
    public void SafetensorsWinsOverABinBeside()
    {
        using var temp = new TempFolder();
        File.Copy(Path.Combine(GoldenCases.Dir("rwkv"), "model.safetensors"), temp.File("model.safetensors"));
        WriteZip(temp.File("pytorch_model.bin"), Pickle(new Call(new Global("os", "system"), ["true"])), []);
        using var checkpoint = Checkpoint.Open(temp.Path); // the .bin is never opened
        Assert.Equal(["model.safetensors"], checkpoint.Files);
    }

    public static TheoryData<string, string> Hostile => new()
    {
        { "os_system", "os.system" },
        { "builtins_eval_stack_global", "builtins.eval" },
        { "nested_getattr", "__builtin__.getattr" },
        { "subprocess_after_good_tensors", "subprocess.Popen" },
    };

    private static byte[] HostilePickle(string which, string marker)
    {
        var good = new Call(RebuildTensorV2, [new Persistent(["storage", new Global("torch", "FloatStorage"), "0", "cpu", 1L]), 0L, new object?[] { 1L }, new object?[] { 1L }, false, new OrderedDict([])]);
        return which switch
        {
            "os_system" => Pickle(new Call(new Global("os", "system"), [$"touch {marker}"])),
            "builtins_eval_stack_global" => Pickle(new Call(new Global("builtins", "eval", Stacked: true), [$"open('{marker}', 'w')"])),
            // getattr(torch.FloatStorage, '__init__') hidden inside a tensor's arguments
            "nested_getattr" => Pickle(new OrderedDict([new("w", new Call(RebuildTensorV2,
                [new Persistent(["storage", new Global("torch", "FloatStorage"), "0", "cpu", 1L]), 0L, new object?[] { 1L },
                 new Call(new Global("__builtin__", "getattr"), [new Global("torch", "FloatStorage"), "__init__"]), false, new OrderedDict([])]))])),
            _ => Pickle(new OrderedDict([new("w", good), new("x", new Call(new Global("subprocess", "Popen"), [new object?[] { "touch", marker }]))])),
        };
    }

    [Theory]
    [MemberData(nameof(Hostile))]
    public void PicklesThatCallAnythingElseAreRefused(string which, string global)
    {
        using var temp = new TempFolder();
        string marker = temp.File("pwned");
        WriteZip(temp.File("pytorch_model.bin"), HostilePickle(which, marker), [("0", Floats(1))]);
        var e = Assert.Throws<InvalidDataException>(() => PyTorchFile.Open(temp.File("pytorch_model.bin")));
        Assert.Contains($"refused global {global}", e.Message);
        Assert.Contains(temp.File("pytorch_model.bin"), e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.False(File.Exists(marker));
    }

    [Fact]
    public void ConvertOfAHostileCheckpointExitsTwoWithOneLine()
    {
        using var temp = new TempFolder();
        string folder = Directory.CreateDirectory(temp.File("ckpt")).FullName;
        CopyConfigs("rwkv", folder);
        WriteZip(Path.Combine(folder, "pytorch_model.bin"), HostilePickle("os_system", temp.File("pwned")), []);
        var result = CliRunner.Run("convert", folder, "-o", temp.File("out"), "--quiet", "--no-verify");
        Assert.Equal(2, result.Exit);
        var line = Assert.Single(result.Err.Trim().Split('\n'));
        Assert.StartsWith("error: ", line);
        Assert.Contains("refused global os.system", line);
        Assert.False(Directory.Exists(temp.File("out")));
    }

    private static readonly Tensor Small = new("w", "FloatStorage", [2, 2], Floats(1, 2, 3, 4));

    public static TheoryData<string, Type, string> MalformedFiles => new()
    {
        { "truncated_zip", typeof(InvalidDataException), "not a readable zip archive" },
        { "empty_file", typeof(InvalidDataException), "empty" },
        { "not_a_zip", typeof(InvalidDataException), "expected a zip archive" },
        { "legacy_format", typeof(NotSupportedException), "legacy format" },
        { "missing_data_pkl", typeof(InvalidDataException), "no {archive}/data.pkl" },
        { "missing_storage_record", typeof(InvalidDataException), "no archive/data/0 record" },
        { "storage_record_too_short", typeof(InvalidDataException), "holds 8 bytes, but its 4 FloatStorage elements need 16" },
        { "shape_past_storage", typeof(InvalidDataException), "reaches element 5, but storage '0' has only 4" },
        { "stride_past_storage", typeof(InvalidDataException), "reaches element 4, but storage '0' has only 4" },
        { "offset_past_storage", typeof(InvalidDataException), "reaches element 6" },
        { "big_endian", typeof(NotSupportedException), "big-endian" },
        { "pickle_without_stop", typeof(InvalidDataException), "ends without STOP" },
        { "not_a_state_dict", typeof(InvalidDataException), "holds a list, expected a state dict" },
        { "training_checkpoint", typeof(InvalidDataException), "'epoch' is a int, not a tensor" },
        { "int16_tensor", typeof(NotSupportedException), "int16" },
        { "unknown_opcode", typeof(InvalidDataException), "opcode 0x81" },
    };

    private static void WriteMalformed(string which, string path)
    {
        byte[] Good() => Pickle(StateDict([Small]));
        var storage = new[] { ("0", Small.Storage) };
        switch (which)
        {
            case "truncated_zip":
                Write(path, [Small]);
                var bytes = File.ReadAllBytes(path);
                File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
                break;
            case "empty_file": File.WriteAllBytes(path, []); break;
            case "not_a_zip": File.WriteAllText(path, "version https://git-lfs.github.com/spec/v1\n"); break;
            case "legacy_format": File.WriteAllBytes(path, [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E]); break;
            case "missing_data_pkl":
                using (var zip = new ZipArchive(File.Create(path), ZipArchiveMode.Create)) zip.CreateEntry("archive/data/0");
                break;
            case "missing_storage_record": WriteZip(path, Good(), []); break;
            case "storage_record_too_short": WriteZip(path, Good(), [("0", new byte[8])]); break;
            case "shape_past_storage": WriteZip(path, Pickle(StateDict([Small with { Shape = [2, 3] }])), storage); break;
            case "stride_past_storage": WriteZip(path, Pickle(StateDict([Small with { Stride = [3, 1] }])), storage); break;
            case "offset_past_storage": WriteZip(path, Pickle(StateDict([Small with { Shape = [2], Offset = 5 }])), storage); break;
            case "big_endian": WriteZip(path, Good(), storage, byteOrder: "big"); break;
            case "pickle_without_stop": WriteZip(path, Good()[..^1], storage); break;
            case "not_a_state_dict": WriteZip(path, Pickle(new PyList([1L, 2L])), []); break;
            case "training_checkpoint": WriteZip(path, Pickle(new OrderedDict([new("epoch", 3L)])), []); break;
            case "int16_tensor": WriteZip(path, Pickle(StateDict([Small with { StorageType = "ShortStorage", Shape = [4] }])), [("0", new byte[8])]); break;
            case "unknown_opcode": WriteZip(path, Pickle(new Raw([0x81])), []); break; // NEWOBJ
            default: throw new ArgumentException(which);
        }
    }

    [Theory]
    [MemberData(nameof(MalformedFiles))]
    public void MalformedAndUnsupportedFilesFailClearly(string which, Type exception, string messagePart)
    {
        using var temp = new TempFolder();
        string path = temp.File("pytorch_model.bin");
        WriteMalformed(which, path);
        var e = Assert.Throws(exception, () => PyTorchFile.Open(path));
        Assert.Contains(path, e.Message);
        Assert.Contains(messagePart, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void SeveralPthFilesAreAmbiguous()
    {
        using var temp = new TempFolder();
        Write(temp.File("RWKV-4-169M.pth"), [Small]);
        Write(temp.File("RWKV-4-430M.pth"), [Small]);
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Open(temp.Path));
        Assert.Contains("RWKV-4-169M.pth, RWKV-4-430M.pth", e.Message);
    }
}
