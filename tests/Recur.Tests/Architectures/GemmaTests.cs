using System.Globalization;
using System.Text.Json;
using Recur.Runtime.Execution;
using Recur.Tests.Support;

namespace Recur.Tests.Architectures;

public sealed class GemmaTests
{
    [Theory]
    [InlineData("gemma", null)]
    [InlineData("gemma", 1)]
    [InlineData("gemma", 11)]
    [InlineData("gemma", 27)]
    [InlineData("gemma_bf16", null)] // against `logits`: bf16 weights, float32 compute
    [InlineData("gemma_bf16", 1)]
    [InlineData("gemma_bf16", 11)]
    [InlineData("gemma_bf16", 27)]
    [InlineData("gemma2", null)]
    [InlineData("gemma2", 1)]
    [InlineData("gemma2", 11)]
    [InlineData("gemma2", 27)]
    public void Matches_golden_logits_whole_batch2_and_split(string caseName, int? split) =>
        GoldenChecks.Validate(ConvertedPackages.Get(caseName), caseName, split);

    // Caches of fixed capacity written in place (convert --kv-cache-length): the same goldens at the fp32 tolerance.
    private static string InPlace(string caseName) => ConvertedPackages.Get(caseName, "--kv-cache-length", "40");

    [Theory]
    [InlineData("gemma", null)]
    [InlineData("gemma", 1)]
    [InlineData("gemma", 11)]
    [InlineData("gemma", 27)]
    [InlineData("gemma2", null)]
    [InlineData("gemma2", 1)]
    [InlineData("gemma2", 11)]
    [InlineData("gemma2", 27)]
    public void In_place_caches_match_golden_logits_whole_batch2_and_split(string caseName, int? split) =>
        GoldenChecks.Validate(InPlace(caseName), caseName, split);

    [Fact]
    public void A_cache_length_for_a_model_without_one_is_refused_in_one_line()
    {
        var result = CliRunner.Run("convert", GoldenCases.Dir("rwkv"), "-o", Path.Combine(Path.GetTempPath(), $"recur-kv-{Guid.NewGuid():N}"), "--kv-cache-length", "8", "-q");
        Assert.Equal(2, result.Exit);
        Assert.Contains("--kv-cache-length: rwkv", Assert.Single(result.Err.Trim().Split('\n')));
    }

