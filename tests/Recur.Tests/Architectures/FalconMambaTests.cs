using Recur.Tests.Support;

namespace Recur.Tests.Architectures;

/// <summary>Falcon-Mamba: Mamba-1 whose mixer RMS-normalises B, C and the time step without a weight.</summary>
public sealed class FalconMambaTests
{
    private const string Case = "falcon_mamba";
    private static string Package => ConvertedPackages.Get(Case);

    [Theory]
    [InlineData(null)]
    [InlineData(1)]
    [InlineData(11)]
    [InlineData(27)]
    public void Matches_golden_logits_whole_batch2_and_split(int? split) =>
        GoldenChecks.Validate(Package, Case, split);

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
    [InlineData(11, 4, 13)]  // a chunk of exactly conv_kernel tokens after the prefill (HF restarts the conv window there)
    [InlineData(11, 17)]     // the rest in one call after the prefill (HF raises)
    [InlineData(2, 1, 25)]   // chunks shorter than the conv window
    public void Multi_token_chunks_after_the_first_call_equal_the_whole_sequence(params int[] chunks)
    {
        using var runner = GoldenChecks.OpenRunner(Package);
        var (ids, _) = GoldenChecks.ReadIds(Case, "input_ids");
        using var state = runner.CreateState(1);
        var chunked = GoldenChecks.Chunked(runner, state, ids, chunks);
        Assert.InRange(GoldenChecks.MaxAbsDiff(chunked, GoldenChecks.ReadFloats(Case, "logits")), 0, GoldenChecks.Fp32Atol);
    }

    [Fact]
    public void State_after_the_whole_sequence_matches_the_golden_cache()
    {
        const int Layers = 3, Intermediate = 128, StateSize = 16, ConvKernel = 4;
        using var runner = GoldenChecks.OpenRunner(Package);
        var (ids, _) = GoldenChecks.ReadIds(Case, "input_ids");
        using var state = runner.CreateState(1);
        runner.Forward(state, ids, ids.Length);
        MambaTests.AssertStateMatchesTheGoldenCache(state, Case, Layers, Intermediate, StateSize, ConvKernel);
    }

    [Fact]
    public void The_weightless_norms_are_what_sets_it_apart_from_mamba()
    {
        // The same checkpoint read as plain Mamba misses the B/C/dt normalisation: the golden logits move by ~3.5.
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.EditConfig(c => c["model_type"] = "mamba");
        string output = dir.Path + "-out";
        Assert.Equal(0, CliRunner.Run("convert", dir.Path, "-o", output, "--quiet").Exit);
        var result = CliRunner.Run("validate", output, "--expected", ConvertedPackages.Expected(Case), "--atol", "1e-4");
        Assert.Equal(1, result.Exit);
    }

    [Fact]
    public void Inspect_names_the_architecture_and_the_mamba_state()
    {
        var result = CliRunner.Run("inspect", Package);
        Assert.Equal(0, result.Exit);
        Assert.Contains("falcon_mamba", result.Out);
        Assert.Contains("state: 6 tensors", result.Out);
        Assert.Contains("past_key_values.2.ssm_state -> present.2.ssm_state  float32 [batch, 128, 16]  init 0", result.Out);
    }

    [Fact]
    public void Non_positive_mixer_rms_eps_is_one_line_naming_the_field()
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.EditConfig(c => c["mixer_rms_eps"] = 0);
        string line = dir.ConvertFailsWithOneLine();
        Assert.Contains("field 'mixer_rms_eps' is 0", line);
    }

    [Fact]
    public void Checkpoint_with_an_unused_tensor_names_it()
    {
        // Falcon-Mamba's norms have no weights: a stored dt_layernorm (a Jamba name) is a mapping bug, not ignored.
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.AddTensor("backbone.layers.0.mixer.dt_layernorm.weight", new float[4], 4);
        string line = dir.ConvertFailsWithOneLine();
        Assert.Contains("backbone.layers.0.mixer.dt_layernorm.weight", line);
    }
}
