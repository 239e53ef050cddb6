using Recur.Graphs.Config;
using Recur.Tests.Support;

namespace Recur.Tests.Architectures;

/// <summary>
/// Mamba-2 against the golden logits: Hugging Face's correct single-token branch applied to every token (its
/// 4.46.1 multi-token branch is wrong for this config, see tests/golden/mamba2/expected.json). The case has
/// chunk_size 8 for a sequence of 28 (run as 4 chunks of 7) and 2 B/C groups over 8 heads.
/// </summary>
public sealed class Mamba2Tests
{
    private const string Case = "mamba2";
    private const int Layers = 3, Heads = 8, HeadDim = 16, StateSize = 16, ConvChannels = 192, ConvKernel = 4;
    private static string Package => ConvertedPackages.Get(Case);

    [Theory]
    [InlineData(null)]
    [InlineData(1)]
    [InlineData(11)]
    [InlineData(27)]
    public void Matches_golden_logits_whole_batch2_and_split(int? split) =>
        GoldenChecks.Validate(Package, Case, split);

    [Fact]
    public void State_after_the_whole_sequence_matches_the_golden_cache()
    {
        using var runner = GoldenChecks.OpenRunner(Package);
        var (ids, _) = GoldenChecks.ReadIds(Case, "input_ids");
        using var state = runner.CreateState(1);
        var logits = runner.Forward(state, ids, ids.Length);
        Assert.InRange(GoldenChecks.MaxAbsDiff(logits.Data, GoldenChecks.ReadFloats(Case, "logits")), 0, GoldenChecks.Fp32Atol);

        // Mamba2Cache: ssm_states [layers, batch, H, P, N]; conv_states [layers, batch, x|B|C channels, K] holds
        // the last K conv inputs, of which ours keeps the last K-1.
        var ssm = GoldenChecks.ReadFloats(Case, "cache_ssm_states");
        var conv = GoldenChecks.ReadFloats(Case, "cache_conv_states");
        const int ssmSize = Heads * HeadDim * StateSize;
        Assert.Equal(Layers * ssmSize, ssm.Length);
        Assert.Equal(Layers * ConvChannels * ConvKernel, conv.Length);
        for (int layer = 0; layer < Layers; layer++)
        {
            var ourSsm = state[$"past_key_values.{layer}.ssm_state"].AsSpan<float>();
            Assert.InRange(GoldenChecks.MaxAbsDiff(ourSsm, ssm.AsSpan(layer * ssmSize, ssmSize)), 0, GoldenChecks.Fp32Atol);

            var ourConv = state[$"past_key_values.{layer}.conv_state"].AsSpan<float>();
            Assert.InRange(GoldenChecks.MaxAbsDiff(ourConv, GoldenChecks.ConvWindow(conv, layer, ConvChannels, ConvKernel)), 0, GoldenChecks.Fp32Atol);
        }
    }

    [Fact]
    public void One_token_at_a_time_equals_the_golden()
    {
        using var runner = GoldenChecks.OpenRunner(Package);
        var (ids, _) = GoldenChecks.ReadIds(Case, "input_ids");
        using var state = runner.CreateState(1);
        var stepwise = GoldenChecks.Stepwise(runner, state, ids);
        Assert.InRange(GoldenChecks.MaxAbsDiff(stepwise, GoldenChecks.ReadFloats(Case, "logits")), 0, GoldenChecks.Fp32Atol);
    }

    [Theory]
    [InlineData(11, 17, 0)]  // HF 4.46.1 treats a multi-token call after the first as one token; the golden does not
    [InlineData(5, 9, 14)]   // chunks that straddle the chunk_size boundaries
    [InlineData(8, 8, 12)]   // calls aligned with chunk_size
    [InlineData(2, 1, 25)]   // calls shorter than the conv window
    public void Multi_token_calls_after_the_first_equal_the_golden(int first, int second, int third)
    {
        using var runner = GoldenChecks.OpenRunner(Package);
        var (ids, _) = GoldenChecks.ReadIds(Case, "input_ids");
        using var state = runner.CreateState(1);
        var logits = GoldenChecks.Chunked(runner, state, ids, [.. new[] { first, second, third }.Where(n => n > 0)]);
        Assert.InRange(GoldenChecks.MaxAbsDiff(logits, GoldenChecks.ReadFloats(Case, "logits")), 0, GoldenChecks.Fp32Atol);
    }

