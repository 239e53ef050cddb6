using Recur.Export.Checkpoints;
using Recur.Graphs.Architectures;
using Recur.Graphs.Config;
using Recur.Graphs.Weights;
using Recur.Tests.Support;

namespace Recur.Tests.Architectures;

/// <summary>
/// Jamba's golden case: 4 layers (0 Mamba + MLP, 1 Mamba + MoE, 2 attention + MLP, 3 Mamba + MoE), 4 experts, top 2,
/// 4 query heads over 2 key/value heads of 16.
/// </summary>
public sealed class JambaTests
{
    private const string Case = "jamba";
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
        Assert.Equal([1, 2, ids.Length, 16], state["past_key_values.2.key"].Shape);
        Assert.Equal([1, 128, 3], state["past_key_values.3.conv_state"].Shape);
    }

    [Theory]
    [InlineData(11, 17)]     // the rest in one call after the prefill (HF restarts the Mamba conv window there)
    [InlineData(11, 3, 14)]  // a short second chunk, then a long one
    [InlineData(5, 9, 14)]
    public void Multi_token_chunks_after_the_first_call_equal_the_whole_sequence(params int[] chunks)
    {
        using var runner = GoldenChecks.OpenRunner(Package);
        var (ids, _) = GoldenChecks.ReadIds(Case, "input_ids");
        using var state = runner.CreateState(1);
        var chunked = GoldenChecks.Chunked(runner, state, ids, chunks);
        Assert.InRange(GoldenChecks.MaxAbsDiff(chunked, GoldenChecks.ReadFloats(Case, "logits")), 0, GoldenChecks.Fp32Atol);
    }

    [Fact]
    public void Moe_layers_choose_the_golden_experts_in_order_and_dense_layers_have_no_router()
    {
        var (ids, shape) = GoldenChecks.ReadIds(Case, "input_ids");
        string source = GoldenCases.Dir(Case);
        var config = ModelConfig.Load(Path.Combine(source, "config.json"));
        using var checkpoint = Checkpoint.Open(source);
        var model = new Jamba { ExposeRouting = true }.Build(config, new WeightPuller(checkpoint, source), new ExportOptions());
        var graph = model.Graphs.Single().Graph;
        using var run = GraphRun.Open(graph);
        var inputs = new List<(string, HostTensor)> { ("input_ids", HostTensor.Of(ids, shape)), ("attention_mask", HostTensor.Of(Enumerable.Repeat(1L, ids.Length).ToArray(), shape)) };
        foreach (var name in graph.InputNames.Where(n => n.StartsWith("past_key_values.", StringComparison.Ordinal)))
            inputs.Add((name, name.EndsWith(".conv_state", StringComparison.Ordinal) ? HostTensor.Of(new float[128 * 3], 1, 128, 3)
                : name.EndsWith(".ssm_state", StringComparison.Ordinal) ? HostTensor.Of(new float[128 * 16], 1, 128, 16)
                : HostTensor.Of(Array.Empty<float>(), 1, 2, 0, 16)));
        var result = run.Run([.. inputs]);

        foreach (int layer in new[] { 1, 3 })
        {
            Assert.Equal(GoldenChecks.ReadIds(Case, $"layer{layer}_experts").Ids, result[$"layer{layer}_experts"].Longs);
            Assert.InRange(GoldenChecks.MaxAbsDiff(result[$"layer{layer}_router_logits"].Floats, GoldenChecks.ReadFloats(Case, $"layer{layer}_router_logits")),
                0, GoldenChecks.Fp32Atol);
        }
        Assert.DoesNotContain(graph.OutputNames, n => n.StartsWith("layer0_", StringComparison.Ordinal) || n.StartsWith("layer2_", StringComparison.Ordinal));
    }

    [Fact]
    public void Left_padded_rows_match_each_row_alone_and_keep_decoding()
    {
        // Padding reaches neither the attention (masked keys) nor the Mamba layers (zeroed before and after the conv).
        using var runner = GoldenChecks.OpenRunner(Package);
        GoldenChecks.LeftPaddedRowsMatchAloneAndKeepDecoding(runner, Case);
    }

    [Fact]
    public void Inspect_lists_mamba_state_on_mamba_layers_and_a_cache_on_the_attention_layer()
    {
        var result = CliRunner.Run("inspect", Package);
        Assert.Equal(0, result.Exit);
        Assert.Contains("state: 8 tensors", result.Out);
        Assert.Contains("past_key_values.0.conv_state -> present.0.conv_state  float32 [batch, 128, 3]  init 0", result.Out);
        Assert.Contains("past_key_values.3.ssm_state -> present.3.ssm_state  float32 [batch, 128, 16]  init 0", result.Out);
        Assert.Contains("past_key_values.2.key -> present.2.key  float32 [batch, 2, past_sequence, 16]  init 0", result.Out);
        Assert.DoesNotContain("past_key_values.2.conv_state", result.Out);
    }

    [Fact]
    public void Top_k_comes_from_the_config_one_expert_per_token_is_another_model()
    {
        // One expert per token, softmax-weighted: a different model, so the golden logits must not pass.
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.EditConfig(c => c["num_experts_per_tok"] = 1);
        string output = dir.Path + "-out";
        Assert.Equal(0, CliRunner.Run("convert", dir.Path, "-o", output, "--quiet").Exit);
        Assert.Equal(1, CliRunner.Run("validate", output, "--expected", ConvertedPackages.Expected(Case), "--atol", "1e-4").Exit);
    }

    [Theory]
    [InlineData("attn_layer_offset", "4", "field 'attn_layer_offset' is 4")]
    [InlineData("num_experts_per_tok", "5", "field 'num_experts_per_tok' is 5")]
    [InlineData("hidden_act", "\"gelu\"", "field 'hidden_act' is 'gelu'")]
    [InlineData("sliding_window", "8", "field 'sliding_window' is 8")]
    [InlineData("mamba_dt_rank", "\"full\"", "field 'mamba_dt_rank' is 'full'")]
    public void Unsupported_config_is_one_line_naming_the_field(string key, string json, string expected)
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.EditConfig(c => c[key] = System.Text.Json.Nodes.JsonNode.Parse(json));
        Assert.Contains(expected, dir.ConvertFailsWithOneLine());
    }

    [Fact]
    public void A_layer_schedule_that_does_not_match_the_checkpoint_names_the_missing_tensor()
    {
        // Attention at layer 1 instead of 2: layer 1's q_proj is missing (and its Mamba weights would be left over).
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.EditConfig(c => c["attn_layer_offset"] = 1);
        Assert.Contains("model.layers.1.self_attn.q_proj.weight", dir.ConvertFailsWithOneLine());
    }

    [Fact]
    public void Checkpoint_missing_an_expert_names_it()
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.DropTensor("model.layers.3.feed_forward.experts.2.up_proj.weight");
        Assert.Contains("model.layers.3.feed_forward.experts.2.up_proj.weight", dir.ConvertFailsWithOneLine());
    }
}
