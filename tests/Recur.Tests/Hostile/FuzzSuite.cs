using System.Text;
using System.Text.Json.Nodes;
using Recur.Tests.Checkpoints;
using Recur.Tests.Support;

namespace Recur.Tests.Hostile;

/// <summary>
/// Seeded malformed inputs across every format Recur reads, run in-process through the CLI's test entry point.
/// Every case must end with exit 0, 1 or 2, at most one error line and no stack trace, within a timeout; it must
/// leave no partial package or temporary file, change none of its inputs, and run no pickled payload. The seed is
/// fixed, so a failure names a case that reproduces; the counts add up to more than 500 cases.
/// </summary>
public sealed class FuzzSuite(Xunit.Abstractions.ITestOutputHelper output)
{
    private readonly int[] exits = new int[3];
    private readonly List<string> samples = [];

    private const int Seed = 13;
    private const double CaseSeconds = 30;

    // Hostile JSON values for a key that wants a number, a string or a list.
    private static readonly string[] Values =
    [
        "-1", "0", "1.5", "1e30", "-1e30", "2147483648", "9223372036854775808", "\"x\"", "\"\"", "null", "[]", "{}", "true",
        "[1, 2]", "[\"a\"]", "1e-400", "1e400", "-0", "99999999", "\"\\u0000\"", "{\"a\": 1}",
    ];

    // ----- safetensors (120) -----

    [Fact]
    public void Safetensors()
    {
        byte[] valid = File.ReadAllBytes(Path.Combine(GoldenCases.Dir("rwkv"), "model.safetensors"));
        long headerLength = BitConverter.ToInt64(valid, 0);
        var random = new Random(Seed);
        RunConvertCases("safetensors", 120, random, (ckpt, i) =>
        {
            byte[] bytes = (i % 6) switch
            {
                0 => valid[..random.Next(0, valid.Length)],                                     // truncated anywhere
                1 => WithHeaderLength(valid, random.Next(4) switch { 0 => 0, 1 => long.MaxValue, 2 => headerLength + random.Next(1, 64), _ => random.NextInt64() }),
                2 => Flipped(valid, random, 8, 8 + (int)headerLength, random.Next(1, 6)),      // bytes of the JSON header
                3 => Flipped(valid, random, 0, 8, 1),                                          // the length field
                4 => WithHeader(valid, MutatedHeader(valid, random)),                          // a well-formed JSON header with bad fields
                _ => WithHeader(valid, Encoding.UTF8.GetBytes(MalformedJson(random))),           // not JSON, or not the right JSON
            };
            File.WriteAllBytes(Path.Combine(ckpt, "model.safetensors"), bytes);
        });
    }

    private static string MutatedHeader(byte[] valid, Random random)
    {
        var header = JsonNode.Parse(Encoding.UTF8.GetString(valid, 8, (int)BitConverter.ToInt64(valid, 0)))!.AsObject();
        var names = header.Select(kv => kv.Key).Where(k => k != "__metadata__").ToList();
        var entry = header[names[random.Next(names.Count)]]!.AsObject();
        switch (random.Next(7))
        {
            case 0: entry["dtype"] = Pick(random, ["F8_E4M3", "Q4", "", "f32", "I64", "BOOL", "U64"]); break;
            case 1: entry["shape"] = new JsonArray(-1, 64); break;
            case 2: entry["shape"] = new JsonArray(long.MaxValue, long.MaxValue); break;
            case 3: entry["data_offsets"] = new JsonArray(100, 50); break;
            case 4: entry["data_offsets"] = new JsonArray(0, long.MaxValue); break;
            case 5: entry["data_offsets"] = new JsonArray(0, 4); break;
            default: entry.Remove(Pick(random, ["dtype", "shape", "data_offsets"])); break;
        }
        return header.ToJsonString();
    }

    private static byte[] WithHeader(byte[] valid, string json) => WithHeader(valid, Encoding.UTF8.GetBytes(json));

