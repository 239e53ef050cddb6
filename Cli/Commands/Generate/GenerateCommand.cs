using System.CommandLine;
using Recur.Cli.Common;
using Recur.Package.Files;
using Recur.Runtime.Generation;

namespace Recur.Cli.Commands.Generate;

/// <summary>`recur generate`: its options; the loop is in <see cref="GenerateExecution"/>.</summary>
internal static class GenerateCommand
{
    public static Command Create(CliContext context)
    {
        var package = new Argument<string>("package") { Description = "Recur package folder" };
        var prompt = new Option<string[]>("--prompt") { Description = "Prompt text (repeat for a batch; needs the package's tokenizer.json)", AllowMultipleArgumentsPerToken = false };
        var promptFile = new Option<string[]>("--prompt-file") { Description = "Prompt text from a UTF-8 file, taken as it is (repeat for a batch); for prompts too long for an argument" };
        var ids = new Option<string[]>("--ids") { Description = "Prompt token ids, e.g. \"1 2 3\" (repeat for a batch)" };
        var input = new Option<string?>("--input") { Description = "Encoder input text for encoder-decoder models (or use --input-ids)" };
        var inputIds = new Option<string?>("--input-ids") { Description = "Encoder input token ids for encoder-decoder models" };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Tokens to generate per prompt", DefaultValueFactory = _ => 32 };
        var temperature = new Option<double>("--temperature") { Description = "0 = greedy; otherwise sample at this temperature", DefaultValueFactory = _ => 0 };
        var topK = new Option<int>("--top-k") { Description = "Sample among the k most likely tokens (0 = all)", DefaultValueFactory = _ => 0 };
        var topP = new Option<double>("--top-p") { Description = "Sample among the most likely tokens covering this probability", DefaultValueFactory = _ => 1.0 };
        var repetition = new Option<double>("--repetition-penalty") { Description = "Penalise tokens already present (1 = off)", DefaultValueFactory = _ => 1.0 };
        var seed = new Option<int?>("--seed") { Description = "Random seed for sampling" };
        var stop = new Option<string[]>("--stop") { Description = "Stop when the generated text contains this string (repeatable), e.g. \"\\n\\n\"" };
        var stopFile = new Option<string[]>("--stop-file") { Description = "Stop when the generated text contains this file's text, taken as it is (repeatable)" };
        var noEos = new Option<bool>("--ignore-eos") { Description = "Do not stop at the end-of-sequence token" };
        var saveState = new Option<string?>("--save-state") { Description = "Save the model state after generation to this file" };
        var loadState = new Option<string?>("--load-state") { Description = "Resume from a state saved with --save-state (the prompt continues it)" };
        var json = new Option<bool>("--json") { Description = "Print ids and text as JSON at the end instead of streaming" };
        var engine = new Option<string>("--engine")
        {
            Description = "recur (Recur's own decode loop) or genai (Microsoft's onnxruntime-genai, for packages with a genai_config.json)",
            DefaultValueFactory = _ => "recur",
        };
        var runtime = new RuntimeOptions();
        var command = new Command("generate", "Generate text (or token ids) from a package: prefill once, then decode with the state")
        {
            package, prompt, promptFile, ids, input, inputIds, maxNew, temperature, topK, topP, repetition, seed, stop, stopFile, noEos, saveState, loadState, json, engine,
        };
        runtime.AddTo(command);
        command.SetAction(result => Verbs.Guard(context, () => GenerateExecution.Run(new GenerateRequest
        {
            Package = result.GetValue(package)!,
            Prompts = [.. result.GetValue(prompt) ?? [], .. (result.GetValue(promptFile) ?? []).Select(f => InputFiles.ReadText(f, "--prompt-file"))],
            Ids = result.GetValue(ids) ?? [],
            EncoderText = result.GetValue(input),
            EncoderIds = result.GetValue(inputIds),
            MaxNewTokens = result.GetValue(maxNew),
            Sampling = new SamplingOptions
            {
                Temperature = result.GetValue(temperature),
                TopK = result.GetValue(topK),
                TopP = result.GetValue(topP),
                RepetitionPenalty = result.GetValue(repetition),
                Seed = result.GetValue(seed),
            },
            Stops = [.. (result.GetValue(stop) ?? []).Select(Unescape),
                .. (result.GetValue(stopFile) ?? []).Select(f => InputFiles.ReadText(f, "--stop-file"))],
            IgnoreEos = result.GetValue(noEos),
            SaveState = result.GetValue(saveState),
            LoadState = result.GetValue(loadState),
            Json = result.GetValue(json),
            Engine = result.GetValue(engine) ?? "recur",
        }, runtime.Resolve(result, context), context)));
        return command;
    }

    /// <summary>--stop takes C-style escapes ("\\n\\n" is a blank line); a bad one names the option.</summary>
    private static string Unescape(string stop)
    {
        try { return System.Text.RegularExpressions.Regex.Unescape(stop); }
        catch (ArgumentException e) { throw new UsageException($"--stop '{stop}': {e.Message.ReplaceLineEndings(" ")}"); }
    }
}

internal sealed record GenerateRequest
{
    public required string Package { get; init; }
    public required string[] Prompts { get; init; }
    public required string[] Ids { get; init; }
    public string? EncoderText { get; init; }
    public string? EncoderIds { get; init; }
    public int MaxNewTokens { get; init; }
    public required SamplingOptions Sampling { get; init; }
    public required string[] Stops { get; init; }
    public bool IgnoreEos { get; init; }
    public string? SaveState { get; init; }
    public string? LoadState { get; init; }
    public bool Json { get; init; }
    public string Engine { get; init; } = "recur";
}
