using System.Globalization;
using System.Text;
using System.Text.Json;
using Recur.Cli.Common;
using Recur.Package.Files;
using Recur.Export.Checkpoints;
using Recur.Runtime.Execution;
using Recur.Runtime.GenAI;
using Recur.Runtime.Generation;
using Recur.Runtime.Packages;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Recur.Runtime.Ort;
using Recur.Package.Tensors;
using Recur.Runtime.Tokenizers;

namespace Recur.Cli.Commands.Generate;

internal static class GenerateExecution
{
    public static int Run(GenerateRequest request, SessionConfig config, CliContext context)
    {
        if (request.Prompts.Length > 0 && request.Ids.Length > 0) throw new UsageException("give --prompt or --ids, not both");
        if (request.MaxNewTokens is < 1 or > InputBudgets.SequenceTokens)
            throw new UsageException($"--max-new-tokens {request.MaxNewTokens}: expected 1 to {InputBudgets.SequenceTokens:N0}");
        request.Sampling.Validate();
        // Refused before any work, not after the last token.
        if (request.SaveState is not null) AtomicFile.RequireWritableTarget(Path.GetFullPath(request.SaveState), "--save-state");
        if (request.Stops.Any(stop => stop.Length == 0)) throw new UsageException("--stop / --stop-file: an empty stop string would stop before the first token");
        bool genai = request.Engine switch
        {
            "recur" => false,
            "genai" => true,
            _ => throw new UsageException($"--engine {request.Engine}: expected recur or genai"),
        };
        // GenAI opens the model itself: Recur's own session is made only for its own engine.
        using var runner = genai ? null : ModelRunner.Open(request.Package, config);
        var package = runner?.Package ?? ModelPackage.Open(request.Package);
        if (runner is not null) RuntimeOptions.ReportWarnings(runner.Warnings, context);
        if (genai) CheckGenAi(package, request);
        var tokenizer = LoadTokenizer(package, needed: request.Prompts.Length > 0 || request.EncoderText is not null);

        var prompts = request.Prompts.Length > 0
            ? request.Prompts.Select(p => tokenizer!.Encode(p).Select(i => (long)i).ToArray()).ToList()
            : request.Ids.Select(s => ParseIds(s, "--ids")).ToList();
        IReadOnlyList<long[]>? encoderInputs = null;
        if (package.IsEncoderDecoder)
        {
            long[] enc = request.EncoderIds is not null ? ParseIds(request.EncoderIds, "--input-ids")
                : request.EncoderText is not null ? tokenizer!.Encode(request.EncoderText).Select(i => (long)i).ToArray()
                : throw new UsageException("an encoder-decoder package needs --input TEXT or --input-ids \"...\" for the encoder");
            long start = package.Generation.DecoderStartTokenId ?? package.Generation.PadTokenId ?? 0;
            if (prompts.Count == 0) prompts.Add([start]);
            encoderInputs = prompts.Select(_ => enc).ToList();
        }
        if (prompts.Count == 0 && request.LoadState is null) throw new UsageException("give a prompt: --prompt TEXT or --ids \"1 2 3\"");
        CheckPrompts(prompts, runner?.VocabSize ?? 0, request.Prompts.Length > 0 ? "--prompt" : "--ids");

        using ModelState? resumed = request.LoadState is null ? null : StateSnapshot.Load(runner!, request.LoadState, "--load-state");
        if (resumed is not null && prompts.Count > 0 && resumed.Batch != prompts.Count)
            throw new UsageException($"--load-state {request.LoadState}: holds a state of batch {resumed.Batch}, but {prompts.Count} prompt(s) were given; give one prompt per row");
        var eos = request.IgnoreEos ? [] : package.Generation.EosTokenIds;
        var decoders = prompts.Select(_ => tokenizer?.CreateStreamDecoder(skipSpecialTokens: true)).ToArray();
        var texts = prompts.Select(_ => new StringBuilder()).ToArray();
        bool stream = !request.Json && prompts.Count == 1;
        var stopped = new bool[prompts.Count];
        if (stream && request.Prompts.Length == 1) context.Out.Write(request.Prompts[0]);
        bool idsLabelled = false;

        var generationRequest = new GenerationRequest
        {
            Prompts = prompts,
            EncoderInputs = encoderInputs,
            MaxNewTokens = request.MaxNewTokens,
            Sampling = request.Sampling,
            EosTokenIds = eos,
            ShouldStop = row => stopped[row],
        };
        void OnToken(int row, long token)
        {
            string piece = decoders[row]?.Push((int)token) ?? $"{token} ";
            if (stream && tokenizer is null && !idsLabelled)
            {
                context.Out.Write("ids: ");
                idsLabelled = true;
            }
            texts[row].Append(piece);
            if (stream) { context.Out.Write(piece); context.Out.Flush(); }
            foreach (var stop in request.Stops)
                if (texts[row].ToString().Contains(stop, StringComparison.Ordinal)) stopped[row] = true;
        }
        var generation = runner is null
            ? GenAiEngine.Run(package, generationRequest, OnToken)
            : Generator.Run(runner, generationRequest, OnToken, resumed, request.SaveState is null ? null : state => StateSnapshot.Save(state, request.SaveState, "--save-state"));

        // A stream that ended inside a multi-byte character still owes its last bytes.
        for (int r = 0; r < prompts.Count; r++)
        {
            string rest = decoders[r]?.Flush() ?? "";
            texts[r].Append(rest);
            if (stream) context.Out.Write(rest);
        }
        if (stream) context.Out.WriteLine();
        if (request.Json)
        {
            context.Out.WriteLine(JsonSerializer.Serialize(generation.NewTokens.Select((t, i) => new { ids = t, text = tokenizer is null ? null : tokenizer.Decode(t.Select(x => (int)x).ToArray(), skipSpecialTokens: true) }),
                new JsonSerializerOptions { WriteIndented = true }));
        }
        else if (!stream)
        {
            for (int r = 0; r < prompts.Count; r++)
                context.Out.WriteLine(tokenizer is null ? $"[{r}] {string.Join(' ', generation.NewTokens[r])}" : $"[{r}] {(request.Prompts.Length > r ? request.Prompts[r] : "")}{texts[r]}");
        }
        context.Err.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"prefill {generation.PromptTokens} tokens in {generation.Prefill.TotalMilliseconds:F1} ms ({generation.PrefillTokensPerSecond:F1} tok/s); decode {generation.NewTokens.Sum(t => t.Length)} tokens at {generation.DecodeTokensPerSecond:F1} tok/s ({(runner is null ? "onnxruntime-genai" : runner.ExecutionProvider)})"));
        return ExitCodes.Ok;
    }

    /// <summary>Prompts within the batch and length budgets, and ids within the model's vocabulary (a bad id would fail inside ONNX Runtime).</summary>
    private static void CheckPrompts(IReadOnlyList<long[]> prompts, int vocabSize, string option)
    {
        if (prompts.Count > InputBudgets.BatchRows) throw new UsageException($"{option}: {prompts.Count} prompts; at most {InputBudgets.BatchRows} rows per call");
        long vocab = vocabSize > 0 ? vocabSize : long.MaxValue;
        foreach (var prompt in prompts)
        {
            if (prompt.Length > InputBudgets.SequenceTokens)
                throw new UsageException($"{option}: a prompt of {prompt.Length:N0} tokens; at most {InputBudgets.SequenceTokens:N0} per row");
            foreach (long id in prompt)
                if (id >= vocab) throw new UsageException($"{option}: token id {id} is outside the model's vocabulary (0..{vocab - 1})");
        }
    }

    private static Tokenizer? LoadTokenizer(ModelPackage package, bool needed)
    {
        string? file = package.Tokenizer is null ? null : Path.Combine(package.Directory, package.Tokenizer);
        if (file is not null && InputFiles.KindOf(file) != InputFiles.Kind.Missing) return TokenizerFiles.Load(file);
        if (needed)
            throw new UsageException($"{package.Directory}: the package has no tokenizer (the checkpoint had no tokenizer.json nor an RWKV World vocabulary); pass token ids with --ids / --input-ids");
        return null;
    }

    /// <summary>What --engine genai cannot do, said before anything runs.</summary>
    private static void CheckGenAi(ModelPackage package, GenerateRequest request)
    {
        if (!GenAiEngine.CanRun(package) || package.IsEncoderDecoder)
            throw new UsageException($"--engine genai: onnxruntime-genai cannot run this {package.ModelType} package (its state does not fit GenAI's model: KV caches, or one conv and one recurrent tensor per layer); use --engine recur");
        if (request.SaveState is not null || request.LoadState is not null)
            throw new UsageException("--engine genai: --save-state and --load-state need --engine recur (GenAI keeps its state inside its generator)");
    }

    internal static long[] ParseIds(string text, string option)
    {
        var parts = text.Split([' ', ',', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries);
        var ids = new long[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!long.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out ids[i]) || ids[i] < 0)
                throw new UsageException($"{option}: '{parts[i]}' is not a token id (expected non-negative integers, e.g. \"1 2 3\")");
        if (ids.Length == 0) throw new UsageException($"{option}: no token ids");
        return ids;
    }
}