    private static byte[] WithHeader(byte[] valid, byte[] header)
    {
        long old = BitConverter.ToInt64(valid, 0);
        var data = valid.AsSpan(8 + (int)old);
        var result = new byte[8 + header.Length + data.Length];
        BitConverter.GetBytes((long)header.Length).CopyTo(result, 0);
        header.CopyTo(result, 8);
        data.CopyTo(result.AsSpan(8 + header.Length));
        return result;
    }

    private static byte[] WithHeaderLength(byte[] valid, long length)
    {
        var copy = (byte[])valid.Clone();
        BitConverter.GetBytes(length).CopyTo(copy, 0);
        return copy;
    }

    // ----- config.json (80) and generation_config.json (40) -----

    [Fact]
    public void Configs()
    {
        string config = File.ReadAllText(Path.Combine(GoldenCases.Dir("rwkv"), "config.json"));
        var keys = JsonNode.Parse(config)!.AsObject().Select(kv => kv.Key).Append("max_position_embeddings").ToList();
        var random = new Random(Seed + 1);
        RunConvertCases("config.json", 80, random, (ckpt, i) =>
            File.WriteAllBytes(Path.Combine(ckpt, "config.json"), MutatedJson(config, keys, random, i)));
    }

    [Fact]
    public void GenerationConfigs()
    {
        string generation = "{\"bos_token_id\": 0, \"eos_token_id\": 0, \"pad_token_id\": 1, \"decoder_start_token_id\": 0}";
        string[] keys = ["bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id"];
        var random = new Random(Seed + 2);
        RunConvertCases("generation_config.json", 40, random, (ckpt, i) =>
            File.WriteAllBytes(Path.Combine(ckpt, "generation_config.json"), MutatedJson(generation, keys, random, i)));
    }

    /// <summary>Half the cases set a key to a hostile value; the others break the text itself.</summary>
    private static byte[] MutatedJson(string json, IReadOnlyList<string> keys, Random random, int i)
    {
        if (i % 2 == 0)
        {
            var node = JsonNode.Parse(json)!.AsObject();
            string key = keys[random.Next(keys.Count)];
            node[key] = JsonNode.Parse(Values[random.Next(Values.Length)]);
            if (key == "model_type" && random.Next(2) == 0) node[key] = Pick(random, ["gemma", "mamba", "switch_transformers", "recurrent_gemma", "rwk", "llama"]);
            return Encoding.UTF8.GetBytes(node.ToJsonString());
        }
        return (i / 2 % 8) switch
        {
            0 => Encoding.UTF8.GetBytes(json[..random.Next(json.Length)]),
            1 => [0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes(json)],
            2 => Encoding.UTF8.GetBytes(json.Replace("\"hidden_size\"", "\"hidden_size\": 1, \"hidden_size\"").Replace("\"eos_token_id\"", "\"eos_token_id\": 1, \"eos_token_id\"")),
            3 => [.. Encoding.UTF8.GetBytes(json[..(json.Length / 2)]), 0xC3, 0x28, .. Encoding.UTF8.GetBytes(json[(json.Length / 2)..])],
            4 => Encoding.UTF8.GetBytes(MalformedJson(random)),
            5 => Encoding.UTF8.GetBytes(json.Remove(random.Next(json.Length), 1)),
            6 => [],
            _ => Flipped(Encoding.UTF8.GetBytes(json), random, 0, json.Length, 3),
        };
    }

    private static string MalformedJson(Random random) => (random.Next(8)) switch
    {
        0 => new string('[', 100_000) + new string(']', 100_000),
        1 => "[]",
        2 => "\"just a string\"",
        3 => "{\"a\": }",
        4 => "{\"a\": 1,}",
        5 => "{\"a\": NaN}",
        6 => "null",
        _ => "{" + string.Join(",", Enumerable.Range(0, 2000).Select(n => $"\"k{n}\": {n}")) + "}",
    };

    // ----- pickles (70) -----