    [Theory]
    [InlineData(1)]    // every position its own chunk
    [InlineData(5)]    // 28 as 6 chunks of 5, the last padded by 2
    [InlineData(28)]   // the whole sequence in one chunk
    [InlineData(256)]  // Mamba2Config's default, longer than any call
    public void Any_chunk_size_gives_the_golden_logits(int chunkSize)
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.EditConfig(c => c["chunk_size"] = chunkSize);
        string output = dir.Path + "-out";
        Assert.Equal(0, CliRunner.Run("convert", dir.Path, "-o", output, "--quiet").Exit);
        GoldenChecks.Validate(output, Case);
        GoldenChecks.Validate(output, Case, split: 11);
    }

    [Fact]
    public void Config_reader_takes_Pythons_named_numbers_outside_strings()
    {
        Assert.Contains("Infinity", File.ReadAllText(Path.Combine(GoldenCases.Dir(Case), "config.json")));  // as the golden's Package converts
        var c = ModelConfig.Parse("{\"time_step_limit\": [0.001, Infinity], \"low\": -Infinity, \"odd\": NaN, \"note\": \"a \\\"Infinity\\\" NaN\"}");
        Assert.Equal([0.001, double.PositiveInfinity], c.Doubles("time_step_limit"));
        Assert.Equal(double.NegativeInfinity, c.Double("low"));
        // NaN is read, then refused where a number is used, naming the key: no field means "not a number".
        Assert.Contains("'odd'", Assert.Throws<ConfigException>(() => c.Double("odd")).Message);
        Assert.Equal("a \"Infinity\" NaN", c.String("note"));
    }

    [Fact]
    public void Without_the_time_step_floor_the_logits_move_as_the_golden_records()
    {
        // time_step_limit [0, 1e30] is no clamp at all: expected.json's checks put that 0.011 from the golden.
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.EditConfig(c => c["time_step_limit"] = new System.Text.Json.Nodes.JsonArray(0.0, 1e30));
        string output = dir.Path + "-out";
        Assert.Equal(0, CliRunner.Run("convert", dir.Path, "-o", output, "--quiet").Exit);
        var result = CliRunner.Run("validate", output, "--expected", ConvertedPackages.Expected(Case), "--atol", "1");
        Assert.True(result.Exit == 0, result.ToString());
        // checks.no_dt_floor_vs_golden_max_abs_diff = 0.011098 is for input_ids, validate's first line.
        string line = result.Out.Split('\n').First(l => l.StartsWith("logits: ", StringComparison.Ordinal));
        double diff = double.Parse(line.Split(' ')[1]["max_abs_diff=".Length..], System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(diff, 0.0110, 0.0112);
    }

    [Fact]
    public void Inspect_lists_every_state_tensor_with_its_shape()
    {
        var result = CliRunner.Run("inspect", Package);
        Assert.Equal(0, result.Exit);
        Assert.Contains("state: 6 tensors", result.Out);
        Assert.Contains("past_key_values.0.conv_state -> present.0.conv_state  float32 [batch, 192, 3]  init 0", result.Out);
        Assert.Contains("past_key_values.2.ssm_state -> present.2.ssm_state  float32 [batch, 8, 16, 16]  init 0", result.Out);
    }

    [Fact]
    public void Heads_that_do_not_fill_the_intermediate_width_are_one_line()
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.EditConfig(c => c["num_heads"] = 6);
        string line = dir.ConvertFailsWithOneLine();
        Assert.Contains("field 'num_heads' is 6", line);
    }

    [Fact]
    public void Groups_that_do_not_divide_the_heads_are_one_line()
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.EditConfig(c => c["n_groups"] = 3);
        string line = dir.ConvertFailsWithOneLine();
        Assert.Contains("field 'n_groups' is 3", line);
    }

    [Fact]
    public void Malformed_time_step_limit_is_one_line()
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.EditConfig(c => c["time_step_limit"] = new System.Text.Json.Nodes.JsonArray(0.1, 0.01));
        string line = dir.ConvertFailsWithOneLine();
        Assert.Contains("field 'time_step_limit' is [0.1, 0.01]", line);
    }

    [Fact]
    public void Checkpoint_missing_a_tensor_names_it_exit_2_and_writes_nothing()
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.DropTensor("backbone.layers.2.mixer.dt_bias");
        string line = dir.ConvertFailsWithOneLine();
        Assert.Contains("backbone.layers.2.mixer.dt_bias", line);
    }
}
