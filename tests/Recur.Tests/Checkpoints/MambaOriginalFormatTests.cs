using Recur.Tests.Support;
using static Recur.Tests.Checkpoints.TorchSaveFiles;

namespace Recur.Tests.Checkpoints;

/// <summary>
/// The state-spaces (mamba_ssm) layout of both Mamba generations: a config.json with d_model, n_layer, ssm_cfg and
/// an unpadded vocab_size, and pytorch_model.bin with backbone.embedding.weight and the tied lm_head.weight sharing
/// its storage, as MambaLMHeadModel's torch.save writes them. Made from the golden weights, it must give the golden logits.
/// </summary>
public sealed class MambaOriginalFormatTests
{
    // vocab_size below the golden's table, so the padding to pad_vocab_size_multiple is what makes them agree.
    private const string MambaConfig =
        """{"d_model": 64, "n_layer": 3, "vocab_size": 281, "ssm_cfg": {}, "rms_norm": true, "residual_in_fp32": true, "fused_add_norm": true, "pad_vocab_size_multiple": 8}""";

    // As Python's json writes dt_limit = (0.001, float("inf")): a bare Infinity.
    private const string Mamba2Config =
        """{"d_model": 64, "d_intermediate": 0, "n_layer": 3, "vocab_size": 270, "ssm_cfg": {"layer": "Mamba2", "d_state": 16, "d_conv": 4, "expand": 2, "headdim": 16, "ngroups": 2, "chunk_size": 8, "dt_limit": [0.001, Infinity]}, "attn_layer_idx": [], "attn_cfg": {}, "rms_norm": true, "residual_in_fp32": true, "fused_add_norm": true, "pad_vocab_size_multiple": 16, "tie_embeddings": true}""";

    [Theory]
    [InlineData("mamba", MambaConfig)]
    [InlineData("mamba2", Mamba2Config)]
    public void State_spaces_checkpoint_gives_the_golden_logits(string caseName, string config)
    {
        using var temp = new TempFolder();
        string folder = Write(temp, caseName, config);
        var result = CliRunner.Run("convert", folder, "-o", temp.File("out"), "--quiet");
        Assert.True(result.Exit == 0, result.ToString());
        GoldenChecks.Validate(temp.File("out"), caseName);
        GoldenChecks.Validate(temp.File("out"), caseName, split: 11);
    }

    [Theory]
    [InlineData("""{"d_model": 64, "n_layer": 3, "vocab_size": 281, "ssm_cfg": {"layer": "Mamba3"}}""", "field 'ssm_cfg.layer' is 'Mamba3'")]
    [InlineData("""{"d_model": 64, "n_layer": 3, "vocab_size": 281, "d_intermediate": 256, "ssm_cfg": {}}""", "field 'd_intermediate' is 256")]
    [InlineData("""{"d_model": 64, "n_layer": 3, "vocab_size": 281, "attn_layer_idx": [1], "ssm_cfg": {}}""", "field 'attn_layer_idx'")]
    [InlineData("""{"d_model": 64, "n_layer": 3, "vocab_size": 281, "rms_norm": false, "ssm_cfg": {}}""", "field 'rms_norm' is false")]
    [InlineData("""{"d_model": 64, "n_layer": 3, "ssm_cfg": {}}""", "field 'vocab_size' is missing")]
    [InlineData("""{"d_model": 64, "n_layer": 3, "vocab_size": 281, "ssm_cfg": {"d_state": "big"}}""", "field 'ssm_cfg.d_state' is \"big\"")]
    public void What_the_Hugging_Face_classes_cannot_express_is_one_line(string config, string expected)
    {
        using var temp = new TempFolder();
        string folder = Write(temp, "mamba", config);
        var result = CliRunner.Run("convert", folder, "-o", temp.File("out"), "--quiet");
        Assert.True(result.Exit == 2, result.ToString());
        Assert.Contains(expected, Assert.Single(result.Err.Trim().Split('\n')));
        Assert.False(Directory.Exists(temp.File("out")));
    }

    [Fact]
    public void Original_layout_with_a_Hugging_Face_config_still_converts()
    {
        // Mamba2Model's load hook: a checkpoint with "embedding." and a Hugging Face config.json reads the same.
        using var temp = new TempFolder();
        string folder = Write(temp, "mamba2", File.ReadAllText(Path.Combine(GoldenCases.Dir("mamba2"), "config.json")));
        var result = CliRunner.Run("convert", folder, "-o", temp.File("out"), "--quiet");
        Assert.True(result.Exit == 0, result.ToString());
        GoldenChecks.Validate(temp.File("out"), "mamba2");
    }

    /// <summary>The golden weights under mamba_ssm's names in pytorch_model.bin, beside the given config.json.</summary>
    private static string Write(TempFolder temp, string caseName, string config)
    {
        string folder = Directory.CreateDirectory(temp.File("ckpt")).FullName;
        var tensors = SafetensorsTestFiles.Read(Path.Combine(GoldenCases.Dir(caseName), "model.safetensors"))
            .Select(t => new Tensor(t.Name.Replace("backbone.embeddings.", "backbone.embedding."), StorageTypeOf(t.DType), t.Shape, t.Data))
            .ToList();
        var embedding = tensors.Single(t => t.Name == "backbone.embedding.weight");
        tensors.Add(embedding with { Name = "lm_head.weight" });   // the same storage: tied
        TorchSaveFiles.Write(Path.Combine(folder, "pytorch_model.bin"), tensors);
        File.WriteAllText(Path.Combine(folder, "config.json"), config);
        return folder;
    }
}