    [Fact]
    public void Pickles()
    {
        var random = new Random(Seed + 3);
        string marker = Path.Combine(Path.GetTempPath(), $"recur-fuzz-payload-{Guid.NewGuid():N}");
        string shell = $"touch {marker}";
        object?[] payloads =
        [
            new TorchSaveFiles.Call(new TorchSaveFiles.Global("os", "system"), [shell]),
            new TorchSaveFiles.Call(new TorchSaveFiles.Global("posix", "system"), [shell]),
            new TorchSaveFiles.Call(new TorchSaveFiles.Global("subprocess", "check_call"), [new object?[] { "touch", marker }]),
            new TorchSaveFiles.Call(new TorchSaveFiles.Global("builtins", "eval"), [$"__import__('os').system('{shell}')"]),
            new TorchSaveFiles.Call(new TorchSaveFiles.Global("builtins", "exec"), [$"open('{marker}', 'w')"]),
            new TorchSaveFiles.Call(new TorchSaveFiles.Global("builtins", "__import__", Stacked: true), ["os"]),
            new TorchSaveFiles.Call(new TorchSaveFiles.Global("torch", "load"), [marker]),
            new TorchSaveFiles.Call(new TorchSaveFiles.Global("numpy", "load"), [marker]),
            new TorchSaveFiles.Call(new TorchSaveFiles.Global("collections", "OrderedDict"), [new TorchSaveFiles.Call(new TorchSaveFiles.Global("os", "system"), [shell])]),
            new TorchSaveFiles.Call(new TorchSaveFiles.Global("torch._utils", "_rebuild_tensor_v2"), [new TorchSaveFiles.Call(new TorchSaveFiles.Global("os", "system"), [shell]), 0L, new object?[] { 1L }, new object?[] { 1L }, false, null]),
        ];
        var valid = TorchSaveFiles.Pickle(TorchSaveFiles.StateDict([new TorchSaveFiles.Tensor("w", "FloatStorage", [2], new byte[8])]));
        RunConvertCases("pickle", 70, random, (ckpt, i) =>
        {
            File.Delete(Path.Combine(ckpt, "model.safetensors"));
            byte[] pickle = (i % 7) switch
            {
                0 or 1 or 2 => TorchSaveFiles.Pickle(new TorchSaveFiles.OrderedDict([new("w", payloads[random.Next(payloads.Length)])])),
                3 => [0x80, 2, .. RandomBytes(random, random.Next(1, 400)), 0x2E],                 // opcode soup
                4 => valid[..random.Next(valid.Length)],                                           // truncated
                5 => Flipped(valid, random, 2, valid.Length - 1, random.Next(1, 4)),
                _ => Pick(random, BadOpcodes(marker)),
            };
            var storages = i % 2 == 0 ? new List<(string, byte[])> { ("0", new byte[8]) } : [];
            TorchSaveFiles.WriteZip(Path.Combine(ckpt, "pytorch_model.bin"), pickle, storages);
        }, afterEach: () => Assert.False(File.Exists(marker), "a pickled payload ran"));
    }

    private static byte[][] BadOpcodes(string marker) =>
    [
        [0x80, 2, 0x63, .. "os\nsystem\n"u8, 0x58, 5, 0, 0, 0, .. "touch"u8, 0x85, 0x52, 0x2E],             // GLOBAL + REDUCE
        [0x80, 2, 0x28, 0x58, 5, 0, 0, 0, .. "touch"u8, 0x69, .. "os\nsystem\n"u8, 0x2E],                  // INST
        [0x80, 2, 0x58, 0xFF, 0xFF, 0xFF, 0x7F, 0x2E],                                                     // BINUNICODE past the end
        [0x80, 2, 0x8B, 0xFF, 0xFF, 0xFF, 0x7F, 0x2E],                                                     // LONG4 past the end
        [0x80, 2, 0x6A, 0xFF, 0xFF, 0xFF, 0xFF, 0x2E],                                                     // LONG_BINGET of nothing
        [0x80, 2, .. Enumerable.Repeat((byte)0x28, 100_000), 0x2E],                                         // marks only
        [0x80, 2, 0x4E, 0x72, 0xFF, 0xFF, 0xFF, 0xFF, 0x6A, 0xFF, 0xFF, 0xFF, 0xFF, 0x2E],                 // memo at 2^32-1
        [0x80, 2, 0x5D, 0x94, 0x68, 0, 0x61, 0x2E],                                                        // a list that holds itself
        [0x80, 2, 0x95, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0x4E, 0x2E],                       // FRAME of 2^63
        Encoding.ASCII.GetBytes($"cposix\nsystem\n(S'touch {marker}'\ntR."),                               // protocol 0
    ];

