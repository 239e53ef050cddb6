using Recur.Runtime.Execution;
using Recur.Tests.Support;

namespace Recur.Tests.Architectures;

public sealed class MambaTests
{
    private const string Case = "mamba";
    private const int Layers = 3, Intermediate = 128, StateSize = 16, ConvKernel = 4;
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

        AssertStateMatchesTheGoldenCache(state, Case, Layers, Intermediate, StateSize, ConvKernel);
    }

    /// <summary>
    /// HF's cache after the golden sequence: ssm_states [layers, batch, I, N]; conv_states [layers, batch, I, K] holds
    /// the last K conv inputs, of which ours keeps the last K-1. Both must be non-trivial, so the check means something.
    /// </summary>
    internal static void AssertStateMatchesTheGoldenCache(ModelState state, string caseName, int layers, int intermediate, int stateSize, int convKernel)
    {
        var ssm = GoldenChecks.ReadFloats(caseName, "cache_ssm_states");
        var conv = GoldenChecks.ReadFloats(caseName, "cache_conv_states");
        Assert.Equal(layers * intermediate * stateSize, ssm.Length);
        Assert.Equal(layers * intermediate * convKernel, conv.Length);
        for (int layer = 0; layer < layers; layer++)
        {
            var ourSsm = state[$"past_key_values.{layer}.ssm_state"].AsSpan<float>();
            var goldenSsm = ssm.AsSpan(layer * intermediate * stateSize, intermediate * stateSize);
            Assert.InRange(GoldenChecks.MaxAbsDiff(ourSsm, goldenSsm), 0, GoldenChecks.Fp32Atol);
            Assert.True(MaxAbs(goldenSsm) > 1e-2, "the golden ssm state should not be trivially small");

            var ourConv = state[$"past_key_values.{layer}.conv_state"].AsSpan<float>();
            var goldenConv = GoldenChecks.ConvWindow(conv, layer, intermediate, convKernel);
            Assert.InRange(GoldenChecks.MaxAbsDiff(ourConv, goldenConv), 0, GoldenChecks.Fp32Atol);
            Assert.True(MaxAbs(goldenConv) > 1e-2, "the golden conv window should not be trivially small");
        }
    }

    [Fact]
    public void One_token_at_a_time_equals_the_whole_sequence()
    {
        using var runner = GoldenChecks.OpenRunner(Package);
        var (ids, _) = GoldenChecks.ReadIds(Case, "input_ids");
        using var state = runner.CreateState(1);
        var stepwise = GoldenChecks.Stepwise(runner, state, ids);
        Assert.InRange(GoldenChecks.MaxAbsDiff(stepwise, GoldenChecks.ReadFloats(Case, "logits")), 0, GoldenChecks.Fp32Atol);
    }

    [Theory]
    [InlineData(5, 9, 14)]   // chunks longer than the conv window after a prefill (HF's cache cannot)
    [InlineData(2, 1, 25)]   // chunks shorter than the conv window
    public void Chunked_runs_equal_the_whole_sequence(params int[] chunks)
    {
        using var runner = GoldenChecks.OpenRunner(Package);
        var (ids, _) = GoldenChecks.ReadIds(Case, "input_ids");
        using var state = runner.CreateState(1);
        var chunked = GoldenChecks.Chunked(runner, state, ids, chunks);
        Assert.InRange(GoldenChecks.MaxAbsDiff(chunked, GoldenChecks.ReadFloats(Case, "logits")), 0, GoldenChecks.Fp32Atol);
    }

    [Fact]
    public void Inspect_lists_every_state_tensor_with_its_shape()
    {
        var result = CliRunner.Run("inspect", Package);
        Assert.Equal(0, result.Exit);
        Assert.Contains("state: 6 tensors", result.Out);
        Assert.Contains("past_key_values.0.conv_state -> present.0.conv_state  float32 [batch, 128, 3]  init 0", result.Out);
        Assert.Contains("past_key_values.2.ssm_state -> present.2.ssm_state  float32 [batch, 128, 16]  init 0", result.Out);
        Assert.Contains("Scan 3", result.Out);
    }

    [Fact]
    public void Auto_time_step_rank_and_derived_intermediate_size_give_the_same_model()
    {
        // hidden 64: "auto" is ceil(64 / 16) = 4 and expand 2 gives 128, as the checkpoint stores.
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.EditConfig(c =>
        {
            c["time_step_rank"] = "auto";
            c.Remove("intermediate_size");
        });
        string output = dir.Path + "-out";
        Assert.Equal(0, CliRunner.Run("convert", dir.Path, "-o", output, "--quiet").Exit);
        GoldenChecks.Validate(output, Case);
    }

    [Fact]
    public void Unsupported_activation_is_one_line_naming_the_field()
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.EditConfig(c => c["hidden_act"] = "relu");
        string line = dir.ConvertFailsWithOneLine();
        Assert.Contains("field 'hidden_act' is 'relu'", line);
    }

    [Fact]
    public void Unknown_time_step_rank_string_is_named()
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.EditConfig(c => c["time_step_rank"] = "full");
        string line = dir.ConvertFailsWithOneLine();
        Assert.Contains("field 'time_step_rank' is 'full'", line);
    }

    [Fact]
    public void Missing_config_field_is_one_line_exit_2()
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.EditConfig(c => c.Remove("state_size"));
        var result = CliRunner.Run("convert", dir.Path, "-o", dir.Path + "-out", "--quiet");
        Assert.Equal(2, result.Exit);
        Assert.Equal($"error: {Path.Combine(dir.Path, "config.json")}: field 'state_size' is missing", result.Err.Trim());
        Assert.False(Directory.Exists(dir.Path + "-out"));
    }

    [Fact]
    public void Config_that_does_not_match_the_checkpoint_names_the_tensor()
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.EditConfig(c => c["conv_kernel"] = 3);
        string line = dir.ConvertFailsWithOneLine();
        Assert.Contains("backbone.layers.0.mixer.conv1d.weight", line);
        Assert.Contains("[128, 1, 4]", line);
    }

    [Fact]
    public void Checkpoint_missing_a_tensor_names_it_exit_2_and_writes_nothing()
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.DropTensor("backbone.layers.1.mixer.A_log");
        string line = dir.ConvertFailsWithOneLine();
        Assert.Contains("backbone.layers.1.mixer.A_log", line);
    }

    private static float MaxAbs(ReadOnlySpan<float> values)
    {
        float max = 0;
        foreach (float v in values) max = Math.Max(max, Math.Abs(v));
        return max;
    }
}
