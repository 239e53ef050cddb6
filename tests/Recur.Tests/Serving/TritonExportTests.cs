using Recur.Tests.Support;
using Xunit.Abstractions;

namespace Recur.Tests.Serving;

/// <summary>
/// `recur export triton` against the goldens: a test plays Triton's sequence batcher from the written
/// repository alone (config.pbtxt + 1/model.onnx + initial_state/), with two sequences of different lengths
/// interleaved chunk by chunk; fixed-size state is batched across the sequences as the oldest strategy does.
/// </summary>
public sealed class TritonExportTests(ITestOutputHelper output)
{
    private const string Name = "served";

    public static TheoryData<string> Decoders => new() { "rwkv", "rwkv7", "mamba", "mamba2", "falcon_mamba", "recurrent_gemma", "gemma", "gemma2", "jamba" };

    private static readonly string[] FixedState = ["rwkv", "rwkv7", "mamba", "mamba2", "falcon_mamba", "recurrent_gemma"];

    [Theory]
    [MemberData(nameof(Decoders))]
    public void Two_sequences_interleaved_in_chunks_through_implicit_state_match_the_goldens(string caseName)
    {
        string repo = Export(caseName);
        try
        {
            using var triton = TritonPlayer.Open(Path.Combine(repo, Name));
            bool fixedState = FixedState.Contains(caseName);
            Assert.Equal(fixedState ? 8 : 1, triton.MaxBatchSize);
            var state = triton.Config.Message("sequence_batching");
            Assert.True(state.Has("oldest"));
            Assert.Equal(!fixedState, state.Messages("state").Any(s => s.Longs("dims").Contains(-1)));
            Assert.Equal(["input_ids"], triton.Inputs);
            Assert.Equal(["logits"], triton.Outputs);

            var (ids, shape) = GoldenChecks.ReadIds(caseName, "input_ids_batch2");
            var expected = GoldenChecks.ReadFloats(caseName, "logits_batch2");
            int length = (int)shape[1], vocab = expected.Length / (2 * length);
            // Row 0 whole, row 1's first 19 tokens (a causal model's prefix logits are the prefix's own).
            var sequences = new[]
            {
                new Sequence("a", ids[..length], [6, 1, 1, 3, 1, 1, 8, 7]),
                new Sequence("b", ids[length..(length + 19)], [6, 1, 1, 2, 1, 1, 7]),
            };
            Play(triton, sequences, _ => null);

            double diffA = GoldenChecks.MaxAbsDiff(sequences[0].Logits.ToArray(), expected.AsSpan(0, length * vocab));
            double diffB = GoldenChecks.MaxAbsDiff(sequences[1].Logits.ToArray(), expected.AsSpan(length * vocab, 19 * vocab));
            output.WriteLine($"{caseName}: max abs diff {diffA:E2} (28 tokens), {diffB:E2} (19 tokens), {triton.BatchedRuns} batched runs");
            Assert.InRange(Math.Max(diffA, diffB), 0, GoldenChecks.Fp32Atol);
            // Steps where both sequences send chunks of one length ran as one batch of two.
            Assert.Equal(fixedState ? 5 : 0, triton.BatchedRuns);
        }
        finally
        {
            Directory.Delete(repo, recursive: true);
        }
    }

