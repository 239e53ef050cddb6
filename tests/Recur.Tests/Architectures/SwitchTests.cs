using Recur.Export.Checkpoints;
using Recur.Graphs;
using Recur.Graphs.Architectures;
using Recur.Graphs.Config;
using Recur.Graphs.Ir;
using Recur.Graphs.Weights;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Recur.Runtime.Ort;
using Recur.Tests.Support;

namespace Recur.Tests.Architectures;

public sealed class SwitchTests
{
    private const string Case = "switch";
    private const string Capacity = "switch_capacity";

    // Every validate covers both golden input sets: `logits` (batch 1) and `logits_batch2`.
    [Theory]
    [InlineData(null)]
    [InlineData(1)]
    [InlineData(5)]
    public void Matches_golden_logits_whole_batch2_and_split_decoder(int? split) =>
        GoldenChecks.Validate(ConvertedPackages.Get(Case), Case, split);

    [Fact]
    public void Expert_capacity_drops_tokens_as_hf_within_one_call()
    {
        // 8 encoder and 4 decoder tokens go over capacity 3 here. Capacity is counted per call, as HF counts
        // it per forward, so only whole-call logits are golden: a decoder split in two calls routes differently.
        string package = ConvertedPackages.Get(Capacity);
        GoldenChecks.Validate(package, Capacity);
        var split = CliRunner.Run("validate", package, "--expected", ConvertedPackages.Expected(Capacity), "--atol", "1e-4", "--split", "5");
        Assert.Equal(1, split.Exit);
        Assert.StartsWith("FAIL", split.Out.TrimEnd().Split('\n')[^2]);
    }

    [Fact]
    public void One_decoder_token_at_a_time_equals_the_golden_whole_sequence()
    {
        using var runner = GoldenChecks.OpenRunner(ConvertedPackages.Get(Case));
        var (encoderIds, encoderShape) = GoldenChecks.ReadIds(Case, "encoder_input_ids");
        var (ids, _) = GoldenChecks.ReadIds(Case, "decoder_input_ids");
        using var state = runner.CreateState(1);
        runner.Encode(state, encoderIds, (int)encoderShape[1]);
        var stepwise = GoldenChecks.Stepwise(runner, state, ids);
        Assert.InRange(GoldenChecks.MaxAbsDiff(stepwise, GoldenChecks.ReadFloats(Case, "logits")), 0, GoldenChecks.Fp32Atol);
        Assert.Equal([1, 4, ids.Length, 16], state["past_key_values.1.value"].Shape);
    }