    // ----- tokenizer.json (40): JSON that is malformed, mistyped or over budget -----

    [Fact]
    public void TokenizerJson()
    {
        string valid = File.ReadAllText(HostileFindingsTests.Gpt2Tokenizer);
        var random = new Random(Seed + 4);
        var failures = new List<string>();
        string dir = Outcome.TempDir("fuzz-tokenizer");
        try
        {
            for (int i = 0; i < 40; i++)
            {
                string file = Path.Combine(dir, $"tokenizer-{i}.json");
                if (i == 39)
                {
                    using var f = File.Create(file);
                    f.SetLength(Recur.Package.Files.InputBudgets.JsonBytes + 1);
                }
                else if (i % 2 == 0)
                {
                    var node = JsonNode.Parse(valid)!.AsObject();
                    string key = Pick(random, ["model", "normalizer", "pre_tokenizer", "decoder", "post_processor", "added_tokens", "version"]);
                    node[key] = JsonNode.Parse(Values[random.Next(Values.Length)]);
                    File.WriteAllText(file, node.ToJsonString());
                }
                else File.WriteAllBytes(file, (i / 2 % 4) switch
                {
                    0 => Encoding.UTF8.GetBytes(valid[..random.Next(valid.Length)]),
                    1 => Encoding.UTF8.GetBytes(MalformedJson(random)),
                    2 => [0xC3, 0x28, .. Encoding.UTF8.GetBytes(valid)],
                    _ => [],
                });
                Check(failures, $"tokenizer case {i}", () => Outcome.Within(CaseSeconds, "tokenize", file, "--text", "hello world"));
            }
        }
        finally { Directory.Delete(dir, true); }
        Report(failures);
    }

    // ----- recur.json (60) and model.onnx (30) -----

    [Fact]
    public void PackageManifests()
    {
        var random = new Random(Seed + 5);
        string manifest = File.ReadAllText(Path.Combine(ConvertedPackages.Get("rwkv"), "recur.json"));
        var failures = new List<string>();
        for (int i = 0; i < 60; i++)
        {
            string package = HostileFindingsTests.CopyPackage("rwkv");
            try
            {
                File.WriteAllBytes(Path.Combine(package, "recur.json"), MutatedManifest(manifest, random, i));
                string before = Outcome.Snapshot(package);
                Check(failures, $"recur.json case {i} (inspect)", () => Outcome.Within(CaseSeconds, "inspect", package));
                if (i % 3 == 0)
                    Check(failures, $"recur.json case {i} (generate)", () => Outcome.Within(CaseSeconds, "generate", package, "--ids", "1 2", "--max-new-tokens", "2"));
                if (Outcome.Snapshot(package) != before) failures.Add($"recur.json case {i}: the package changed");
            }
            finally { Directory.Delete(package, true); }
        }
        Report(failures);
    }