    [Fact]
    public void Switch_encoder_model_once_per_sequence_then_decoder_with_implicit_self_attention_cache_matches_the_goldens()
    {
        const string caseName = "switch";
        string repo = Export(caseName);
        try
        {
            using var encoder = TritonPlayer.Open(Path.Combine(repo, Name + "_encoder"));
            using var decoder = TritonPlayer.Open(Path.Combine(repo, Name));
            Assert.False(encoder.Config.Has("sequence_batching"));
            Assert.Equal(1, decoder.MaxBatchSize);
            Assert.Equal(encoder.Outputs.Order(), decoder.Inputs.Where(i => i != "input_ids").Order());

            var (encIds, encShape) = GoldenChecks.ReadIds(caseName, "encoder_input_ids_batch2");
            var (decIds, decShape) = GoldenChecks.ReadIds(caseName, "decoder_input_ids_batch2");
            var expected = GoldenChecks.ReadFloats(caseName, "logits_batch2");
            int encLength = (int)encShape[1], length = (int)decShape[1], vocab = expected.Length / (2 * length);

            // The client runs the encoder once per sequence (here both in one batch) and sends its outputs with every decoder request.
            var encoded = encoder.Run(
            [
                .. Enumerable.Range(0, 2).Select(row => new TritonPlayer.Request($"{row}", encIds[(row * encLength)..((row + 1) * encLength)],
                    new Dictionary<string, TritonPlayer.Tensor> { ["attention_mask"] = new(Enumerable.Repeat(1L, encLength).ToArray(), [1, encLength]) })),
            ]);
            Assert.Equal(1, encoder.BatchedRuns);
            var sequences = new[]
            {
                new Sequence("a", decIds[..length], [3, 1, 1, 4, 3]),
                new Sequence("b", decIds[length..(length + 8)], [3, 1, 2, 2]),
            };
            Play(decoder, sequences, s => encoded[s.Name == "a" ? 0 : 1]);

            double diffA = GoldenChecks.MaxAbsDiff(sequences[0].Logits.ToArray(), expected.AsSpan(0, length * vocab));
            double diffB = GoldenChecks.MaxAbsDiff(sequences[1].Logits.ToArray(), expected.AsSpan(length * vocab, 8 * vocab));
            output.WriteLine($"switch: max abs diff {diffA:E2} (12 tokens), {diffB:E2} (8 tokens)");
            Assert.InRange(Math.Max(diffA, diffB), 0, GoldenChecks.Fp32Atol);
        }
        finally
        {
            Directory.Delete(repo, recursive: true);
        }
    }

    [Fact]
    public void Served_graph_keeps_the_weights_in_external_data_beside_it()
    {
        string repo = ExportPackage(ConvertedPackages.Get("gemma", "--external-data", "always"));
        try
        {
            Assert.True(File.Exists(Path.Combine(repo, Name, "1", "model.onnx.data")));
            using var triton = TritonPlayer.Open(Path.Combine(repo, Name));
            var (ids, shape) = GoldenChecks.ReadIds("gemma", "input_ids");
            var expected = GoldenChecks.ReadFloats("gemma", "logits");
            var sequence = new Sequence("a", ids, [20, 1, 7]);
            Play(triton, [sequence], _ => null);
            Assert.Equal(shape[1], sequence.Ids.Length);
            Assert.InRange(GoldenChecks.MaxAbsDiff(sequence.Logits.ToArray(), expected), 0, GoldenChecks.Fp32Atol);
        }
        finally
        {
            Directory.Delete(repo, recursive: true);
        }
    }

