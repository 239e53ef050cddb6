using System.Text.Json.Nodes;
using Recur.Export.Checkpoints;
using Recur.Package.Tensors;
using Recur.Tests.Support;

namespace Recur.Tests.Architectures;

/// <summary>
/// RWKV-7 against logits of BlinkDL's own reference (RWKV-v7/rwkv_v7_demo_rnn.py, one token at a time; see
/// tests/golden/rwkv7/README.md), from BlinkDL's .pth with and without a config.json and from fla's Hugging Face layout.
/// </summary>
public sealed class Rwkv7Tests
{
    private const string Case = "rwkv7";
    private const int Hidden = 64, Layers = 3, HeadSize = 64;
    private static string Package => ConvertedPackages.Get(Case);
    private static readonly Lazy<(string Dir, string Package, string Log)> WithoutConfig = new(ConvertWithoutConfig);
    private static readonly Lazy<(string Dir, string Package)> FlaLayout = new(ConvertFlaLayout);

    [Theory]
    [InlineData(null)]
    [InlineData(1)]
    [InlineData(11)]
    [InlineData(27)]
    public void Matches_golden_logits_whole_batch2_and_split(int? split) =>
        GoldenChecks.Validate(Package, Case, split);

    [Fact]
    public void Every_split_point_equals_the_whole_sequence()
    {
        using var runner = GoldenChecks.OpenRunner(Package);
        var (ids, _) = GoldenChecks.ReadIds(Case, "input_ids");
        using var wholeState = runner.CreateState(1);
        var whole = runner.Forward(wholeState, ids, ids.Length).Data.ToArray();
        int vocab = whole.Length / ids.Length;
        for (int split = 1; split < ids.Length; split++)
        {
            using var state = runner.CreateState(1);
            var first = runner.Forward(state, ids.AsSpan(0, split), split).Data.ToArray();
            var second = runner.Forward(state, ids.AsSpan(split), ids.Length - split).Data.ToArray();
            Assert.InRange(GoldenChecks.MaxAbsDiff([.. first, .. second], whole), 0, GoldenChecks.Fp32Atol);
            Assert.InRange(GoldenChecks.MaxAbsDiff(state["past_key_values.2.wkv_state"].AsSpan<float>(), wholeState["past_key_values.2.wkv_state"].AsSpan<float>()), 0, GoldenChecks.Fp32Atol);
        }
        Assert.Equal(260, vocab);
    }

    [Theory]
    [InlineData(null)]
    [InlineData(11)]
    public void A_pth_without_config_converts_from_its_shapes_to_the_same_logits(int? split) =>
        GoldenChecks.Validate(WithoutConfig.Value.Package, Case, split);

    [Fact]
    public void Convert_says_in_one_line_what_it_inferred_and_the_package_carries_that_config()
    {
        var lines = WithoutConfig.Value.Log.Split('\n').Where(l => l.Contains("inferred", StringComparison.Ordinal)).ToList();
        Assert.Equal("no config.json: inferred from the tensor shapes: rwkv7, 3 layers, hidden 64, 1 heads of 64, vocab 260, ffn 256, LoRA ranks w 16 a 16 v 8 g 16",
            Assert.Single(lines).Trim());
        // The inferred sizes are the golden's own config.json (written by the case's author from the same shapes).
        var inferred = JsonNode.Parse(File.ReadAllText(Path.Combine(WithoutConfig.Value.Package, "config.json")))!.AsObject();
        var golden = JsonNode.Parse(File.ReadAllText(Path.Combine(GoldenCases.Dir(Case), "config.json")))!.AsObject();
        foreach (var key in new[] { "vocab_size", "hidden_size", "num_hidden_layers", "num_heads", "intermediate_size",
                     "decay_low_rank_dim", "a_low_rank_dim", "v_low_rank_dim", "gate_low_rank_dim", "group_norm_epsilon" })
            Assert.Equal(golden[key]!.GetValue<double>(), inferred[key]!.GetValue<double>());
        Assert.Equal(golden["head_size"]!.GetValue<int>(), inferred["head_dim"]!.GetValue<int>());
        Assert.Equal(golden["layer_norm_epsilon"]!.GetValue<double>(), inferred["norm_eps"]!.GetValue<double>());
    }