    private static byte[] MutatedManifest(string manifest, Random random, int i)
    {
        var node = JsonNode.Parse(manifest)!.AsObject();
        switch (i % 10)
        {
            case 0: node.Remove(Pick(random, ["format", "graphs", "state", "generation", "opset", "dtype", "model_type"])); break;
            case 1: node[Pick(random, ["format", "graphs", "state", "generation", "opset", "dtype", "model_type", "tokenizer"])] = JsonNode.Parse(Values[random.Next(Values.Length)]); break;
            case 2:
            {
                var entry = node["state"]!.AsArray()[random.Next(node["state"]!.AsArray().Count)]!.AsObject();
                entry[Pick(random, ["input", "output", "dtype", "shape", "init"])] = JsonNode.Parse(Values[random.Next(Values.Length)]);
                break;
            }
            case 3:
            {
                var entry = node["state"]!.AsArray()[0]!.AsObject();
                entry["shape"] = JsonNode.Parse(Pick(random, ["[\"batch\", 2147483647, 2147483647]", "[\"batch\", -1]", "[\"batch\", \"past_sequence\", 1e9]", "[]", "[\"batch\", 1]"]));
                break;
            }
            case 4: node["graphs"]!["decoder"] = Pick(random, ["../model.onnx", "/etc/passwd", "", "recur.json", "missing.onnx", "."]); break;
            case 5: node["generation"]!["eos_token_ids"] = JsonNode.Parse(Pick(random, ["[1.5]", "[-1]", "[\"x\"]", "7", "[2147483648]"])); break;
            case 6: node["format"] = Pick(random, ["recur-package/2", "recur-package/", "", "onnx"]); break;
            case 7: return Encoding.UTF8.GetBytes(manifest[..random.Next(manifest.Length)]);
            case 8: return Flipped(Encoding.UTF8.GetBytes(manifest), random, 0, manifest.Length, 4);
            default: return Encoding.UTF8.GetBytes(MalformedJson(random));
        }
        return Encoding.UTF8.GetBytes(node.ToJsonString());
    }

    [Fact]
    public void OnnxModels()
    {
        var random = new Random(Seed + 6);
        byte[] model = File.ReadAllBytes(Path.Combine(ConvertedPackages.Get("rwkv"), "model.onnx"));
        var failures = new List<string>();
        string dir = Outcome.TempDir("fuzz-onnx");
        try
        {
            for (int i = 0; i < 30; i++)
            {
                string file = Path.Combine(dir, $"model-{i}.onnx");
                File.WriteAllBytes(file, (i % 3) switch
                {
                    0 => model[..random.Next(model.Length)],
                    1 => Flipped(model, random, 0, Math.Min(model.Length, 4096), random.Next(1, 8)),
                    _ => RandomBytes(random, random.Next(0, 2000)),
                });
                Check(failures, $"model.onnx case {i}", () => Outcome.Within(CaseSeconds, "inspect", file));
            }
        }
        finally { Directory.Delete(dir, true); }
        Report(failures);
    }

    // ----- state files (60) -----

    [Fact]
    public void StateFiles()
    {
        var random = new Random(Seed + 7);
        var failures = new List<string>();
        byte[] valid = File.ReadAllBytes(HostileFindingsTests.SavedStateFile);
        for (int i = 0; i < 60; i++)
        {
            string file = (i % 4) switch
            {
                0 => Bytes(valid[..random.Next(valid.Length)]),
                1 => Bytes(Flipped(valid, random, 8, 8 + (int)BitConverter.ToInt64(valid, 0), random.Next(1, 4))),
                _ => HostileFindingsTests.WriteState($"fuzz-{i}", tensors =>
                {
                    int at = random.Next(tensors.Count);
                    var t = tensors[at];
                    switch (random.Next(7))
                    {
                        case 0: tensors[at] = t with { DType = t.DType == "F32" ? "F16" : "F32", Data = t.DType == "F32" ? t.Data[..(t.Data.Length / 2)] : [.. t.Data, .. t.Data] }; break;
                        case 1: tensors[at] = t with { Shape = [.. t.Shape, 1] }; break;
                        case 2: tensors[at] = t with { Shape = t.Shape.Length > 0 ? [t.Shape[0] * 2, .. t.Shape[1..]] : [2], Data = [.. t.Data, .. t.Data] }; break;
                        case 3: tensors.RemoveAt(at); break;
                        case 4: tensors.Add(new Recur.Package.Tensors.SafetensorsWriter.Tensor("past_key_values.99.extra", "F32", [1], new byte[4])); break;
                        case 5:
                            var data = (byte[])t.Data.Clone();
                            if (data.Length >= 4) BitConverter.GetBytes(Pick(random, [float.NaN, float.PositiveInfinity, float.NegativeInfinity])).CopyTo(data, random.Next(data.Length / 4) * 4);
                            tensors[at] = t with { Data = data };
                            break;
                        default: tensors[at] = t with { Shape = [.. t.Shape.Select(_ => (long)random.Next(0, 1 << 20))], Data = [] }; break;
                    }
                    return tensors;
                }),
            };
            try
            {
                Check(failures, $"state case {i}", () => Outcome.Within(CaseSeconds, "generate", ConvertedPackages.Get("rwkv"), "--ids", "1", "--max-new-tokens", "1", "--load-state", file));
            }
            finally { File.Delete(file); }
        }
        Report(failures);

        static string Bytes(byte[] bytes)
        {
            string file = Path.Combine(Path.GetTempPath(), $"recur-fuzz-state-{Guid.NewGuid():N}.safetensors");
            File.WriteAllBytes(file, bytes);
            return file;
        }
    }