    [Fact]
    public void RWKV_running_max_starts_from_its_initial_state_file()
    {
        string repo = Export("rwkv");
        try
        {
            var states = Pbtxt.Parse(File.ReadAllText(Path.Combine(repo, Name, "config.pbtxt"))).Message("sequence_batching").Messages("state").ToList();
            Assert.Equal(20, states.Count);
            foreach (var s in states)
            {
                var init = s.Message("initial_state");
                if (s.Scalar("input_name").EndsWith(".wkv_max", StringComparison.Ordinal))
                {
                    var bytes = File.ReadAllBytes(Path.Combine(repo, Name, "initial_state", init.Scalar("data_file")));
                    var values = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes).ToArray();
                    Assert.Equal(64, values.Length);
                    Assert.All(values, v => Assert.Equal(-1e38f, v));
                }
                else Assert.Equal("true", init.Scalar("zero_data"));
            }
        }
        finally
        {
            Directory.Delete(repo, recursive: true);
        }
    }

    [ProtobufFact]
    public void Every_written_config_parses_against_tritons_model_config_proto()
    {
        var repos = new List<string>
        {
            Export("rwkv"), Export("mamba"), Export("recurrent_gemma"), Export("gemma"), Export("gemma2"), Export("switch"),
            Export("mamba", "--strategy", "direct", "--provider", "cuda", "--instances", "2", "--max-batch-size", "4"),
        };
        string work = Path.Combine(Path.GetTempPath(), $"recur-pbtxt-{Guid.NewGuid():N}");
        Directory.CreateDirectory(work);
        try
        {
            var configs = repos.SelectMany(r => Directory.GetFiles(r, "config.pbtxt", SearchOption.AllDirectories)).ToList();
            Assert.Equal(8, configs.Count);
            var protoc = ProtobufTools.Run("protoc", $"--proto_path={ProtobufTools.SchemaDir} --python_out={work} model_config.proto");
            Assert.True(protoc.Exit == 0, protoc.Output);
            string script = Path.Combine(work, "check.py");
            File.WriteAllText(script, """
                import sys
                sys.path.insert(0, sys.argv[1])
                import model_config_pb2
                from google.protobuf import text_format
                for path in sys.argv[2:]:
                    config = text_format.Parse(open(path).read(), model_config_pb2.ModelConfig())
                    print(path, config.name, len(config.sequence_batching.state))
                """);
            var parsed = ProtobufTools.Run(ProtobufTools.Python, $"{script} {work} {string.Join(' ', configs)}");
            Assert.True(parsed.Exit == 0, parsed.Output);
            Assert.Equal(configs.Count, parsed.Output.Trim().Split('\n').Length);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
            foreach (var r in repos) Directory.Delete(r, recursive: true);
        }
    }

    [Fact]
    public void Growing_cache_refuses_a_batch_size_above_one_naming_the_option()
    {
        string repo = Path.Combine(Path.GetTempPath(), $"recur-triton-{Guid.NewGuid():N}");
        var result = CliRunner.Run("export", "triton", ConvertedPackages.Get("gemma"), "-o", repo, "--max-batch-size", "4");
        Assert.Equal(2, result.Exit);
        Assert.StartsWith("error: --max-batch-size 4: gemma's cache grows", result.Err);
        Assert.Single(result.Err.TrimEnd().Split('\n'));
        Assert.False(Directory.Exists(repo));
    }

    [Fact]
    public void A_package_missing_its_graph_fails_in_one_line_and_leaves_nothing()
    {
        string package = Path.Combine(Path.GetTempPath(), $"recur-package-{Guid.NewGuid():N}");
        string repo = package + "-triton";
        Directory.CreateDirectory(package);
        try
        {
            foreach (var file in Directory.GetFiles(ConvertedPackages.Get("rwkv")))
                if (Path.GetFileName(file) != "model.onnx") File.Copy(file, Path.Combine(package, Path.GetFileName(file)));
            var result = CliRunner.Run("export", "triton", package, "-o", repo);
            Assert.Equal(2, result.Exit);
            Assert.Equal($"error: {Path.Combine(package, "model.onnx")}: the graph recur.json names is missing", result.Err.Trim());
            Assert.False(Directory.Exists(repo));
            Assert.Empty(Directory.GetDirectories(Path.GetTempPath(), $".{Path.GetFileName(repo)}.*"));
        }
        finally
        {
            Directory.Delete(package, recursive: true);
        }
    }

    [Fact]
    public void Replaces_only_its_own_repository_and_only_with_force()
    {
        string package = ConvertedPackages.Get("mamba");
        string other = Path.Combine(Path.GetTempPath(), $"recur-triton-{Guid.NewGuid():N}");
        Directory.CreateDirectory(other);
        File.WriteAllText(Path.Combine(other, "keep.txt"), "not a repository");
        string repo = Export("mamba");
        try
        {
            var refused = CliRunner.Run("export", "triton", package, "-o", other, "--force");
            Assert.Equal(2, refused.Exit);
            Assert.Contains("is not a Triton repository written by Recur", refused.Err);
            Assert.True(File.Exists(Path.Combine(other, "keep.txt")));

            var again = CliRunner.Run("export", "triton", package, "-o", repo, "--name", Name);
            Assert.Equal(2, again.Exit);
            Assert.Contains("pass --force", again.Err);

            var forced = CliRunner.Run("export", "triton", package, "-o", repo, "--name", "renamed", "--force", "-q");
            Assert.True(forced.Exit == 0, forced.ToString());
            Assert.Equal(["renamed"], Directory.GetDirectories(repo).Select(Path.GetFileName));
            Assert.Empty(Directory.GetDirectories(Path.GetDirectoryName(repo)!, $".{Path.GetFileName(repo)}.*"));
        }
        finally
        {
            Directory.Delete(other, recursive: true);
            Directory.Delete(repo, recursive: true);
        }
    }

    private sealed record Sequence(string Name, long[] Ids, int[] Chunks)
    {
        public List<float> Logits { get; } = [];
    }

    /// <summary>
    /// Each step sends every live sequence's next chunk; requests of one length run together up to
    /// max_batch_size (Triton batches only tensors of one shape), the others alone.
    /// </summary>
    private static void Play(TritonPlayer triton, IReadOnlyList<Sequence> sequences,
        Func<Sequence, IReadOnlyDictionary<string, TritonPlayer.Tensor>?> inputs)
    {
        foreach (var s in sequences) Assert.Equal(s.Ids.Length, s.Chunks.Sum());
        foreach (var s in sequences) triton.Start(s.Name);
        var offsets = sequences.ToDictionary(s => s.Name, _ => 0);
        for (int step = 0; step < sequences.Max(s => s.Chunks.Length); step++)
        {
            var requests = sequences.Where(s => step < s.Chunks.Length)
                .Select(s => (Sequence: s, Request: new TritonPlayer.Request(s.Name, s.Ids[offsets[s.Name]..(offsets[s.Name] + s.Chunks[step])], inputs(s))))
                .ToList();
            foreach (var (s, _) in requests) offsets[s.Name] += s.Chunks[step];
            var runs = triton.MaxBatchSize > 1
                ? requests.GroupBy(r => r.Request.Ids.Length).Select(g => g.ToList())
                : requests.Select(r => new List<(Sequence, TritonPlayer.Request)> { r });
            foreach (var run in runs)
            {
                var outputs = triton.Run(run.Select(r => r.Item2).ToList());
                for (int i = 0; i < run.Count; i++) run[i].Item1.Logits.AddRange(outputs[i]["logits"].Floats);
            }
            foreach (var s in sequences.Where(s => step == s.Chunks.Length - 1)) triton.End(s.Name);
        }
    }

    private static string Export(string caseName, params string[] extra) => ExportPackage(ConvertedPackages.Get(caseName), extra);

    private static string ExportPackage(string package, params string[] extra)
    {
        string repo = Path.Combine(Path.GetTempPath(), $"recur-triton-{Guid.NewGuid():N}");
        var result = CliRunner.Run(["export", "triton", package, "-o", repo, "--name", Name, "-q", .. extra]);
        Assert.True(result.Exit == 0, result.ToString());
        return repo;
    }
}

