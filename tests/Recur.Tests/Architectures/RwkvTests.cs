using Recur.Tests.Support;

namespace Recur.Tests.Architectures;

public sealed class RwkvTests
{
    private const string Case = "rwkv";
    private static string Package => ConvertedPackages.Get(Case);

    [Theory]
    [InlineData(null)]
    [InlineData(1)]
    [InlineData(11)]
    [InlineData(27)]
    public void Matches_golden_logits_whole_batch2_and_split(int? split) =>
        GoldenChecks.Validate(Package, Case, split);

    // The WKV in chunks (--wkv-chunk; the package above is the default, 0, the Scan over positions): 1 position per chunk,
    // 5, 7 and 16 divide neither 28 nor every split's parts, 40 is longer than the sequence.
    public static TheoryData<int, int?> ChunksAndSplits()
    {
        var data = new TheoryData<int, int?>();
        foreach (int chunk in new[] { 1, 5, 7, 16, 40 })
            foreach (int? split in new int?[] { null, 11, 27 }) data.Add(chunk, split);
        return data;
    }

    private static string PackageWithChunk(int chunk) =>
        ConvertedPackages.Get(Case, "--wkv-chunk", chunk.ToString(System.Globalization.CultureInfo.InvariantCulture));

    [Theory]
    [MemberData(nameof(ChunksAndSplits))]
    public void Any_wkv_chunk_length_matches_golden_logits_whole_batch2_and_split(int chunk, int? split) =>
        GoldenChecks.Validate(PackageWithChunk(chunk), Case, split);

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    [InlineData(16)]
    [InlineData(40)]
    public void Whole_sequence_in_one_call_leaves_the_golden_final_state(int chunk)
    {
        using var runner = GoldenChecks.OpenRunner(PackageWithChunk(chunk));
        var (ids, _) = GoldenChecks.ReadIds(Case, "input_ids");
        using var state = runner.CreateState(1);
        var logits = runner.Forward(state, ids, ids.Length).Data;
        Assert.InRange(GoldenChecks.MaxAbsDiff(logits, GoldenChecks.ReadFloats(Case, "logits")), 0, GoldenChecks.Fp32Atol);
        AssertGoldenFinalState(state);
    }

    [Fact]
    public void One_token_at_a_time_equals_the_whole_sequence_and_the_golden_final_state()
    {
        using var runner = GoldenChecks.OpenRunner(Package);
        var (ids, _) = GoldenChecks.ReadIds(Case, "input_ids");
        var golden = GoldenChecks.ReadFloats(Case, "logits");
        using var state = runner.CreateState(1);
        var stepwise = GoldenChecks.Stepwise(runner, state, ids);
        Assert.InRange(GoldenChecks.MaxAbsDiff(stepwise, golden), 0, GoldenChecks.Fp32Atol);
        AssertGoldenFinalState(state);
    }

    private static void AssertGoldenFinalState(Recur.Runtime.Execution.ModelState state)
    {
        // HF's final state: 5 tensors [batch, hidden, layers]: ffn shift, attention shift, wkv num, den, max.
        string[] kinds = ["ffn_shift", "attn_shift", "wkv_num", "wkv_den", "wkv_max"];
        for (int k = 0; k < kinds.Length; k++)
        {
            var expected = GoldenChecks.ReadFloats(Case, $"state_final_{k}");
            int hidden = 64, layers = 4;
            for (int layer = 0; layer < layers; layer++)
            {
                var ours = state[$"past_key_values.{layer}.{kinds[k]}"].AsSpan<float>();
                Assert.Equal(hidden, ours.Length);
                var column = Enumerable.Range(0, hidden).Select(h => expected[h * layers + layer]).ToArray();
                // wkv_max is an exponent (values up to ~10); the others are activations: same absolute tolerance.
                Assert.InRange(GoldenChecks.MaxAbsDiff(ours, column), 0, GoldenChecks.Fp32Atol);
            }
        }
    }

    [Fact]
    public void Inspect_lists_every_state_tensor_with_its_shape()
    {
        var result = CliRunner.Run("inspect", Package);
        Assert.Equal(0, result.Exit);
        Assert.Contains("state: 20 tensors", result.Out);
        Assert.Contains("past_key_values.3.wkv_max -> present.3.wkv_max  float32 [batch, 64]  init -1E+38", result.Out);
        Assert.Contains("past_key_values.0.attn_shift -> present.0.attn_shift  float32 [batch, 64]", result.Out);
        Assert.Contains("Scan 4", result.Out);
    }

    [Fact]
    public void Negative_wkv_chunk_is_one_line_exit_2()
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        var result = CliRunner.Run("convert", dir.Path, "-o", dir.Path + "-out", "--quiet", "--wkv-chunk", "-2");
        Assert.Equal(2, result.Exit);
        Assert.Equal("error: --wkv-chunk -2: expected 0 (the Scan over positions) or a positive chunk length", result.Err.Trim());
        Assert.False(Directory.Exists(dir.Path + "-out"));
    }

    [Fact]
    public void Wkv_chunk_for_another_architecture_is_refused()
    {
        string output = Path.Combine(Path.GetTempPath(), $"recur-mamba-{Guid.NewGuid():N}");
        var result = CliRunner.Run("convert", GoldenCases.Dir("mamba"), "-o", output, "--quiet", "--wkv-chunk", "8");
        Assert.Equal(2, result.Exit);
        Assert.Equal($"error: --wkv-chunk: applies to RWKV-4 (model_type rwkv), but {Path.Combine(GoldenCases.Dir("mamba"), "config.json")} is model_type mamba",
            result.Err.Trim());
        Assert.False(Directory.Exists(output));
    }

    [Fact]
    public void Missing_config_field_is_one_line_exit_2()
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.EditConfig(c => c.Remove("num_hidden_layers"));
        var result = CliRunner.Run("convert", dir.Path, "-o", dir.Path + "-out", "--quiet");
        Assert.Equal(2, result.Exit);
        Assert.Equal($"error: {Path.Combine(dir.Path, "config.json")}: field 'num_hidden_layers' is missing", result.Err.Trim());
        Assert.False(Directory.Exists(dir.Path + "-out"));
    }

    [Fact]
    public void Unknown_value_in_config_is_named()
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.EditConfig(c => c["rescale_every"] = -3);
        string line = dir.ConvertFailsWithOneLine();
        Assert.Contains("field 'rescale_every' is -3", line);
    }

    [Fact]
    public void Checkpoint_missing_a_tensor_names_it_exit_2_and_writes_nothing()
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.DropTensor("rwkv.blocks.2.attention.time_first");
        string line = dir.ConvertFailsWithOneLine();
        Assert.Contains("rwkv.blocks.2.attention.time_first", line);
    }

    [Fact]
    public void Config_that_does_not_match_the_checkpoint_is_refused()
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.EditConfig(c => c["num_hidden_layers"] = 3); // the checkpoint has 4 blocks: block 3's tensors go unused
        var result = CliRunner.Run("convert", dir.Path, "-o", dir.Path + "-out", "--quiet");
        Assert.Equal(2, result.Exit);
        Assert.Contains("not used by the graph", result.Err);
        Assert.Contains("rwkv.blocks.3.", result.Err);
    }
}