    // ----- CLI arguments (80) -----

    [Fact]
    public void Arguments()
    {
        var random = new Random(Seed + 8);
        string package = ConvertedPackages.Get("rwkv");
        string dir = Outcome.TempDir("fuzz-args");
        var failures = new List<string>();
        (string Option, string[] Values)[] generate =
        [
            ("--threads", ["-1", "1025", "abc", "99999999999", "100000"]),
            ("--temperature", ["nan", "NaN", "inf", "-Infinity", "1e400", "-0.5"]),
            ("--top-k", ["-1", "x", "2147483648"]),
            ("--top-p", ["0", "-1", "1.0000001", "NaN"]),
            ("--repetition-penalty", ["0", "-2", "NaN", "Infinity"]),
            ("--max-new-tokens", ["0", "-5", "2147483648", "x"]),
            ("--ids", ["", "a", "-1", "1 2 99999999999999999999", "1,,2", "320", " "]),
            ("--seed", ["x", "1.5"]),
            ("--session-config", ["=", "a", "=b"]),
            ("--load-state", ["/nonexistent/state", "/dev/null", "/", dir]),
            ("--save-state", ["/dev/null", "/", "/nonexistent/x/state", dir]),
            ("--stop", ["\\q", "", "\\u12"]),
            ("--prompt-file", ["/dev/zero", "/nonexistent", "/"]),
            ("--stop-file", ["/dev/zero", "/nonexistent"]),
            ("--input-ids", ["x"]),
            ("--bogus-option", ["1"]),
        ];
        for (int i = 0; i < 80; i++)
        {
            string[] args = (i % 8) switch
            {
                < 5 => ["generate", package, "--max-new-tokens", "2", "--ids", "1 2", .. Enumerable.Range(0, random.Next(1, 3)).SelectMany(_ =>
                {
                    var (option, values) = generate[random.Next(generate.Length)];
                    return new[] { option, values[random.Next(values.Length)] };
                })],
                5 => ["convert", GoldenCases.Dir("rwkv"), "-o", Path.Combine(dir, $"out-{i}"), "-q", "--no-verify",
                    .. Pick(random, new[] { new[] { "--opset", "1000" }, ["--dtype", "fp8"], ["--dtype", "int4", "--block-size", "3"], ["--dtype", "int8", "--head-bits", "5"],
                        ["--external-data", "sometimes"], ["--accuracy-level", "-1", "--dtype", "int4"], ["--revision", "main"], ["--opset", "x"] })],
                6 => ["bench", package, .. Pick(random, new[] { new[] { "--prompt-length", "0" }, ["--batch", "-1"], ["--repeat", "0"], ["--prompt-length", "5000", "--batch", "4096"],
                    ["--profile", "/nonexistent/p"], ["--save-optimized", "/dev/null"], ["--new-tokens", "2000000000"] })],
                _ => Pick(random, new[]
                {
                    new[] { "inspect", "/dev/null" }, ["inspect", "/"], ["inspect", "/nonexistent"], ["tokenize", "/dev/null", "--text", "x"],
                    ["tokenize", HostileFindingsTests.Gpt2Tokenizer, "--decode", "x"], ["tokenize", HostileFindingsTests.Gpt2Tokenizer, "--decode", "99999999999"],
                    ["tokenize", HostileFindingsTests.Gpt2Tokenizer, "--text", "a", "--file", "/nonexistent"], ["no-such-verb"], [], ["convert"],
                    ["logits", package, "--input", "/dev/null", "--out", "/tmp/x"], ["logits", package, "--input", ConvertedPackages.Expected("rwkv"), "--out", "/dev/full"],
                    ["validate", package, "--expected", "/dev/zero"], ["models", "--bogus"],
                }),
            };
            Check(failures, $"arguments case {i}: {string.Join(' ', args)}", () => Outcome.Within(CaseSeconds, args));
        }
        Assert.Equal("/dev/null", new FileInfo("/dev/null").FullName);
        Assert.Equal(Recur.Package.Files.InputFiles.Kind.Other, Recur.Package.Files.InputFiles.KindOf("/dev/null"));
        Directory.Delete(dir, true);
        Report(failures);
    }