/// <summary>
/// A fact that needs protoc and a Python with google.protobuf (Debian: protobuf-compiler, python3-protobuf).
/// Skipped with the reason when they are missing, except in CI (CI=true), where it runs and fails.
/// </summary>
public sealed class ProtobufFactAttribute : FactAttribute
{
    public ProtobufFactAttribute()
    {
        if (ProtobufTools.Missing() is string why && Environment.GetEnvironmentVariable("CI") != "true")
            Skip = $"{why} (apt-get install protobuf-compiler python3-protobuf; CI installs them and fails without them)";
    }
}

public static class ProtobufTools
{
    /// <summary>Debian's python3 carries python3-protobuf; a pyenv python3 may come first on PATH without it.</summary>
    public static string Python => File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";

    public static string SchemaDir => Path.Combine(GoldenCases.RepositoryRoot, "tests", "triton");

    public static string? Missing()
    {
        if (Run("protoc", "--version").Exit != 0) return "protoc is not installed";
        if (Run(Python, "-c \"import google.protobuf\"").Exit != 0) return $"{Python} cannot import google.protobuf";
        return null;
    }

    public static (int Exit, string Output) Run(string program, string arguments)
    {
        try
        {
            using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(program, arguments)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            })!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            string stderr = process.StandardError.ReadToEnd();
            process.WaitForExit();
            return (process.ExitCode, stdout.Result + stderr);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, $"{program}: {e.Message}");
        }
    }
}
