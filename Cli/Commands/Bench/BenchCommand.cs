using System.CommandLine;
using Recur.Cli.Common;

namespace Recur.Cli.Commands.Bench;

/// <summary>`recur bench`: its options; the measurements are in <see cref="BenchExecution"/>.</summary>
internal static class BenchCommand
{
    public static Command Create(CliContext context)
    {
        var package = new Argument<string>("package") { Description = "Recur package folder" };
        var promptLength = new Option<int>("--prompt-length") { Description = "Prompt tokens for the prefill measurement", DefaultValueFactory = _ => 128 };
        var newTokens = new Option<int>("--new-tokens") { Description = "Decode steps for the decode measurement", DefaultValueFactory = _ => 64 };
        var batch = new Option<int>("--batch") { Description = "Rows per call", DefaultValueFactory = _ => 1 };
        var repeat = new Option<int>("--repeat") { Description = "Repetitions (the median is reported)", DefaultValueFactory = _ => 3 };
        var json = new Option<bool>("--json") { Description = "Print the figures as JSON" };
        var profile = new Option<string?>("--profile") { Description = "Write ONNX Runtime's per-node profile (chrome tracing JSON) to a file with this prefix" };
        var optimized = new Option<string?>("--save-optimized") { Description = "Save the decoder graph as ONNX Runtime optimised it to this path" };
        var contexts = new Option<int[]>("--context")
        {
            Description = "Also time decode after this many positions of history (several allowed: --context 128 512 1024 2048)",
            AllowMultipleArgumentsPerToken = true,
        };
        var runtime = new RuntimeOptions();
        var command = new Command("bench", "Measure prefill and decode speed against the limits measured in the same run: read bandwidth over the bytes a decode step reads, and a GEMM peak")
        {
            package, promptLength, newTokens, batch, repeat, json, profile, optimized, contexts,
        };
        runtime.AddTo(command);
        command.SetAction(result => Verbs.Guard(context, () => BenchExecution.Run(new BenchRequest(
            result.GetValue(package)!, result.GetValue(promptLength), result.GetValue(newTokens), result.GetValue(batch), result.GetValue(repeat),
            result.GetValue(json), result.GetValue(contexts) ?? []), runtime.Resolve(result, context) with
            {
                ProfilePrefix = result.GetValue(profile),
                OptimizedModelPath = result.GetValue(optimized),
            }, context)));
        return command;
    }
}

internal sealed record BenchRequest(string Package, int PromptLength, int NewTokens, int Batch, int Repeat, bool Json, IReadOnlyList<int> Contexts);