    // ----- shared -----

    /// <summary>Each case gets a fresh copy of the rwkv checkpoint, broken by <paramref name="breakIt"/>, and a convert into a fresh folder.</summary>
    private void RunConvertCases(string label, int count, Random random, Action<string, int> breakIt, Action? afterEach = null)
    {
        var failures = new List<string>();
        for (int i = 0; i < count; i++)
        {
            using var checkpoint = TempCheckpoint.CopyOf("rwkv");
            breakIt(checkpoint.Path, i);
            string before = Outcome.Snapshot(checkpoint.Path);
            string output = checkpoint.Path + "-out";
            // One case in ten loads the result in ONNX Runtime too, where damaged weights would show.
            Check(failures, $"{label} case {i}", () => Outcome.Within(CaseSeconds, ["convert", checkpoint.Path, "-o", output, "-q", .. i % 10 == 0 ? Array.Empty<string>() : ["--no-verify"]]), result =>
            {
                if (result.Exit == 0 && !(File.Exists(Path.Combine(output, "recur.json")) && File.Exists(Path.Combine(output, "model.onnx"))))
                    return "exit 0 but the package is incomplete";
                if (result.Exit != 0 && Directory.Exists(output)) return "failed but left the output folder";
                if (Directory.GetFileSystemEntries(Path.GetDirectoryName(output)!, $".{Path.GetFileName(output)}.*").Length > 0) return "left a temporary folder";
                if (Outcome.Snapshot(checkpoint.Path) != before) return "changed the checkpoint";
                return null;
            });
            afterEach?.Invoke();
        }
        Report(failures);
    }

    private void Check(List<string> failures, string label, Func<CliRunner.Result> run, Func<CliRunner.Result, string?>? more = null)
    {
        try
        {
            var result = run();
            Outcome.Clean(result, label);
            exits[result.Exit]++;
            if (result.Exit != 0 && samples.Count < 400) samples.Add(result.Err.Trim());
            if (more?.Invoke(result) is string problem) failures.Add($"{label}: {problem}: {result}");
        }
        catch (Exception e) when (e is Xunit.Sdk.XunitException or AggregateException)
        {
            failures.Add($"{label}: {e.Message}");
        }
    }

    /// <summary>Fails with the first failed cases; otherwise logs how the cases ended and their distinct messages.</summary>
    private void Report(List<string> failures)
    {
        output.WriteLine($"exit 0: {exits[0]}, exit 1: {exits[1]}, exit 2: {exits[2]}");
        foreach (var line in samples.Distinct().Take(60)) output.WriteLine(line);
        Assert.True(failures.Count == 0, $"{failures.Count} case(s) failed:\n{string.Join("\n\n", failures.Take(8))}");
    }

    private static byte[] Flipped(byte[] source, Random random, int from, int to, int count)
    {
        var copy = (byte[])source.Clone();
        to = Math.Min(to, copy.Length);
        if (to <= from) return copy;
        for (int k = 0; k < count; k++) copy[random.Next(from, to)] = (byte)random.Next(256);
        return copy;
    }

    private static byte[] RandomBytes(Random random, int n)
    {
        var bytes = new byte[n];
        random.NextBytes(bytes);
        return bytes;
    }

    private static T Pick<T>(Random random, IReadOnlyList<T> items) => items[random.Next(items.Count)];
}
