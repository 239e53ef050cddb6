using System.Diagnostics;
using Recur.Export.Checkpoints;
using Recur.Tests.Support;

namespace Recur.Tests.Cli;

public sealed class CliTests
{
    [Fact]
    public void Root_help_lists_every_verb()
    {
        var result = CliRunner.Run("--help");
        Assert.Equal(0, result.Exit);
        foreach (var verb in new[] { "convert", "logits", "validate", "inspect", "bench", "models" })
            Assert.Contains(verb, result.Out);
    }

    [Theory]
    [InlineData("convert", "--dtype")]
    [InlineData("validate", "--expected")]
    [InlineData("logits", "--split")]
    [InlineData("inspect", "--json")]
    [InlineData("bench", "--new-tokens")]
    [InlineData("models", "--json")]
    public void Each_verb_explains_itself(string verb, string option)
    {
        var result = CliRunner.Run(verb, "--help");
        Assert.Equal(0, result.Exit);
        Assert.Contains(option, result.Out);
        Assert.Contains("--help", result.Out);
    }

    [Fact]
    public void Unknown_option_is_a_usage_error()
    {
        var result = CliRunner.Run("convert", GoldenCases.Dir("rwkv"), "-o", "/tmp/x", "--dtype", "fp8");
        Assert.Equal(2, result.Exit);
        Assert.Contains("fp8", result.Err);
    }

    [Fact]
    public void Unsupported_model_type_is_one_line_with_a_suggestion()
    {
        using var dir = TempCheckpoint.CopyOf("rwkv");
        dir.EditConfig(c => c["model_type"] = "rwkv5");
        var result = CliRunner.Run("convert", dir.Path, "-o", dir.Path + "-out");
        Assert.Equal(2, result.Exit);
        var line = Assert.Single(result.Err.Trim().Split('\n'));
        Assert.Contains("model_type 'rwkv5' is not supported yet", line);
        Assert.Contains("did you mean 'rwkv'?", line);
        Assert.False(Directory.Exists(dir.Path + "-out"));
    }

    [Fact]
    public void Validate_outside_tolerance_exits_1_and_reports_the_figures()
    {
        string package = ConvertedPackages.Get("rwkv");
        var result = CliRunner.Run("validate", package, "--expected", ConvertedPackages.Expected("rwkv"), "--atol", "1e-12");
        Assert.Equal(1, result.Exit);
        Assert.Contains("FAIL", result.Out);
        Assert.StartsWith("max_abs_diff=", result.LastLine);
    }

    [Fact]
    public void Logits_writes_the_golden_names_with_values_matching_the_reference()
    {
        string package = ConvertedPackages.Get("rwkv");
        string output = Path.Combine(Path.GetTempPath(), $"recur-logits-{Guid.NewGuid():N}.safetensors");
        try
        {
            var result = CliRunner.Run("logits", package, "--input", ConvertedPackages.Expected("rwkv"), "--out", output, "--split", "5");
            Assert.True(result.Exit == 0, result.ToString());
            using var written = SafetensorsFile.Open(output);
            Assert.Equal(["logits", "logits_batch2"], written.Names.Order().ToArray());
            foreach (var name in written.Names)
                Assert.InRange(GoldenChecks.MaxAbsDiff(written.ReadFloat32(name), GoldenChecks.ReadFloats("rwkv", name)), 0, GoldenChecks.Fp32Atol);
        }
        finally
        {
            File.Delete(output);
        }
    }

    [Fact]
    public void Missing_expected_file_is_exit_2()
    {
        var result = CliRunner.Run("validate", ConvertedPackages.Get("rwkv"), "--expected", "/nonexistent/expected.safetensors");
        Assert.Equal(2, result.Exit);
        Assert.Contains("/nonexistent/expected.safetensors", result.Err);
    }

    [Fact]
    public void A_folder_that_is_not_a_package_is_exit_2()
    {
        var result = CliRunner.Run("inspect", GoldenCases.Dir("rwkv"));
        Assert.Equal(2, result.Exit);
        Assert.Contains("not a Recur package", result.Err);
    }

