using System.CommandLine;
using Recur.Cli.Common;

namespace Recur.Cli.Commands.Validate;

/// <summary>`recur validate`: its options; the comparison is in <see cref="ValidateExecution"/>.</summary>
internal static class ValidateCommand
{
    public static Command Create(CliContext context)
    {
        var package = new Argument<string>("package") { Description = "Recur package folder" };
        var expected = new Option<string>("--expected") { Description = "safetensors with the inputs and the reference logits[_suffix]", Required = true };
        var atol = new Option<double?>("--atol") { Description = "Max abs diff allowed (default: models.json's tolerance for the package's dtype, 1e-4 for fp32)" };
        var split = new Option<int?>("--split") { Description = "Run the first N positions in one call and the rest in a second call that receives the state" };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON" };
        var runtime = new RuntimeOptions();
        var command = new Command("validate", "Compare a package's logits with reference logits; exit 0 within tolerance, 1 outside, 2 on bad input")
        {
            package, expected, atol, split, json,
        };
        runtime.AddTo(command);
        command.SetAction(result => Verbs.Guard(context, () => ValidateExecution.Run(
            result.GetValue(package)!, result.GetValue(expected)!, result.GetValue(atol), result.GetValue(split), result.GetValue(json),
            runtime.Resolve(result, context), context)));
        return command;
    }
}
