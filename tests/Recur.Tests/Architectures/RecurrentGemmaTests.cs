using Recur.Tests.Support;

namespace Recur.Tests.Architectures;

public sealed class RecurrentGemmaTests
{
    private const string Case = "recurrent_gemma";
    private const int Window = 8;   // attention_window_size of both golden cases
    private const int Vocab = 256;

    public static TheoryData<string, int?> Splits()
    {
        var data = new TheoryData<string, int?>();
        foreach (var c in new[] { "recurrent_gemma", "recurrent_gemma_bf16" })
            foreach (int? split in new int?[] { null, 1, 5, 8, 11, 27 })   // before, at and after the window of 8
                data.Add(c, split);
        return data;
    }

    [Theory]
    [MemberData(nameof(Splits))]
    public void Matches_golden_local_attention_logits_whole_batch2_and_split(string caseName, int? split) =>
        GoldenChecks.Validate(ConvertedPackages.Get(caseName), caseName, split);

    [Fact]
    public void Three_windows_one_token_at_a_time_keep_the_state_size_and_equal_the_whole_sequence()
    {
        using var runner = GoldenChecks.OpenRunner(ConvertedPackages.Get(Case));
        var (golden, _) = GoldenChecks.ReadIds(Case, "input_ids");
        long[] ids = Enumerable.Range(0, 3 * Window).Select(i => golden[i % golden.Length]).ToArray();

        float[] whole;
        using (var fresh = runner.CreateState(1))
            whole = runner.Forward(fresh, ids, ids.Length).Data;

        using var state = runner.CreateState(1);
        var shapes = state.Contract.ToDictionary(s => s.Input, s => state[s.Input].Shape);
        Assert.Equal([1L, 1, Window - 1, 20], shapes["past_key_values.2.key"]);
        var stepwise = new List<float>();
        for (int t = 0; t < ids.Length; t++)
        {
            stepwise.AddRange(runner.Forward(state, [ids[t]], 1).Data);
            foreach (var s in state.Contract)
                Assert.True(shapes[s.Input].SequenceEqual(state[s.Input].Shape), $"{s.Output} changed shape at step {t}");
            Assert.Equal(t + 1, state["past_key_values.0.position"].AsSpan<long>()[0]);
        }
        Assert.InRange(GoldenChecks.MaxAbsDiff(stepwise.ToArray(), whole), 0, GoldenChecks.Fp32Atol);

        // The first positions are the golden's own (true local attention over the window).
        var reference = GoldenChecks.ReadFloats(Case, "logits");
        int shared = Math.Min(ids.Length, golden.Length) * Vocab;
        Assert.InRange(GoldenChecks.MaxAbsDiff(stepwise.ToArray().AsSpan(0, shared), reference.AsSpan(0, shared)), 0, GoldenChecks.Fp32Atol);
    }

    [Fact]
    public void Local_attention_differs_from_hf_full_causal_path_past_the_window()
    {
        // Guards the mask: HF's use_cache=False path attends to everything; ours must not match it past the window.
        using var runner = GoldenChecks.OpenRunner(ConvertedPackages.Get(Case));
        var (ids, _) = GoldenChecks.ReadIds(Case, "input_ids");
        using var state = runner.CreateState(1);
        var ours = runner.Forward(state, ids, ids.Length).Data;
        var fullCausal = GoldenChecks.ReadFloats(Case, "logits_nocache_fullcausal");
        Assert.InRange(GoldenChecks.MaxAbsDiff(ours.AsSpan(0, Window * Vocab), fullCausal.AsSpan(0, Window * Vocab)), 0, GoldenChecks.Fp32Atol);
        Assert.True(GoldenChecks.MaxAbsDiff(ours.AsSpan(Window * Vocab), fullCausal.AsSpan(Window * Vocab)) > 0.1);
    }

    [Fact]
    public void Unknown_block_type_is_one_line_naming_the_field_exit_2()
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.EditConfig(c => c["block_types"] = new System.Text.Json.Nodes.JsonArray("recurrent", "mamba"));
        string line = dir.ConvertFailsWithOneLine();
        Assert.Contains("field 'block_types'", line);
        Assert.Contains("'mamba'", line);
    }

    [Fact]
    public void Unsupported_partial_rotary_factor_is_named()
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.EditConfig(c => c["partial_rotary_factor"] = 0.25); // HF would split heads into 4 chunks and fail
        string line = dir.ConvertFailsWithOneLine();
        Assert.Contains("field 'partial_rotary_factor' is 0.25", line);
    }

    [Fact]
    public void Checkpoint_missing_a_tensor_names_it_exit_2_and_writes_nothing()
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.DropTensor("model.layers.1.temporal_block.rg_lru.recurrent_gate_weight");
        string line = dir.ConvertFailsWithOneLine();
        Assert.Contains("model.layers.1.temporal_block.rg_lru.recurrent_gate_weight", line);
    }

    [Fact]
    public void Block_types_are_cycled_over_the_layers()
    {
        // Four layers from [recurrent, recurrent, attention]: layer 3 is recurrent again, layer 2 the only attention.
        var result = CliRunner.Run("inspect", ConvertedPackages.Get(Case));
        Assert.Equal(0, result.Exit);
        Assert.Contains("state: 9 tensors", result.Out);
        Assert.Contains("past_key_values.0.position -> present.0.position  int64 [batch]  init 0", result.Out);
        Assert.Contains("past_key_values.3.rg_lru_state -> present.3.rg_lru_state  float32 [batch, 80]", result.Out);
        Assert.Contains("past_key_values.2.key -> present.2.key  float32 [batch, 1, 7, 20]", result.Out);
        Assert.Contains("past_key_values.1.conv_state -> present.1.conv_state  float32 [batch, 80, 3]", result.Out);
    }
}