    [Fact]
    public void Hugging_Face_layout_gives_the_same_logits_as_the_pth()
    {
        GoldenChecks.Validate(FlaLayout.Value.Package, Case);
        GoldenChecks.Validate(FlaLayout.Value.Package, Case, 11);
        using var a = GoldenChecks.OpenRunner(Package);
        using var b = GoldenChecks.OpenRunner(FlaLayout.Value.Package);
        var (ids, shape) = GoldenChecks.ReadIds(Case, "input_ids_batch2");
        using var sa = a.CreateState(2);
        using var sb = b.CreateState(2);
        // The same weights in the same graph: identical logits.
        Assert.Equal(0, GoldenChecks.MaxAbsDiff(a.Forward(sa, ids, (int)shape[1]).Data, b.Forward(sb, ids, (int)shape[1]).Data));
    }

    [Fact]
    public void Fla_layout_with_the_six_time_mix_vectors_stacked_as_x_x_gives_the_same_logits()
    {
        using var dir = FlaCopy();
        WriteFla(dir.Path, stackMixes: true);
        string package = dir.Path + "-pkg";
        var result = CliRunner.Run("convert", dir.Path, "-o", package, "--quiet");
        Assert.True(result.Exit == 0, result.ToString());
        try { GoldenChecks.Validate(package, Case); }
        finally { Directory.Delete(package, recursive: true); }
    }

    [Fact]
    public void One_token_at_a_time_equals_the_golden_logits_and_final_state()
    {
        using var runner = GoldenChecks.OpenRunner(Package);
        var (ids, _) = GoldenChecks.ReadIds(Case, "input_ids");
        using var state = runner.CreateState(1);
        var stepwise = GoldenChecks.Stepwise(runner, state, ids);
        Assert.InRange(GoldenChecks.MaxAbsDiff(stepwise, GoldenChecks.ReadFloats(Case, "logits")), 0, GoldenChecks.Fp32Atol);

        // The reference's state per layer: att x_prev [C], wkv [H, N, N] as [value, key], ffn x_prev [C], stacked over layers.
        var att = GoldenChecks.ReadFloats(Case, "state_att_shift");
        var wkv = GoldenChecks.ReadFloats(Case, "state_wkv");
        var ffn = GoldenChecks.ReadFloats(Case, "state_ffn_shift");
        int matrix = Hidden / HeadSize * HeadSize * HeadSize;
        for (int layer = 0; layer < Layers; layer++)
        {
            AssertState(state[$"past_key_values.{layer}.attn_shift"].AsSpan<float>(), att.AsSpan(layer * Hidden, Hidden));
            AssertState(state[$"past_key_values.{layer}.wkv_state"].AsSpan<float>(), wkv.AsSpan(layer * matrix, matrix));
            AssertState(state[$"past_key_values.{layer}.ffn_shift"].AsSpan<float>(), ffn.AsSpan(layer * Hidden, Hidden));
        }
    }

    /// <summary>expected.json: state within 1e-4 relative to the largest magnitude.</summary>
    private static void AssertState(ReadOnlySpan<float> ours, ReadOnlySpan<float> expected)
    {
        double scale = 0;
        foreach (var v in expected) scale = Math.Max(scale, Math.Abs(v));
        Assert.InRange(GoldenChecks.MaxAbsDiff(ours, expected), 0, 1e-4 * Math.Max(scale, 1));
    }

    [Fact]
    public void Inspect_lists_the_three_state_tensors_of_every_layer()
    {
        var result = CliRunner.Run("inspect", Package);
        Assert.Equal(0, result.Exit);
        Assert.Contains("state: 9 tensors", result.Out);
        Assert.Contains("past_key_values.2.wkv_state -> present.2.wkv_state  float32 [batch, 1, 64, 64]", result.Out);
        Assert.Contains("past_key_values.0.attn_shift -> present.0.attn_shift  float32 [batch, 64]", result.Out);
        Assert.Contains("past_key_values.1.ffn_shift -> present.1.ffn_shift  float32 [batch, 64]", result.Out);
    }

    [Fact]
    public void Checkpoint_missing_a_tensor_names_it_in_fla_and_original_naming()
    {
        using var dir = FlaCopy();
        WriteFla(dir.Path, except: "model.layers.1.attn.k_k");
        string line = dir.ConvertFailsWithOneLine();
        Assert.Contains("model.layers.1.attn.k_k", line);
    }