    [Fact]
    public void Convert_never_replaces_a_folder_that_is_not_a_package()
    {
        string target = Path.Combine(Path.GetTempPath(), $"recur-occupied-{Guid.NewGuid():N}");
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "notes.txt"), "keep me");
        try
        {
            var result = CliRunner.Run("convert", GoldenCases.Dir("rwkv"), "-o", target, "--quiet");
            Assert.Equal(2, result.Exit);
            Assert.Contains("--force", result.Err);
            Assert.Equal("keep me", File.ReadAllText(Path.Combine(target, "notes.txt")));
        }
        finally
        {
            Directory.Delete(target, recursive: true);
        }
    }

    [Fact]
    public void Converting_over_a_package_replaces_it_whole()
    {
        string target = Path.Combine(Path.GetTempPath(), $"recur-replace-{Guid.NewGuid():N}");
        try
        {
            Assert.Equal(0, CliRunner.Run("convert", GoldenCases.Dir("rwkv"), "-o", target, "--quiet").Exit);
            Assert.Equal(0, CliRunner.Run("convert", GoldenCases.Dir("rwkv"), "-o", target, "--quiet", "--force").Exit);
            Assert.True(File.Exists(Path.Combine(target, "recur.json")));
            Assert.Empty(Directory.GetDirectories(Path.GetDirectoryName(target)!, Path.GetFileName(target) + "*converting*"));
        }
        finally
        {
            if (Directory.Exists(target)) Directory.Delete(target, recursive: true);
        }
    }

    [Fact]
    public void A_missing_onnx_runtime_library_is_one_line_saying_how_to_get_it()
    {
        // A separate process: the library is process-wide once loaded.
        string cli = Path.Combine(AppContext.BaseDirectory, "recur.dll");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { cli, "validate", ConvertedPackages.Get("rwkv"), "--expected", ConvertedPackages.Expected("rwkv") }) start.ArgumentList.Add(a);
        start.Environment["RECUR_ORT_LIBRARY"] = "/nonexistent/libonnxruntime.so.1";
        using var process = Process.Start(start)!;
        string err = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.Equal(2, process.ExitCode);
        var line = Assert.Single(err.Trim().Split('\n'));
        Assert.Equal("error: $RECUR_ORT_LIBRARY /nonexistent/libonnxruntime.so.1: no such file", line);
    }
}

public sealed class CliInputErrorTests
{
    [Fact]
    public void A_token_id_outside_the_vocabulary_is_one_line_exit_2()
    {
        var result = CliRunner.Run("generate", ConvertedPackages.Get("rwkv"), "--ids", "1 2 99999");
        Assert.Equal(2, result.Exit);
        Assert.Equal("error: --ids: token id 99999 is outside the model's vocabulary (0..319)", result.Err.Trim());
        Assert.Equal("", result.Out);
    }

    [Fact]
    public void A_state_shape_in_recur_json_the_graph_cannot_take_is_one_line_exit_2()
    {
        string package = Path.Combine(Path.GetTempPath(), $"recur-shape-{Guid.NewGuid():N}");
        try
        {
            Assert.Equal(0, CliRunner.Run("convert", GoldenCases.Dir("mamba"), "-o", package, "--quiet").Exit);
            string manifest = Path.Combine(package, "recur.json");
            var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(manifest))!;
            json["state"]![0]!["shape"] = new System.Text.Json.Nodes.JsonArray("batch", 127, 3);
            File.WriteAllText(manifest, json.ToJsonString());
            var result = CliRunner.Run("generate", package, "--ids", "1 2");
            Assert.Equal(2, result.Exit);
            Assert.Equal($"error: {package}/recur.json: state 'past_key_values.0.conv_state' has shape [batch, 127, 3], but the graph's input is [?, 128, 3]", result.Err.Trim());
        }
        finally
        {
            if (Directory.Exists(package)) Directory.Delete(package, recursive: true);
        }
    }

    [Fact]
    public void Inspect_reads_the_contract_from_a_bare_model_file()
    {
        var result = CliRunner.Run("inspect", Path.Combine(ConvertedPackages.Get("mamba"), "model.onnx"));
        Assert.Equal(0, result.Exit);
        Assert.Contains("past_key_values.1.ssm_state -> present.1.ssm_state  float32 [batch, 128, 16]", result.Out);
        Assert.Contains("logits: Float32 [batch, logits_sequence, 288]", result.Out);
        Assert.Contains("logits_to_keep: Int64 [] (optional: has a default)", result.Out);
    }
}
