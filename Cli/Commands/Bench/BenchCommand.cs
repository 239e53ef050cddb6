using System.CommandLine;
using Recur.Cli.Common;
using Recur.Package.Files;

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
        command.SetAction(result => Verbs.Guard(context, () =>
        {
            var request = new BenchRequest(result.GetValue(package)!, result.GetValue(promptLength), result.GetValue(newTokens), result.GetValue(batch),
                result.GetValue(repeat), result.GetValue(json), result.GetValue(contexts) ?? []);
            Validate(request, result.GetValue(profile), result.GetValue(optimized));
            return BenchExecution.Run(request, runtime.Resolve(result, context) with
            {
                ProfilePrefix = result.GetValue(profile),
                OptimizedModelPath = result.GetValue(optimized),
            }, context);
        }));
        return command;
    }

    /// <summary>Every size within its budget before anything is allocated, and every output path writable before the run.</summary>
    private static void Validate(BenchRequest request, string? profile, string? optimized)
    {
        static void Range(string option, long value, long max)
        {
            if (value < 1 || value > max) throw new UsageException($"{option} {value}: expected 1 to {max:N0}");
        }
        Range("--prompt-length", request.PromptLength, InputBudgets.SequenceTokens);
        Range("--new-tokens", request.NewTokens, InputBudgets.SequenceTokens);
        Range("--batch", request.Batch, InputBudgets.BatchRows);
        Range("--repeat", request.Repeat, 1000);
        if ((long)request.Batch * request.PromptLength > InputBudgets.CallTokens)
            throw new UsageException($"--batch {request.Batch} x --prompt-length {request.PromptLength}: {(long)request.Batch * request.PromptLength:N0} tokens in one call; at most {InputBudgets.CallTokens:N0}");
        // ONNX Runtime writes these files itself and says nothing when it cannot.
        if (profile is not null)
        {
            string folder = Path.GetDirectoryName(Path.GetFullPath(profile))!;
            if (!Directory.Exists(folder)) throw new UsageException($"--profile {profile}: the folder {folder} does not exist");
        }
        if (optimized is not null) AtomicFile.RequireWritableTarget(Path.GetFullPath(optimized), "--save-optimized");
    }
}

internal sealed record BenchRequest(string Package, int PromptLength, int NewTokens, int Batch, int Repeat, bool Json, IReadOnlyList<int> Contexts);