    [Theory]
    [InlineData(Case)]
    [InlineData(Capacity)]
    public void Sparse_layers_route_every_token_to_the_golden_expert(string caseName)
    {
        using var routing = RoutingRun.Of(caseName);
        foreach (var side in new[] { "encoder", "decoder" })
        {
            // Block 1 is the only sparse block on each side (sparse step 2: block i is sparse when i % 2 == 1).
            Assert.Equal(GoldenChecks.ReadIds(caseName, $"{side}_layer1_expert").Ids, routing.Longs($"{side}_layer1_expert"));
            var logits = routing.Floats($"{side}_layer1_router_logits");
            Assert.InRange(GoldenChecks.MaxAbsDiff(logits, GoldenChecks.ReadFloats(caseName, $"{side}_layer1_router_logits")), 0, GoldenChecks.Fp32Atol);
            Assert.DoesNotContain(routing.Outputs.Keys, k => k.StartsWith($"{side}_layer0_", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Inspect_lists_the_cache_and_the_encoder_feeds()
    {
        var result = CliRunner.Run("inspect", ConvertedPackages.Get(Case));
        Assert.Equal(0, result.Exit);
        Assert.Contains("state: 4 tensors", result.Out);
        Assert.Contains("past_key_values.1.key -> present.1.key  float32 [batch, 4, past_sequence, 16]  init 0", result.Out);
        Assert.Contains("cross.1.value -> cross.1.value", result.Out);
        Assert.Contains("graph encoder: encoder.onnx", result.Out);
    }

    [Theory]
    [InlineData("num_experts", "0", "field 'num_experts' is 0")]
    [InlineData("dense_act_fn", "\"swiglu\"", "field 'dense_act_fn' is 'swiglu'")]
    [InlineData("router_dtype", "\"bfloat16\"", "field 'router_dtype' is 'bfloat16'")]
    public void Unsupported_config_value_is_one_line_exit_2(string field, string json, string message)
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.EditConfig(c => c[field] = System.Text.Json.Nodes.JsonNode.Parse(json));
        string line = dir.ConvertFailsWithOneLine();
        Assert.Contains(message, line);
    }

    [Fact]
    public void Checkpoint_missing_an_expert_names_it_exit_2()
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.DropTensor("decoder.block.1.layer.2.mlp.experts.expert_2.wo.weight");
        string line = dir.ConvertFailsWithOneLine();
        Assert.Contains("decoder.block.1.layer.2.mlp.experts.expert_2.wo.weight", line);
    }

    [Fact]
    public void Fewer_experts_than_the_checkpoint_holds_is_refused()
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.EditConfig(c => c["num_experts"] = 3); // the router's classifier is [4, 64]: its shape names the mismatch
        var result = CliRunner.Run("convert", dir.Path, "-o", dir.Path + "-out", "--quiet");
        Assert.Equal(2, result.Exit);
        Assert.Contains("router.classifier.weight' has shape [4, 64] but the config implies [3, 64]", result.Err);
    }

    [Theory]
    [InlineData(true, 32, 128)]
    [InlineData(false, 32, 128)]
    [InlineData(true, 8, 16)]
    [InlineData(false, 8, 16)]
    public void Relative_position_buckets_equal_a_naive_loop_for_decode_positions(bool bidirectional, int buckets, int maxDistance)
    {
        // Queries 150..152 after a cache of 150 over keys 0..152: distances past max_distance on both sides.
        long[] queries = [150, 151, 152];
        long[] keys = Enumerable.Range(0, 153).Select(k => (long)k).ToArray();
        const int heads = 2;
        var b = new GraphBuilder("buckets");
        var bias = b.RelativePositionBias(b.Input("q", TensorDType.Int64, queries.Length), b.Input("k", TensorDType.Int64, keys.Length),
            b.Input("table", TensorDType.Float32, buckets, heads), bidirectional, buckets, maxDistance);
        b.Output(bias, "bias");
        string file = Path.Combine(Path.GetTempPath(), $"recur-buckets-{Guid.NewGuid():N}.onnx");
        ModelWriter.Write(b, file);
        OrtLibrary.Initialize();
        float[] table = Enumerable.Range(0, buckets * heads).Select(i => (float)i).ToArray(); // table[bucket, h] = bucket * heads + h
        float[] actual;
        try
        {
            using var session = InferenceSession.FromFile(file);
            using var q = OrtValue.FromArray(queries, [queries.Length]);
            using var k = OrtValue.FromArray(keys, [keys.Length]);
            using var t = OrtValue.FromArray(table, [buckets, heads]);
            var outputs = session.Run(["q", "k", "table"], [q, k, t], ["bias"]);
            using var output = outputs[0];
            Assert.Equal([1, heads, queries.Length, keys.Length], output.Shape);
            actual = output.AsSpan<float>().ToArray();
        }
        finally
        {
            File.Delete(file);
        }
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < queries.Length; i++)
                for (int j = 0; j < keys.Length; j++)
                {
                    int expected = NaiveBucket((int)(keys[j] - queries[i]), bidirectional, buckets, maxDistance);
                    Assert.Equal(expected * heads + h, actual[(h * queries.Length + i) * keys.Length + j]);
                }
    }

    /// <summary>HF's _relative_position_bucket, one distance at a time, the log branch in float32.</summary>
    private static int NaiveBucket(int relative, bool bidirectional, int buckets, int maxDistance)
    {
        int n = bidirectional ? buckets / 2 : buckets, bucket = 0;
        if (bidirectional)
        {
            if (relative > 0) bucket += n;
            relative = Math.Abs(relative);
        }
        else relative = Math.Max(-relative, 0);
        int exact = n / 2;
        if (relative < exact) return bucket + relative;
        int large = exact + (int)(MathF.Log((float)relative / exact) / (float)Math.Log((double)maxDistance / exact) * (n - exact));
        return bucket + Math.Min(large, n - 1);
    }

    /// <summary>
    /// Both graphs built with the router decisions as extra outputs, run once on the golden batch-1 inputs
    /// (the encoder, then the decoder over the whole decoder sequence with an empty cache).
    /// </summary>
    private sealed class RoutingRun : IDisposable
    {
        private readonly string dir = Path.Combine(Path.GetTempPath(), $"recur-switch-routing-{Guid.NewGuid():N}");
        public Dictionary<string, OrtValue> Outputs { get; } = new(StringComparer.Ordinal);

