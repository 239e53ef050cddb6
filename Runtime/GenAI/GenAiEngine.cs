using System.Diagnostics;
using Microsoft.ML.OnnxRuntimeGenAI;
using Recur.Runtime.Generation;
using Recur.Runtime.Packages;

namespace Recur.Runtime.GenAI;

/// <summary>
/// Generation through Microsoft's onnxruntime-genai, for packages that carry a genai_config.json (the state model
/// GenAI has: KV caches, or one conv and one recurrent tensor per layer). Same request and result as
/// <see cref="Generator"/>, so the CLI can offer either engine; the sampling options map to GenAI's search options.
/// </summary>
public static class GenAiEngine
{
    public const string ConfigFile = "genai_config.json";

    /// <summary>Whether GenAI can load this package: it needs the config that says how its state is named.</summary>
    public static bool CanRun(ModelPackage package) => File.Exists(Path.Combine(package.Directory, ConfigFile));

    /// <summary>Generates each row in turn (GenAI batches only rows of equal length), streaming tokens as chosen.</summary>
    public static GenerationResult Run(ModelPackage package, GenerationRequest request, Action<int, long>? onToken = null)
    {
        if (!CanRun(package))
            throw new NotSupportedException(
                $"{package.Directory}: onnxruntime-genai cannot run {package.ModelType} packages (no {ConfigFile}: its state model holds KV caches or one conv and one recurrent tensor per layer); use --engine recur");
        if (package.IsEncoderDecoder) throw new NotSupportedException($"{package.Directory}: --engine genai runs decoder-only packages");
        var eos = (request.EosTokenIds ?? package.Generation.EosTokenIds).ToHashSet();
        var produced = new List<long[]>();
        var prefill = TimeSpan.Zero;
        var decode = TimeSpan.Zero;
        int steps = 0;
        try
        {
            using var model = new Model(package.Directory);
            for (int row = 0; row < request.Prompts.Count; row++)
            {
                var prompt = request.Prompts[row];
                if (prompt.Length == 0) throw new ArgumentException("an empty prompt has nothing to continue from");
                using var search = new GeneratorParams(model);
                SetSearch(search, request.Sampling, prompt.Length + request.MaxNewTokens);
                using var generator = new Microsoft.ML.OnnxRuntimeGenAI.Generator(model, search);
                var tokens = new List<long>();
                var clock = Stopwatch.StartNew();
                generator.AppendTokens(prompt.Select(id => checked((int)id)).ToArray());
                bool first = true;
                while (tokens.Count < request.MaxNewTokens && !generator.IsDone())
                {
                    generator.GenerateNextToken();
                    long token = generator.GetNextTokens()[0];
                    if (first) { prefill += clock.Elapsed; clock.Restart(); first = false; } else steps++;
                    tokens.Add(token);
                    onToken?.Invoke(row, token);
                    if (eos.Contains(token) || request.ShouldStop?.Invoke(row) == true) break;
                }
                decode += clock.Elapsed;
                produced.Add([.. tokens]);
            }
        }
        catch (OnnxRuntimeGenAIException e)
        {
            throw new InvalidOperationException($"onnxruntime-genai: {e.Message.ReplaceLineEndings(" ").Trim()}", e);
        }
        return new GenerationResult(produced, request.Prompts.Sum(p => p.Length), prefill, decode, steps);
    }

    /// <summary>Recur's sampling options as GenAI's search options (greedy unless a temperature is set).</summary>
    private static void SetSearch(GeneratorParams search, SamplingOptions sampling, int maxLength)
    {
        search.SetSearchOption("max_length", maxLength);
        bool sample = sampling.Temperature > 0;
        search.SetSearchOption("do_sample", sample);
        if (sample)
        {
            search.SetSearchOption("temperature", sampling.Temperature);
            search.SetSearchOption("top_k", sampling.TopK > 0 ? sampling.TopK : 0);
            search.SetSearchOption("top_p", sampling.TopP);
            if (sampling.Seed is int seed) search.SetSearchOption("random_seed", seed);
        }
        search.SetSearchOption("repetition_penalty", sampling.RepetitionPenalty);
    }
}
