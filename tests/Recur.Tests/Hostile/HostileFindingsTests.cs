using System.Text;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Recur.Export.Checkpoints;
using Recur.Graphs.Onnx;
using Recur.Package.Files;
using Recur.Package.Tensors;
using Recur.Tests.Support;

namespace Recur.Tests.Hostile;

/// <summary>One test (or more) per finding of "Hostile input and faults", numbered as the issue numbers them.</summary>
public sealed class HostileFindingsTests
{
    // 1. Data loss -------------------------------------------------------------------------------------------

    [Fact]
    public void F1_a_non_empty_output_is_refused_without_force_even_with_a_recur_json()
    {
        string dir = Outcome.TempDir("nonempty");
        try
        {
            File.WriteAllText(Path.Combine(dir, "recur.json"), "{}");
            File.WriteAllText(Path.Combine(dir, "notes.txt"), "mine");
            string before = Outcome.Snapshot(dir);
            Outcome.Refused(CliRunner.Run("convert", GoldenCases.Dir("rwkv"), "-o", dir, "-q"), 2, dir, "not empty", "--force");
            Assert.Equal(before, Outcome.Snapshot(dir));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void F1_force_refuses_a_folder_that_is_not_a_package_and_lists_what_it_would_delete()
    {
        string dir = Outcome.TempDir("force-foreign");
        try
        {
            File.WriteAllText(Path.Combine(dir, "recur.json"), "{}");
            File.WriteAllText(Path.Combine(dir, "thesis.tex"), "years of work");
            string before = Outcome.Snapshot(dir);
            Outcome.Refused(CliRunner.Run("convert", GoldenCases.Dir("rwkv"), "-o", dir, "-q", "--force"), 2, "would delete", "recur.json", "thesis.tex");
            Assert.Equal(before, Outcome.Snapshot(dir));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void F1_force_refuses_a_package_holding_a_user_file_and_names_it_then_replaces_a_clean_package()
    {
        string parent = Outcome.TempDir("force-package");
        string dir = Path.Combine(parent, "pkg");
        try
        {
            Assert.Equal(0, CliRunner.Run("convert", GoldenCases.Dir("rwkv"), "-o", dir, "-q").Exit);
            File.WriteAllText(Path.Combine(dir, "notes.txt"), "mine");
            Directory.CreateDirectory(Path.Combine(dir, "chats"));
            string before = Outcome.Snapshot(dir);
            string line = Outcome.Refused(CliRunner.Run("convert", GoldenCases.Dir("rwkv"), "-o", dir, "-q", "--force"), 2, "would delete: chats, notes.txt");
            Assert.DoesNotContain("model.onnx", line);
            Assert.Equal(before, Outcome.Snapshot(dir));

            File.Delete(Path.Combine(dir, "notes.txt"));
            Directory.Delete(Path.Combine(dir, "chats"));
            Assert.Equal(0, CliRunner.Run("convert", GoldenCases.Dir("mamba"), "-o", dir, "-q", "--force").Exit);
            Assert.Contains("\"mamba\"", File.ReadAllText(Path.Combine(dir, "recur.json")));
            Assert.Equal(["pkg"], Directory.GetFileSystemEntries(parent).Select(Path.GetFileName));
        }
        finally { Directory.Delete(parent, true); }
    }

    [Theory]
    [InlineData("equal")]
    [InlineData("inside")]
    [InlineData("above")]
    public void F1_an_output_equal_to_inside_or_above_the_checkpoint_is_refused(string where)
    {
        string parent = Outcome.TempDir("overlap");
        string checkpoint = Path.Combine(parent, "ckpt");
        try
        {
            Directory.CreateDirectory(checkpoint);
            foreach (var f in Directory.GetFiles(GoldenCases.Dir("rwkv"))) File.Copy(f, Path.Combine(checkpoint, Path.GetFileName(f)));
            string output = where switch { "equal" => checkpoint, "inside" => Path.Combine(checkpoint, "out"), _ => parent };
            string before = Outcome.Snapshot(parent);
            Outcome.Refused(CliRunner.Run("convert", checkpoint, "-o", output, "-q", "--force"), 2, "checkpoint");
            Assert.Equal(before, Outcome.Snapshot(parent));
        }
        finally { Directory.Delete(parent, true); }
    }

    [Fact]
    public void F2_abandoned_converting_folders_of_dead_processes_are_removed_by_the_next_convert()
    {
        string parent = Outcome.TempDir("stale");
        try
        {
            // 999999999 is above Linux's pid_max, so no process has it; this process is alive.
            string dead = Path.Combine(parent, $".pkg.converting-999999999-{Guid.NewGuid():N}");
            string alive = Path.Combine(parent, $".other.converting-{Environment.ProcessId}-{Guid.NewGuid():N}");
            string lookalike = Path.Combine(parent, ".notes.converting-by-hand");
            // Killed between its two renames: the previous package of "kept" was moved aside and nothing took its place.
            string aside = Path.Combine(parent, $".kept.converting-999999999-{Guid.NewGuid():N}.old");
            // Killed after them: "done" holds the new package, the previous one is garbage.
            string replaced = Path.Combine(parent, $".done.converting-999999999-{Guid.NewGuid():N}.old");
            foreach (var d in new[] { dead, alive, lookalike, aside, replaced, Path.Combine(parent, "done") }) Directory.CreateDirectory(d);
            File.WriteAllText(Path.Combine(dead, "model.onnx"), "half");
            File.WriteAllText(Path.Combine(aside, "recur.json"), "the previous package");
            Assert.Equal(0, CliRunner.Run("convert", GoldenCases.Dir("rwkv"), "-o", Path.Combine(parent, "pkg"), "-q", "--no-verify").Exit);
            Assert.False(Directory.Exists(dead));
            Assert.False(Directory.Exists(replaced));
            Assert.True(Directory.Exists(alive));
            Assert.True(Directory.Exists(lookalike));
            Assert.Equal("the previous package", File.ReadAllText(Path.Combine(parent, "kept", "recur.json")));
        }
        finally { Directory.Delete(parent, true); }
    }

    [Fact]
    public void F1_a_symbolic_link_does_not_hide_that_the_output_holds_the_checkpoint()
    {
        string parent = Outcome.TempDir("link");
        try
        {
            string checkpoint = Path.Combine(parent, "ckpt");
            Directory.CreateDirectory(checkpoint);
            foreach (var f in Directory.GetFiles(GoldenCases.Dir("rwkv"))) File.Copy(f, Path.Combine(checkpoint, Path.GetFileName(f)));
            string link = Path.Combine(parent, "link");
            Directory.CreateSymbolicLink(link, checkpoint);
            string before = Outcome.Snapshot(checkpoint);
            Outcome.Refused(CliRunner.Run("convert", link, "-o", Path.Combine(checkpoint, "out"), "-q"), 2, "inside the checkpoint");
            Outcome.Refused(CliRunner.Run("convert", checkpoint, "-o", link, "-q", "--force"), 2, "checkpoint");
            Assert.Equal(before, Outcome.Snapshot(checkpoint));
        }
        finally { Directory.Delete(parent, true); }
    }

    // 2. Writes to special files -----------------------------------------------------------------------------

    [Fact]
    public void F1_a_package_is_replaced_by_one_swap_where_linux_allows_it()
    {
        string parent = Outcome.TempDir("swap");
        try
        {
            string a = Path.Combine(parent, "a"), b = Path.Combine(parent, "b");
            Directory.CreateDirectory(a);
            Directory.CreateDirectory(b);
            File.WriteAllText(Path.Combine(a, "from"), "a");
            File.WriteAllText(Path.Combine(b, "from"), "b");
            bool swapped = AtomicExchange.TrySwap(a, b);
            Assert.Equal(swapped ? "b" : "a", File.ReadAllText(Path.Combine(a, "from")));
            Assert.Equal(swapped ? "a" : "b", File.ReadAllText(Path.Combine(b, "from")));
            // glibc and Linux 3.15+ on tmpfs/ext4/btrfs/xfs: the one-step swap is expected here.
            if (OperatingSystem.IsLinux() && new DriveInfo(parent).DriveFormat is "tmpfs" or "ext4" or "btrfs" or "xfs") Assert.True(swapped);
        }
        finally { Directory.Delete(parent, true); }
    }

    [Fact]
    public void F1_a_root_folder_as_output_is_refused()
    {
        Outcome.Refused(CliRunner.Run("convert", GoldenCases.Dir("rwkv"), "-o", "/", "-q", "--force"), 2, "-o /");
    }

    [Fact]
    public void F2_save_state_refuses_a_device_and_leaves_it_a_device()
    {
        var result = CliRunner.Run("generate", ConvertedPackages.Get("rwkv"), "--ids", "1 2", "--max-new-tokens", "1", "--save-state", "/dev/null");
        Outcome.Refused(result, 2, "--save-state", "/dev/null", "not a regular file");
        Assert.Equal(InputFiles.Kind.Other, InputFiles.KindOf("/dev/null"));
    }

    [Fact]
    public void F2_save_state_to_a_folder_is_refused_and_leaves_no_temporary_file()
    {
        string dir = Outcome.TempDir("state-dir");
        try
        {
            string target = Path.Combine(dir, "state");
            Directory.CreateDirectory(target);
            Outcome.Refused(CliRunner.Run("generate", ConvertedPackages.Get("rwkv"), "--ids", "1 2", "--max-new-tokens", "1", "--save-state", target), 2, "is a folder");
            Assert.Equal([target], Directory.GetFileSystemEntries(dir));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void F2_a_failed_write_keeps_the_old_file_and_removes_its_temporary()
    {
        string dir = Outcome.TempDir("atomic");
        try
        {
            string target = Path.Combine(dir, "out.bin");
            File.WriteAllText(target, "old and whole");
            Assert.Throws<IOException>(() => AtomicFile.Write(target, "--out", stream =>
            {
                stream.Write(new byte[1000]);
                throw new IOException("No space left on device");
            }));
            Assert.Equal("old and whole", File.ReadAllText(target));
            Assert.Equal([target], Directory.GetFileSystemEntries(dir));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void F2_logits_out_into_a_missing_folder_is_one_line()
    {
        var result = CliRunner.Run("logits", ConvertedPackages.Get("rwkv"), "--input", ConvertedPackages.Expected("rwkv"), "--out", "/nonexistent/dir/logits.safetensors");
        Outcome.Refused(result, 2, "--out", "/nonexistent/dir");
    }

    // 3. Crashes ---------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("eos_token_id", "1.5")]
    [InlineData("bos_token_id", "1e30")]
    [InlineData("pad_token_id", "-3")]
    [InlineData("eos_token_id", "[0, \"x\"]")]
    public void F3_generation_ids_that_are_not_integers_name_the_file_and_key(string key, string value)
    {
        using var checkpoint = TempCheckpoint.CopyOf("rwkv");
        File.WriteAllText(Path.Combine(checkpoint.Path, "generation_config.json"), $"{{\"{key}\": {value}}}");
        string line = checkpoint.ConvertFailsWithOneLine();
        Assert.Contains("generation_config.json", line);
        Assert.Contains($"'{key}'", line);
        Assert.Contains("expected an integer", line);
    }

    [Fact]
    public void F3_a_config_number_too_large_for_a_double_is_refused_where_used_and_kept_as_text_where_not()
    {
        using var checkpoint = TempCheckpoint.CopyOf("rwkv");
        string file = Path.Combine(checkpoint.Path, "config.json");
        string original = File.ReadAllText(file);
        File.WriteAllText(file, original.Replace("\"layer_norm_epsilon\": 1e-05", "\"layer_norm_epsilon\": 1e400"));
        string line = checkpoint.ConvertFailsWithOneLine();
        Assert.Contains("'layer_norm_epsilon' is 1e400; expected a finite number", line);

        File.WriteAllText(file, original.Replace("\"use_cache\": true", "\"use_cache\": true, \"unused\": 1e400"));
        Assert.Equal(0, CliRunner.Run("convert", checkpoint.Path, "-o", checkpoint.Path + "-out", "-q", "--no-verify").Exit);
    }

    [Fact]
    public void F3_a_fractional_opset_in_recur_json_is_one_line_in_inspect()
    {
        string package = CopyPackage("rwkv");
        try
        {
            EditManifest(package, m => m["opset"] = 17.5);
            Outcome.Refused(CliRunner.Run("inspect", package), 2, "recur.json", "'opset'", "17.5", "expected an integer");
        }
        finally { Directory.Delete(package, true); }
    }

    [Fact]
    public void F3_non_json_package_metadata_in_an_onnx_file_is_one_line()
    {
        string dir = Outcome.TempDir("meta");
        try
        {
            var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(ConvertedPackages.Get("rwkv"), "model.onnx")));
            model.MetadataProps.Single(p => p.Key == "recur.package").Value = "{not json";
            string file = Path.Combine(dir, "model.onnx");
            File.WriteAllBytes(file, model.ToByteArray());
            Outcome.Refused(CliRunner.Run("inspect", file), 2, "model.onnx", "metadata 'recur.package'", "not valid JSON");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void F3_a_tokenizer_vocab_id_of_int_max_is_one_line_naming_the_file()
    {
        string dir = Outcome.TempDir("vocab-id");
        try
        {
            var tokenizer = JsonNode.Parse(File.ReadAllText(Gpt2Tokenizer))!.AsObject();
            tokenizer["model"]!["vocab"]!["hello"] = int.MaxValue;
            string file = Path.Combine(dir, "tokenizer.json");
            File.WriteAllText(file, tokenizer.ToJsonString());
            var result = CliRunner.Run("tokenize", file, "--text", "hello");
            Outcome.Refused(result, 2, file);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData("100000")]
    [InlineData("5000")]
    [InlineData("-1")]
    public void F3_threads_are_bounded_with_the_range_in_the_error(string threads)
    {
        var result = Outcome.Within(30, "generate", ConvertedPackages.Get("rwkv"), "--ids", "1", "--threads", threads);
        Outcome.Refused(result, 2, $"--threads {threads}", "0", RuntimeLimit());
    }

    private static string RuntimeLimit() => Recur.Cli.Common.RuntimeOptions.MaxThreads.ToString(System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void F3_a_one_megabyte_prompt_file_gets_past_argument_handling_to_tokenization()
    {
        // A package with a byte-level tokenizer whose ids exceed this tiny model's 320: the 1 MB prompt is read and
        // tokenized in full, then refused in one line for its ids, not for its size.
        using var checkpoint = TempCheckpoint.CopyOf("rwkv");
        File.Copy(Gpt2Tokenizer, Path.Combine(checkpoint.Path, "tokenizer.json"));
        string package = checkpoint.Path + "-out";
        Assert.Equal(0, CliRunner.Run("convert", checkpoint.Path, "-o", package, "-q", "--no-verify").Exit);
        string prompt = Path.Combine(checkpoint.Path, "prompt.txt");
        File.WriteAllText(prompt, string.Concat(Enumerable.Repeat("The quick brown fox jumps over the lazy dog. ", (1 << 20) / 45 + 1)));
        Assert.True(new FileInfo(prompt).Length >= 1 << 20);
        var result = Outcome.Within(120, "generate", package, "--prompt-file", prompt, "--max-new-tokens", "1");
        Outcome.Refused(result, 2, "--prompt", "outside the model's vocabulary");
    }

    [Fact]
    public void F3_a_one_megabyte_stop_file_is_read_as_it_is_and_generation_runs()
    {
        string dir = Outcome.TempDir("stopfile");
        try
        {
            string stop = Path.Combine(dir, "stop.txt");
            File.WriteAllText(stop, new string('\u00e9', 1 << 19)); // 1 MiB of UTF-8
            var result = Outcome.Within(60, "generate", ConvertedPackages.Get("rwkv"), "--ids", "1 2 3", "--max-new-tokens", "3", "--stop-file", stop);
            Assert.True(result.Exit == 0, result.ToString());
            Assert.StartsWith("ids: ", result.Out.Trim());
        }
        finally { Directory.Delete(dir, true); }
    }

    // 4. Hangs -----------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("model.safetensors")]
    [InlineData("config.json")]
    [InlineData("generation_config.json")]
    [InlineData("tokenizer.json")]
    public void F4_a_named_pipe_as_a_checkpoint_file_is_refused_at_once(string name)
    {
        using var checkpoint = TempCheckpoint.CopyOf("rwkv");
        string file = Path.Combine(checkpoint.Path, name);
        if (File.Exists(file)) File.Delete(file);
        Outcome.MakeFifo(file);
        var result = Outcome.Within(30, "convert", checkpoint.Path, "-o", checkpoint.Path + "-out", "-q");
        Outcome.Refused(result, 2, name, "not a regular file");
        Assert.False(Directory.Exists(checkpoint.Path + "-out"));
    }

    [Fact]
    public void F4_named_pipes_as_state_prompt_and_tokenizer_files_are_refused_at_once()
    {
        string dir = Outcome.TempDir("fifo");
        try
        {
            string fifo = Path.Combine(dir, "pipe");
            Outcome.MakeFifo(fifo);
            string package = ConvertedPackages.Get("rwkv");
            Outcome.Refused(Outcome.Within(30, "generate", package, "--ids", "1", "--load-state", fifo), 2, "--load-state", "not a regular file");
            Outcome.Refused(Outcome.Within(30, "generate", package, "--prompt-file", fifo), 2, "--prompt-file", "not a regular file");
            Outcome.Refused(Outcome.Within(30, "generate", package, "--ids", "1", "--stop-file", fifo), 2, "--stop-file", "not a regular file");
            Outcome.Refused(Outcome.Within(30, "tokenize", fifo, "--text", "hi"), 2, "not a regular file");
            Outcome.Refused(Outcome.Within(30, "generate", package, "--ids", "1", "--ort-library", fifo), 2, "--ort-library", "not a regular file");
            Outcome.Refused(Outcome.Within(30, "logits", package, "--input", fifo, "--out", Path.Combine(dir, "o")), 2, "input", "not a regular file");
            Outcome.Refused(Outcome.Within(30, "tokenize", Gpt2Tokenizer, "--file", fifo), 2, "--file", "not a regular file");
        }
        finally { Directory.Delete(dir, true); }
    }

    // 5. Memory exhaustion -----------------------------------------------------------------------------------

    [Fact]
    public void F5_a_pickle_bomb_stops_at_the_unpickler_budget()
    {
        using var checkpoint = TempCheckpoint.CopyOf("rwkv");
        File.Delete(Path.Combine(checkpoint.Path, "model.safetensors"));
        // 8 million DUPs deflate to a few kilobytes and would push 8 million references.
        var pickle = new byte[8_000_004];
        pickle[0] = 0x80; pickle[1] = 2; pickle[2] = 0x4E; // PROTO 2, NONE
        pickle.AsSpan(3, 8_000_000).Fill(0x32);             // DUP
        pickle[^1] = 0x2E;                                 // STOP
        Checkpoints.TorchSaveFiles.WriteZip(Path.Combine(checkpoint.Path, "pytorch_model.bin"), pickle, [], compression: System.IO.Compression.CompressionLevel.Optimal);
        Assert.True(new FileInfo(Path.Combine(checkpoint.Path, "pytorch_model.bin")).Length < 1 << 20);
        var result = Outcome.Within(60, "convert", checkpoint.Path, "-o", checkpoint.Path + "-out", "-q");
        Outcome.Refused(result, 2, "pytorch_model.bin", "memory budget");
    }

    [Theory]
    [InlineData("config.json")]
    [InlineData("model.safetensors")]
    public void F5_a_checkpoint_file_pointing_at_dev_zero_is_refused(string name)
    {
        using var checkpoint = TempCheckpoint.CopyOf("rwkv");
        string file = Path.Combine(checkpoint.Path, name);
        File.Delete(file);
        File.CreateSymbolicLink(file, "/dev/zero");
        Outcome.Refused(Outcome.Within(30, "convert", checkpoint.Path, "-o", checkpoint.Path + "-out", "-q"), 2, name, "not a regular file");
    }

    [Fact]
    public void F5_a_json_file_over_its_budget_is_refused_before_it_is_read()
    {
        using var checkpoint = TempCheckpoint.CopyOf("rwkv");
        using (var f = File.OpenWrite(Path.Combine(checkpoint.Path, "generation_config.json"))) f.SetLength(InputBudgets.JsonBytes + 1); // sparse
        Outcome.Refused(Outcome.Within(30, "convert", checkpoint.Path, "-o", checkpoint.Path + "-out", "-q"), 2, "generation_config.json", "budget");
    }

    [Fact]
    public void F5_tokenize_file_dev_zero_is_refused()
    {
        string tokenizer = Gpt2Tokenizer;
        Outcome.Refused(Outcome.Within(30, "tokenize", tokenizer, "--file", "/dev/zero"), 2, "--file /dev/zero", "not a regular file");
    }

    [Theory]
    [InlineData("--prompt-length", "2000000000")]
    [InlineData("--batch", "100000000")]
    [InlineData("--new-tokens", "0")]
    public void F5_bench_sizes_are_checked_before_anything_is_allocated(string option, string value)
    {
        Outcome.Refused(Outcome.Within(30, "bench", ConvertedPackages.Get("rwkv"), option, value), 2, $"{option} {value}", "expected 1 to");
    }

    [Fact]
    public void F5_a_state_whose_mask_claims_ten_million_rows_is_refused_naming_the_file()
    {
        string file = WriteState("huge-mask", tensors => Replace(tensors, "attention_mask", new SafetensorsWriter.Tensor("attention_mask", "I64", [10_000_000, 0], [])));
        try
        {
            Outcome.Refused(CliRunner.Run("generate", ConvertedPackages.Get("rwkv"), "--ids", "1", "--load-state", file), 2, file, "'attention_mask'", "batch 10000000");
        }
        finally { File.Delete(file); }
    }

    // 6. Wrong results with exit 0 ---------------------------------------------------------------------------

    [Theory]
    [InlineData("--temperature", "NaN")]
    [InlineData("--temperature", "Infinity")]
    [InlineData("--temperature", "-1")]
    [InlineData("--top-p", "NaN")]
    [InlineData("--top-p", "0")]
    [InlineData("--top-p", "1.5")]
    [InlineData("--repetition-penalty", "NaN")]
    [InlineData("--repetition-penalty", "0")]
    [InlineData("--top-k", "-2")]
    public void F6_sampling_options_are_range_checked(string option, string value)
    {
        Outcome.Refused(CliRunner.Run("generate", ConvertedPackages.Get("rwkv"), "--ids", "1", option, value), 2, option, "expected");
    }

    [Fact]
    public void F6_a_nan_weight_is_refused_by_name_unless_allowed()
    {
        using var checkpoint = TempCheckpoint.CopyOf("rwkv");
        string file = Path.Combine(checkpoint.Path, "model.safetensors");
        var tensors = ReadAll(file);
        var emb = tensors.Single(t => t.Name == "rwkv.embeddings.weight");
        BitConverter.GetBytes(float.NaN).CopyTo(emb.Data, 4 * 64 * 7); // row 7
        SafetensorsWriter.Write(file, tensors);
        string line = checkpoint.ConvertFailsWithOneLine();
        Assert.Contains("'rwkv.embeddings.weight'", line);
        Assert.Contains("NaN", line);
        Assert.Contains("--allow-nonfinite", line);
        Assert.Equal(0, CliRunner.Run("convert", checkpoint.Path, "-o", checkpoint.Path + "-out", "-q", "--allow-nonfinite").Exit);
    }

    [Fact]
    public void F6_a_state_full_of_nan_is_refused()
    {
        string file = WriteState("nan", tensors =>
        {
            var t = tensors.First(t => t.DType == "F32");
            MemoryMarshalFill(t.Data, float.NaN);
            return tensors;
        });
        try
        {
            Outcome.Refused(CliRunner.Run("generate", ConvertedPackages.Get("rwkv"), "--ids", "1", "--load-state", file), 2, file, "holds NaN at element 0", "always finite");
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public void F6_a_mask_batch_of_two_to_the_32_plus_one_does_not_wrap()
    {
        string file = WriteState("wrap", tensors => Replace(tensors, "attention_mask", new SafetensorsWriter.Tensor("attention_mask", "I64", [(1L << 32) + 1, 0], [])));
        try
        {
            Outcome.Refused(CliRunner.Run("generate", ConvertedPackages.Get("rwkv"), "--ids", "1", "--load-state", file), 2, file, "batch 4294967297");
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public void F6_a_state_tensor_of_the_wrong_shape_is_refused_naming_the_tensor_and_dimension()
    {
        string file = WriteState("shape", tensors =>
        {
            var t = tensors.First(t => t.DType == "F32");
            var shape = t.Shape.ToArray();
            shape[^1] += 1;
            return Replace(tensors, t.Name, t with { Shape = shape, Data = new byte[shape.Aggregate(4L, (a, d) => a * d)] });
        });
        try
        {
            Outcome.Refused(CliRunner.Run("generate", ConvertedPackages.Get("rwkv"), "--ids", "1", "--load-state", file), 2, file, "past_key_values.", "dimension");
        }
        finally { File.Delete(file); }
    }

    [Theory]
    [InlineData("gemma")]
    [InlineData("gemma2")]
    [InlineData("mamba")]
    [InlineData("recurrent_gemma")]
    [InlineData("rwkv")]
    [InlineData("switch")]
    public void F6_a_state_saved_by_generate_passes_the_contract_checks_and_resumes(string caseName)
    {
        // The checks refuse what is wrong, not what generate itself writes: a KV cache's past_sequence, a bounded
        // window, encoder outputs.
        string file = Path.Combine(Path.GetTempPath(), $"recur-hostile-roundtrip-{caseName}-{Guid.NewGuid():N}.safetensors");
        string[] encoder = caseName == "switch" ? ["--input-ids", "5 6 7"] : [];
        try
        {
            var saved = CliRunner.Run(["generate", ConvertedPackages.Get(caseName), "--ids", "1 2 3", "--max-new-tokens", "2", "--save-state", file, .. encoder]);
            Assert.True(saved.Exit == 0, saved.ToString());
            var resumed = CliRunner.Run(["generate", ConvertedPackages.Get(caseName), "--ids", "4", "--max-new-tokens", "2", "--load-state", file, .. encoder]);
            Assert.True(resumed.Exit == 0, resumed.ToString());
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public void F6_bench_profile_into_a_missing_folder_is_refused()
    {
        Outcome.Refused(CliRunner.Run("bench", ConvertedPackages.Get("rwkv"), "--profile", "/nonexistent/dir/p"), 2, "--profile", "/nonexistent/dir");
    }

    [Fact]
    public void F6_an_eos_list_in_config_json_without_generation_config_converts()
    {
        using var checkpoint = TempCheckpoint.CopyOf("rwkv");
        File.Delete(Path.Combine(checkpoint.Path, "generation_config.json"));
        checkpoint.EditConfig(c => c["eos_token_id"] = new JsonArray(0, 1));
        string output = checkpoint.Path + "-out";
        Assert.Equal(0, CliRunner.Run("convert", checkpoint.Path, "-o", output, "-q", "--no-verify").Exit);
        var eos = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "recur.json")))!["generation"]!["eos_token_ids"]!.AsArray();
        Assert.Equal([0L, 1L], eos.Select(e => e!.GetValue<long>()));
    }

    // 7. Errors that do not help -----------------------------------------------------------------------------

    [Fact]
    public void F7_a_recur_json_without_a_key_names_the_key()
    {
        string package = CopyPackage("rwkv");
        try
        {
            EditManifest(package, m => m.Remove("graphs"));
            Outcome.Refused(CliRunner.Run("generate", package, "--ids", "1"), 2, "recur.json", "'graphs' is missing");
            Outcome.Refused(CliRunner.Run("inspect", package), 2, "recur.json", "'graphs' is missing");
        }
        finally { Directory.Delete(package, true); }
    }

    [Fact]
    public void F7_a_null_graph_name_is_named_not_a_null_parameter()
    {
        string package = CopyPackage("rwkv");
        try
        {
            EditManifest(package, m => m["graphs"]!["decoder"] = null);
            Outcome.Refused(CliRunner.Run("generate", package, "--ids", "1"), 2, "recur.json", "'decoder' is null; expected a string");
        }
        finally { Directory.Delete(package, true); }
    }

    [Theory]
    [InlineData(1L, 0L)]
    [InlineData(0L, 3L)]
    [InlineData((1L << 32) + 1, 0L)]
    public void F7_an_input_file_with_an_empty_or_wrapping_shape_names_the_file_and_tensor(long batch, long length)
    {
        string file = Path.Combine(Path.GetTempPath(), $"recur-hostile-input-{Guid.NewGuid():N}.safetensors");
        try
        {
            SafetensorsWriter.Write(file, [new SafetensorsWriter.Tensor("input_ids", "I64", [batch, length], [])]);
            var result = CliRunner.Run("logits", ConvertedPackages.Get("rwkv"), "--input", file, "--out", file + ".out");
            string line = Outcome.Refused(result, 2, file, "'input_ids'", $"[{batch}, {length}]");
            Assert.DoesNotContain("Parameter", line);
            Assert.False(File.Exists(file + ".out"));
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public void F7_a_graph_path_out_of_the_package_is_refused()
    {
        string package = CopyPackage("rwkv");
        try
        {
            EditManifest(package, m => m["graphs"]!["decoder"] = "../../etc/passwd");
            Outcome.Refused(CliRunner.Run("inspect", package), 2, "not a plain file name");
        }
        finally { Directory.Delete(package, true); }
    }

    [Fact]
    public void F7_a_duplicate_config_key_is_named()
    {
        using var checkpoint = TempCheckpoint.CopyOf("rwkv");
        string file = Path.Combine(checkpoint.Path, "config.json");
        File.WriteAllText(file, File.ReadAllText(file).Replace("\"hidden_size\": 64,", "\"hidden_size\": 64, \"hidden_size\": 32,"));
        string line = checkpoint.ConvertFailsWithOneLine();
        Assert.Contains("config.json", line);
        Assert.Contains("hidden_size", line);
    }

    [Fact]
    public void F7_invalid_utf8_json_names_the_file_and_exits_2()
    {
        using var checkpoint = TempCheckpoint.CopyOf("rwkv");
        File.WriteAllBytes(Path.Combine(checkpoint.Path, "generation_config.json"), [(byte)'{', (byte)'"', 0xC3, 0x28, (byte)'"', (byte)':', (byte)'1', (byte)'}']);
        string line = checkpoint.ConvertFailsWithOneLine();
        Assert.Contains("generation_config.json", line);
        Assert.Contains("UTF-8", line);
    }

    [Fact]
    public void F7_invalid_utf8_inside_a_tokenizer_string_names_the_file_and_exits_2()
    {
        string dir = Outcome.TempDir("tok-utf8");
        try
        {
            byte[] json = File.ReadAllBytes(Gpt2Tokenizer);
            int at = json.AsSpan().IndexOf("\"hello\""u8);
            json[at + 4] = 0xC3; // "hel\xC3lo": a lead byte without its continuation
            string file = Path.Combine(dir, "tokenizer.json");
            File.WriteAllBytes(file, json);
            Outcome.Refused(CliRunner.Run("tokenize", file, "--text", "hi"), 2, file, "UTF-8");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void F7_an_unknown_dtype_is_one_line()
    {
        var result = CliRunner.Run("convert", GoldenCases.Dir("rwkv"), "-o", "/tmp/never", "--dtype", "fp8");
        Outcome.Refused(result, 2, "--dtype", "fp8", "fp32");
    }

    [Fact]
    public void F7_a_batch_mismatch_with_a_loaded_state_names_the_state_file()
    {
        string file = WriteState("batch", tensors => tensors);
        try
        {
            Outcome.Refused(CliRunner.Run("generate", ConvertedPackages.Get("rwkv"), "--ids", "1", "--ids", "2", "--load-state", file), 2, $"--load-state {file}", "batch 1", "2 prompt");
        }
        finally { File.Delete(file); }
    }

    // Helpers ------------------------------------------------------------------------------------------------

    /// <summary>GPT-2's tokenizer.json as tools/tokenizer-reference installs it (make test prepares it).</summary>
    internal static string Gpt2Tokenizer =>
        Path.Combine(GoldenCases.RepositoryRoot, "tools", "tokenizer-reference", "node_modules", "@lenml", "tokenizer-gpt2", "models", "tokenizer.json");

    internal static string CopyPackage(string caseName)
    {
        string source = ConvertedPackages.Get(caseName);
        string copy = Outcome.TempDir("pkg-" + caseName);
        foreach (var f in Directory.GetFiles(source)) File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));
        return copy;
    }

    internal static void EditManifest(string package, Action<JsonObject> edit)
    {
        string file = Path.Combine(package, "recur.json");
        var m = JsonNode.Parse(File.ReadAllText(file))!.AsObject();
        edit(m);
        File.WriteAllText(file, m.ToJsonString());
    }

    internal static List<SafetensorsWriter.Tensor> ReadAll(string file)
    {
        using var source = SafetensorsFile.Open(file);
        return source.Names.Select(n =>
        {
            source.TryGetEntry(n, out var e);
            var bytes = new byte[e.ElementCount * TensorDTypes.SizeOf(e.DType)];
            source.ReadRaw(n, bytes);
            string dtype = e.DType switch
            {
                TensorDType.Float32 => "F32",
                TensorDType.Int64 => "I64",
                TensorDType.Float16 => "F16",
                TensorDType.BFloat16 => "BF16",
                _ => "I32",
            };
            return new SafetensorsWriter.Tensor(n, dtype, e.Shape, bytes);
        }).ToList();
    }

    private static readonly Lazy<string> SavedState = new(() =>
    {
        string file = Path.Combine(Path.GetTempPath(), $"recur-hostile-state-{Guid.NewGuid():N}.safetensors");
        var result = CliRunner.Run("generate", ConvertedPackages.Get("rwkv"), "--ids", "1 2 3", "--max-new-tokens", "2", "--save-state", file);
        if (result.Exit != 0) throw new InvalidOperationException(result.ToString());
        return file;
    });

    /// <summary>A valid saved state of the rwkv package, edited.</summary>
    internal static string WriteState(string label, Func<List<SafetensorsWriter.Tensor>, List<SafetensorsWriter.Tensor>> edit)
    {
        var tensors = edit(ReadAll(SavedState.Value));
        string file = Path.Combine(Path.GetTempPath(), $"recur-hostile-{label}-{Guid.NewGuid():N}.safetensors");
        SafetensorsWriter.Write(file, tensors, new Dictionary<string, string> { ["format"] = "recur-state/1" });
        return file;
    }

    internal static string SavedStateFile => SavedState.Value;

    private static List<SafetensorsWriter.Tensor> Replace(List<SafetensorsWriter.Tensor> tensors, string name, SafetensorsWriter.Tensor with) =>
        tensors.Select(t => t.Name == name ? with : t).ToList();

    private static void MemoryMarshalFill(byte[] data, float value) =>
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(data.AsSpan()).Fill(value);
}