        public static RoutingRun Of(string caseName)
        {
            var run = new RoutingRun();
            Directory.CreateDirectory(run.dir);
            string source = GoldenCases.Dir(caseName);
            var config = ModelConfig.Load(Path.Combine(source, "config.json"));
            using (var checkpoint = Checkpoint.Open(source))
            {
                var model = new SwitchTransformers { ExposeRouting = true }.Build(config, new WeightPuller(checkpoint, source), new ExportOptions());
                foreach (var g in model.Graphs) ModelWriter.Write(g.Graph, Path.Combine(run.dir, $"{g.Role}.onnx"));
            }
            OrtLibrary.Initialize();
            var options = new SessionConfig { IntraOpThreads = 1 };
            using var encoder = InferenceSession.FromFile(Path.Combine(run.dir, "encoder.onnx"), options);
            using var decoder = InferenceSession.FromFile(Path.Combine(run.dir, "decoder.onnx"), options);
            var (encoderIds, encoderShape) = GoldenChecks.ReadIds(caseName, "encoder_input_ids");
            var (decoderIds, decoderShape) = GoldenChecks.ReadIds(caseName, "decoder_input_ids");
            run.RunGraph(encoder, new()
            {
                ["input_ids"] = OrtValue.FromArray(encoderIds, encoderShape),
                ["attention_mask"] = OrtValue.FromArray(Enumerable.Repeat(1L, encoderIds.Length).ToArray(), encoderShape),
            });
            var feeds = new Dictionary<string, OrtValue> { ["input_ids"] = OrtValue.FromArray(decoderIds, decoderShape) };
            foreach (var input in decoder.InputMetadata.Keys.Where(n => n.StartsWith("past_key_values.", StringComparison.Ordinal)))
                feeds[input] = OrtValue.Allocate(Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float, [1, 4, 0, 16]);
            static bool FromEncoder(string name) => name.StartsWith("cross.", StringComparison.Ordinal) || name == "encoder_attention_mask";
            foreach (var input in decoder.InputMetadata.Keys.Where(FromEncoder))
                feeds[input] = run.Outputs[input];
            run.RunGraph(decoder, feeds, dispose: feeds.Keys.Where(k => !FromEncoder(k)));
            return run;
        }

        private void RunGraph(InferenceSession session, Dictionary<string, OrtValue> inputs, IEnumerable<string>? dispose = null)
        {
            string[] names = session.OutputNames.ToArray();
            try
            {
                var results = session.Run(inputs.Keys.ToArray(), inputs.Values.ToArray(), names);
                for (int i = 0; i < names.Length; i++) Outputs[names[i]] = results[i];
            }
            finally
            {
                foreach (var name in (dispose ?? inputs.Keys).ToList()) inputs[name].Dispose();
            }
        }

        public long[] Longs(string name) => Outputs[name].AsSpan<long>().ToArray();
        public float[] Floats(string name) => Outputs[name].AsSpan<float>().ToArray();

        public void Dispose()
        {
            foreach (var v in Outputs.Values) v.Dispose();
            Directory.Delete(dir, recursive: true);
        }
    }
}

public sealed class SwitchPaddingTests
{
    /// <summary>
    /// Encoder inputs of different lengths in one batch: right-padded and masked, each row's decoder
    /// logits equal that row run alone (capacity is per row and padding comes last, so routing of real
    /// tokens is unchanged).
    /// </summary>
    [Fact]
    public void Right_padded_encoder_rows_give_each_rows_own_logits()
    {
        using var runner = GoldenChecks.OpenRunner(ConvertedPackages.Get("switch"));
        var (encoder, _) = GoldenChecks.ReadIds("switch", "encoder_input_ids");
        var (decoder, _) = GoldenChecks.ReadIds("switch", "decoder_input_ids");
        long[][] rows = [encoder[..20], encoder[..13]];

        using var batch = runner.CreateState(2);
        var ids = new long[2 * 20];
        var mask = new long[2 * 20];
        for (int r = 0; r < 2; r++)
            for (int t = 0; t < rows[r].Length; t++) { ids[r * 20 + t] = rows[r][t]; mask[r * 20 + t] = 1; }
        runner.Encode(batch, ids, 20, mask);
        var together = runner.Forward(batch, [.. decoder, .. decoder], decoder.Length);

        for (int r = 0; r < 2; r++)
        {
            using var alone = runner.CreateState(1);
            runner.Encode(alone, rows[r], rows[r].Length);
            var single = runner.Forward(alone, decoder, decoder.Length);
            var mine = together.Data.AsSpan(r * single.Data.Length, single.Data.Length);
            Assert.InRange(GoldenChecks.MaxAbsDiff(mine, single.Data), 0, GoldenChecks.Fp32Atol);
        }
        // The full-length row is the golden case itself.
        Assert.InRange(GoldenChecks.MaxAbsDiff(together.Data.AsSpan(0, together.Data.Length / 2), GoldenChecks.ReadFloats("switch", "logits")), 0, GoldenChecks.Fp32Atol);
    }
}
