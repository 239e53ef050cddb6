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
        var runtime = new RuntimeOptions();
        var command = new Command("bench", "Measure prefill and decode speed, against the memory-bandwidth bound measured in the same run")
        {
            package, promptLength, newTokens, batch, repeat, json,
        };
        runtime.AddTo(command);
        command.SetAction(result => Verbs.Guard(context, () => BenchExecution.Run(new BenchRequest(
            result.GetValue(package)!, result.GetValue(promptLength), result.GetValue(newTokens), result.GetValue(batch), result.GetValue(repeat),
            result.GetValue(json)), runtime.Resolve(result, context), context)));
        return command;
    }
}

internal sealed record BenchRequest(string Package, int PromptLength, int NewTokens, int Batch, int Repeat, bool Json);