    [Fact]
    public void Config_with_fewer_layers_than_the_checkpoint_is_refused_naming_the_unused_tensors()
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.EditConfig(c => c["num_hidden_layers"] = 2);
        string line = dir.ConvertFailsWithOneLine();
        Assert.Contains("not used by the graph", line);
        Assert.Contains("model.layers.2.", line);
    }

    [Fact]
    public void Hybrid_config_is_refused_in_one_line()
    {
        using var dir = TempCheckpoint.CopyOf(Case);
        dir.EditConfig(c => c["attn"] = new JsonObject { ["layers"] = new JsonArray(1), ["num_heads"] = 1 });
        Assert.Contains("field 'attn'", dir.ConvertFailsWithOneLine());
    }

    [Fact]
    public void A_pth_without_config_that_lacks_a_tensor_the_inference_needs_names_it()
    {
        using var dir = PthOnly(t => t.Name != "blocks.0.att.a1");
        string line = dir.ConvertFailsWithOneLine();
        Assert.Contains("tensor 'blocks.0.att.a1' is missing; an RWKV-7 checkpoint without config.json needs it to infer the config", line);
    }

    [Fact]
    public void A_pth_with_block_0s_unused_value_lora_converts_to_the_same_logits()
    {
        // BlinkDL's trainer creates v0, v1, v2 in block 0 too; the forward never reads them.
        using var dir = PthOnly(_ => true, extra: [("blocks.0.att.v0", [1, 1, Hidden]), ("blocks.0.att.v1", [Hidden, 8]), ("blocks.0.att.v2", [8, Hidden])]);
        File.Copy(Path.Combine(GoldenCases.Dir(Case), "expected.safetensors"), Path.Combine(dir.Path, "expected.safetensors"));
        var result = CliRunner.Run("convert", dir.Path, "-o", dir.Path + "-out", "--quiet");
        Assert.True(result.Exit == 0, result.ToString());
        GoldenChecks.Validate(dir.Path + "-out", Case);
    }

    /// <summary>A folder with only a model.pth: the golden's tensors that pass <paramref name="keep"/>, plus random extra ones.</summary>
    private static TempCheckpoint PthOnly(Func<Checkpoints.TorchSaveFiles.Tensor, bool> keep, (string Name, long[] Shape)[]? extra = null)
    {
        var dir = FlaCopy();
        File.Delete(Path.Combine(dir.Path, "config.json"));
        File.Delete(Path.Combine(dir.Path, "expected.safetensors"));
        static byte[] Bytes(float[] v) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(v.AsSpan()).ToArray();
        using var pth = PyTorchFile.Open(Path.Combine(GoldenCases.Dir(Case), "model.pth"));
        var tensors = pth.Names.Select(n =>
        {
            pth.TryGetEntry(n, out var e);
            return new Checkpoints.TorchSaveFiles.Tensor(n, "FloatStorage", e.Shape, Bytes(pth.ReadFloat32(n)));
        }).Where(keep).ToList();
        var random = new Random(7);
        foreach (var (name, shape) in extra ?? [])
            tensors.Add(new(name, "FloatStorage", shape, Bytes(Numerics.Uniform(random, (int)shape.Aggregate(1L, (a, d) => a * d)))));
        Checkpoints.TorchSaveFiles.Write(Path.Combine(dir.Path, "model.pth"), tensors);
        return dir;
    }

    private static (string Dir, string Package, string Log) ConvertWithoutConfig()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"recur-rwkv7-noconfig-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(GoldenCases.Dir(Case), "model.pth"), Path.Combine(dir, "model.pth"));
        string package = dir + "-out";
        var result = CliRunner.Run("convert", dir, "-o", package, "--no-verify");
        Assert.True(result.Exit == 0, result.ToString());
        return (dir, package, result.Err);
    }

    private static (string Dir, string Package) ConvertFlaLayout()
    {
        var dir = FlaCopy();
        WriteFla(dir.Path);
        string package = dir.Path + "-pkg";
        var result = CliRunner.Run("convert", dir.Path, "-o", package, "--quiet");
        Assert.True(result.Exit == 0, result.ToString());
        return (dir.Path, package);
    }

    /// <summary>A folder with fla's config.json (as RWKV7Config.save_pretrained writes it for this model), weights added by <see cref="WriteFla"/>.</summary>
    private static TempCheckpoint FlaCopy()
    {
        var dir = TempCheckpoint.CopyOf(Case);
        File.Delete(Path.Combine(dir.Path, "model.pth"));
        File.WriteAllText(Path.Combine(dir.Path, "config.json"), """
            {"architectures": ["RWKV7ForCausalLM"], "model_type": "rwkv7", "attn": null, "attn_mode": "chunk",
             "a_low_rank_dim": 16, "decay_low_rank_dim": 16, "gate_low_rank_dim": 16, "v_low_rank_dim": 8,
             "head_dim": 64, "num_heads": 1, "hidden_act": "sqrelu", "hidden_ratio": 4.0, "hidden_size": 64,
             "intermediate_size": 256, "norm_bias": true, "norm_eps": 1e-05, "norm_first": true, "num_hidden_layers": 3,
             "value_dim": [64, 64, 64], "vocab_size": 260, "tie_word_embeddings": false, "fuse_norm": true,
             "bos_token_id": 0, "eos_token_id": 0, "torch_dtype": "float32"}
            """);
        return dir;
    }

    /// <summary>
    /// The golden's BlinkDL tensors renamed as fla's utils/convert_from_rwkv7.py does, spelled out here apart from the
    /// converter's own mapping: LoRA matrices transposed, [1, 1, C] vectors flattened except the attention's six x_*.
    /// </summary>
    /// <param name="stackMixes">Store the attention's six x_* as one x_x [6, C], as fla did from January to April 2025.</param>
    private static void WriteFla(string dir, string? except = null, bool stackMixes = false)
    {
        var proj = new Dictionary<string, string> { ["receptance"] = "r_proj", ["key"] = "k_proj", ["value"] = "v_proj", ["output"] = "o_proj", ["ln_x"] = "g_norm" };
        var part = new Dictionary<string, string> { ["att"] = "attn", ["ffn"] = "ffn", ["ln0"] = "pre_norm", ["ln1"] = "attn_norm", ["ln2"] = "ffn_norm" };
        var top = new Dictionary<string, string> { ["emb.weight"] = "model.embeddings.weight", ["ln_out.weight"] = "model.norm.weight", ["ln_out.bias"] = "model.norm.bias", ["head.weight"] = "lm_head.weight" };
        var tensors = new List<SafetensorsWriter.Tensor>();
        using var pth = PyTorchFile.Open(Path.Combine(GoldenCases.Dir(Case), "model.pth"));
        foreach (var name in pth.Names)
        {
            pth.TryGetEntry(name, out var entry);
            var data = pth.ReadFloat32(name);
            long[] shape = entry.Shape;
            string fla;
            if (top.TryGetValue(name, out var t)) fla = t;
            else
            {
                var p = name.Split('.');
                p[0] = "model.layers";
                p[2] = part[p[2]];
                if (p[2] == "attn" && p[3].Length == 2 && "wvag".Contains(p[3][0]) && "012".Contains(p[3][1]))
                {
                    p[3] = $"{p[3][0]}_lora.lora." + p[3][1] switch { '0' => "2.bias", '1' => "0.weight", _ => "2.weight" };
                    if (shape.Length == 2)
                    {
                        var transposed = new float[data.Length];
                        for (int r = 0; r < shape[0]; r++)
                            for (int c = 0; c < shape[1]; c++) transposed[c * shape[0] + r] = data[r * shape[1] + c];
                        (data, shape) = (transposed, [shape[1], shape[0]]);
                    }
                }
                else if (p[2] == "attn" && proj.TryGetValue(p[3], out var renamed)) p[3] = renamed;
                fla = string.Join('.', p);
            }
            if (shape is [1, 1, _] && !fla.Contains(".attn.x_", StringComparison.Ordinal)) shape = [shape[2]];
            if (fla != except) tensors.Add(SafetensorsWriter.Tensor.Float32(fla, shape, data));
        }
        if (stackMixes)
            foreach (var layer in tensors.Where(t => t.Name.EndsWith(".attn.x_r", StringComparison.Ordinal)).Select(t => t.Name[..^".x_r".Length]).ToList())
            {
                var rows = "rwkvag".Select(m => tensors.Single(t => t.Name == $"{layer}.x_{m}")).ToList();
                tensors.RemoveAll(rows.Contains);
                long c = rows[0].Shape[^1];
                tensors.Add(new SafetensorsWriter.Tensor($"{layer}.x_x", "F32", [6, c], rows.SelectMany(r => r.Data).ToArray()));
            }
        SafetensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors);
    }
}