    [Theory]
    [InlineData("gemma")]
    [InlineData("gemma2")]
    public void In_place_caches_keep_their_capacity_and_refuse_to_overflow(string caseName)
    {
        using var runner = GoldenChecks.OpenRunner(InPlace(caseName));
        var (ids, _) = GoldenChecks.ReadIds(caseName, "input_ids");
        using var state = runner.CreateState(1);
        var stepwise = GoldenChecks.Stepwise(runner, state, ids);
        Assert.InRange(GoldenChecks.MaxAbsDiff(stepwise, GoldenChecks.ReadFloats(caseName, "logits")), 0, GoldenChecks.Fp32Atol);
        Assert.Equal(new long[] { 1, 2, 40, 24 }, state["past_key_values.0.key"].Shape);
        var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(InPlace(caseName), "recur.json"))).RootElement;
        Assert.Equal(2, manifest.GetProperty("state")[0].GetProperty("in_place_axis").GetInt32());
        Assert.False(File.Exists(Path.Combine(InPlace(caseName), "genai_config.json")));
        int left = 40 - ids.Length;
        var error = Assert.Throws<InvalidOperationException>(() => runner.Forward(state, new long[left + 1], left + 1));
        Assert.Contains("holds 40 positions", error.Message);
    }

    [Theory]
    [InlineData("gemma")]
    [InlineData("gemma2")] // 28 steps with a window of 8: the local layers mask ever more of the cache
    public void One_token_at_a_time_equals_the_whole_sequence(string caseName)
    {
        using var runner = GoldenChecks.OpenRunner(ConvertedPackages.Get(caseName));
        var (ids, _) = GoldenChecks.ReadIds(caseName, "input_ids");
        using var state = runner.CreateState(1);
        var stepwise = GoldenChecks.Stepwise(runner, state, ids);
        Assert.InRange(GoldenChecks.MaxAbsDiff(stepwise, GoldenChecks.ReadFloats(caseName, "logits")), 0, GoldenChecks.Fp32Atol);
        Assert.Equal(new long[] { 1, 2, ids.Length, 24 }, state["past_key_values.0.key"].Shape);
    }

    [Theory]
    [InlineData("gemma", false)]
    [InlineData("gemma2", false)]
    [InlineData("gemma", true)]
    [InlineData("gemma2", true)]
    public void Left_padded_rows_match_each_row_alone_and_keep_decoding(string caseName, bool inPlace)
    {
        // Row 1 is left-padded by 8; both rows are longer than gemma2's window.
        using var runner = GoldenChecks.OpenRunner(inPlace ? InPlace(caseName) : ConvertedPackages.Get(caseName));
        GoldenChecks.LeftPaddedRowsMatchAloneAndKeepDecoding(runner, caseName);
    }

    [Theory]
    [InlineData("gemma")]
    [InlineData("gemma2")]
    public void Fp16_weights_keep_the_top1_token(string caseName)
    {
        // fp16 rounds each weight by up to 2^-11 relative; on logits of magnitude up to ~28 that moves them by
        // ~1e-2 (3.6e-3 on gemma, 2.1e-2 on gemma2 when written), so the tolerance is models.json's fp16 one.
        const double fp16Atol = 0.05;
        string package = ConvertedPackages.Get(caseName, "--dtype", "fp16");
        var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(package, "recur.json"))).RootElement;
        Assert.Equal("fp16", manifest.GetProperty("dtype").GetString());
        var result = CliRunner.Run("validate", package, "--expected", ConvertedPackages.Expected(caseName), "--atol", "0.05", "--split", "11");
        Assert.True(result.Exit == 0, result.ToString());
        var fields = result.LastLine.Split(' ').ToDictionary(f => f.Split('=')[0], f => double.Parse(f.Split('=')[1], CultureInfo.InvariantCulture));
        Assert.InRange(fields["max_abs_diff"], 1e-4, fp16Atol); // above the fp32 level: the weights really are fp16
        Assert.InRange(fields["top1"], 0.95, 1);
    }

    [Theory]
    [InlineData("gemma", "gemma", 3)]
    [InlineData("gemma2", "gemma2", 4)]
    public void Package_carries_a_genai_config(string caseName, string type, int layers)
    {
        var root = JsonDocument.Parse(File.ReadAllText(Path.Combine(ConvertedPackages.Get(caseName), "genai_config.json"))).RootElement;
        var model = root.GetProperty("model");
        Assert.Equal(type, model.GetProperty("type").GetString());
        Assert.Equal(256, model.GetProperty("context_length").GetInt32());
        Assert.Equal(1, model.GetProperty("eos_token_id").GetInt32());
        var decoder = model.GetProperty("decoder");
        Assert.Equal("model.onnx", decoder.GetProperty("filename").GetString());
        Assert.Equal(24, decoder.GetProperty("head_size").GetInt32());
        Assert.Equal(4, decoder.GetProperty("num_attention_heads").GetInt32());
        Assert.Equal(2, decoder.GetProperty("num_key_value_heads").GetInt32());
        Assert.Equal(layers, decoder.GetProperty("num_hidden_layers").GetInt32());
        Assert.Equal("past_key_values.%d.key", decoder.GetProperty("inputs").GetProperty("past_key_names").GetString());
        Assert.Equal("present.%d.value", decoder.GetProperty("outputs").GetProperty("present_value_names").GetString());
        Assert.False(decoder.GetProperty("inputs").TryGetProperty("position_ids", out _)); // positions come from attention_mask
        Assert.False(root.GetProperty("search").GetProperty("past_present_share_buffer").GetBoolean());
    }

    [Fact]
    public void Null_final_soft_cap_switches_it_off()
    {
        // HF records max |logit| before the final soft cap as 52.895 (> cap 30): with the cap off we must see it.
        using var dir = TempCheckpoint.CopyOf("gemma2");
        dir.EditConfig(c => c["final_logit_softcapping"] = null);
        Assert.Equal(0, CliRunner.Run("convert", dir.Path, "-o", dir.Path + "-out", "--quiet").Exit);
        using var runner = GoldenChecks.OpenRunner(dir.Path + "-out");
        var (ids, _) = GoldenChecks.ReadIds("gemma2", "input_ids");
        using var state = runner.CreateState(1);
        var logits = runner.Forward(state, ids, ids.Length).Data;
        Assert.InRange(logits.Max(v => Math.Abs(v)), 52.895 - 1e-3, 52.895 + 1e-3);
    }

    [Fact]
    public void Kv_heads_not_dividing_heads_is_one_line_exit_2()
    {
        using var dir = TempCheckpoint.CopyOf("gemma2");
        dir.EditConfig(c => c["num_key_value_heads"] = 3);
        var result = CliRunner.Run("convert", dir.Path, "-o", dir.Path + "-out", "--quiet");
        Assert.Equal(2, result.Exit);
        Assert.Equal($"error: {Path.Combine(dir.Path, "config.json")}: field 'num_key_value_heads' is 3; expected a divisor of num_attention_heads (4)", result.Err.Trim());
        Assert.False(Directory.Exists(dir.Path + "-out"));
    }

    [Fact]
    public void Missing_config_field_is_one_line_exit_2()
    {
        using var dir = TempCheckpoint.CopyOf("gemma");
        dir.EditConfig(c => c.Remove("num_attention_heads"));
        var result = CliRunner.Run("convert", dir.Path, "-o", dir.Path + "-out", "--quiet");
        Assert.Equal(2, result.Exit);
        Assert.Equal($"error: {Path.Combine(dir.Path, "config.json")}: field 'num_attention_heads' is missing", result.Err.Trim());
    }

    [Fact]
    public void Checkpoint_missing_a_tensor_names_it_exit_2_and_writes_nothing()
    {
        using var dir = TempCheckpoint.CopyOf("gemma2");
        dir.DropTensor("model.layers.2.pre_feedforward_layernorm.weight");
        string line = dir.ConvertFailsWithOneLine();
        Assert.Contains("model.layers.2.pre_feedforward_layernorm.weight", line);
    }
}
