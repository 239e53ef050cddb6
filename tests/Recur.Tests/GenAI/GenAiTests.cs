using Microsoft.ML.OnnxRuntimeGenAI;
using Recur.Runtime.Execution;
using Recur.Runtime.GenAI;
using Recur.Runtime.Generation;
using Recur.Package;
using Recur.Tests.Support;

namespace Recur.Tests.GenAI;

/// <summary>
/// Packages with a genai_config.json run unchanged in Microsoft's onnxruntime-genai (0.18): its logits equal the
/// Hugging Face goldens and its greedy ids equal Recur's own decode loop.
/// </summary>
public sealed class GenAiTests
{
    /// <summary>The golden cases whose state fits GenAI: KV caches (gemma, gemma2), one conv + one recurrent tensor per layer, or both by layer (jamba).</summary>
    public static TheoryData<string> Cases => new(GoldenCases.All.Where(c => File.Exists(Path.Combine(ConvertedPackages.Get(c), GenAiEngine.ConfigFile))));

    [Fact]
    public void The_cases_that_fit_genai_carry_its_config_and_the_others_do_not()
    {
        var carrying = GoldenCases.All.Where(c => File.Exists(Path.Combine(ConvertedPackages.Get(c), GenAiEngine.ConfigFile))).ToHashSet();
        foreach (var expected in new[] { "gemma", "gemma2", "gemma_bf16", "mamba", "mamba2", "falcon_mamba", "jamba" }) Assert.Contains(expected, carrying);
        // RWKV-4 has five state tensors per layer, RecurrentGemma a conv, an RG-LRU state and a window, Switch an encoder.
        foreach (var other in new[] { "rwkv", "recurrent_gemma", "switch" }) Assert.DoesNotContain(other, carrying);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void One_token_per_step_gives_the_golden_logits(string caseName)
    {
        using var run = GenAiRun.Open(caseName);
        var (ids, golden, vocab, generator) = (run.Ids, run.Golden, run.Vocab, run.Generator);
        double worst = 0;
        for (int t = 0; t < ids.Length; t++)
        {
            generator.AppendTokens([(int)ids[t]]);
            using var logits = generator.GetOutput(Contract.Logits);
            var data = logits.GetData<float>();
            worst = Math.Max(worst, GoldenChecks.MaxAbsDiff(data[^vocab..], golden.AsSpan(t * vocab, vocab)));
        }
        Assert.InRange(worst, 0, GoldenChecks.Fp32Atol);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_whole_prompt_gives_the_golden_last_position(string caseName)
    {
        using var run = GenAiRun.Open(caseName);
        var (ids, golden, vocab, generator) = (run.Ids, run.Golden, run.Vocab, run.Generator);
        generator.AppendTokens(ids.Select(i => (int)i).ToArray());
        using var logits = generator.GetOutput(Contract.Logits);
        Assert.InRange(GoldenChecks.MaxAbsDiff(logits.GetData<float>()[^vocab..], golden.AsSpan(golden.Length - vocab)), 0, GoldenChecks.Fp32Atol);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Greedy_ids_equal_the_recur_engine(string caseName)
    {
        var (ids, _) = GoldenChecks.ReadIds(caseName, "input_ids");
        var request = new GenerationRequest { Prompts = [ids[..12]], MaxNewTokens = 16, EosTokenIds = [] };
        using var runner = GoldenChecks.OpenRunner(ConvertedPackages.Get(caseName));
        var ours = Recur.Runtime.Generation.Generator.Run(runner, request).NewTokens[0];
        var theirs = GenAiEngine.Run(runner.Package, request).NewTokens[0];
        Assert.Equal(16, ours.Length);
        Assert.Equal(ours, theirs);
    }

    [Fact]
    public void The_cli_engine_streams_the_same_ids_and_refuses_packages_genai_cannot_run()
    {
        var recur = CliRunner.Run("generate", ConvertedPackages.Get("mamba"), "--ids", "1 2 3 4", "--max-new-tokens", "8", "--ignore-eos");
        var genai = CliRunner.Run("generate", ConvertedPackages.Get("mamba"), "--ids", "1 2 3 4", "--max-new-tokens", "8", "--ignore-eos", "--engine", "genai");
        Assert.True(genai.Exit == 0, genai.ToString());
        Assert.Equal(recur.Out, genai.Out);
        Assert.Contains("(onnxruntime-genai)", genai.Err);

        var refused = CliRunner.Run("generate", ConvertedPackages.Get("rwkv"), "--ids", "1 2 3", "--engine", "genai");
        Assert.Equal(2, refused.Exit);
        Assert.Equal("error: --engine genai: onnxruntime-genai cannot run this rwkv package (its state does not fit GenAI's model: KV caches, or one conv and one recurrent tensor per layer); use --engine recur", refused.Err.Trim());
    }

    /// <summary>A golden case's package opened in GenAI with room for its whole input, and the golden logits.</summary>
    private sealed class GenAiRun : IDisposable
    {
        private readonly Model model;
        private readonly GeneratorParams search;

        private GenAiRun(string caseName)
        {
            (Ids, _) = GoldenChecks.ReadIds(caseName, "input_ids");
            Golden = GoldenChecks.ReadFloats(caseName, "logits");
            Vocab = Golden.Length / Ids.Length;
            model = new Model(ConvertedPackages.Get(caseName));
            search = new GeneratorParams(model);
            search.SetSearchOption("max_length", Ids.Length + 1);
            Generator = new Microsoft.ML.OnnxRuntimeGenAI.Generator(model, search);
        }

        public static GenAiRun Open(string caseName) => new(caseName);

        public long[] Ids { get; }
        public float[] Golden { get; }
        public int Vocab { get; }
        public Microsoft.ML.OnnxRuntimeGenAI.Generator Generator { get; }

        public void Dispose()
        {
            Generator.Dispose();
            search.Dispose();
            model.Dispose();
        }
    }
}
