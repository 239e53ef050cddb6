using System.CommandLine;
using Recur.Cli.Common;

namespace Recur.Cli.Commands.Inspect;

/// <summary>`recur inspect`: what a package or ONNX file contains, read from the file itself (no ONNX Runtime needed).</summary>
internal static class InspectCommand
{
    public static Command Create(CliContext context)
    {
        var target = new Argument<string>("target") { Description = "Recur package folder or an .onnx file" };
        var json = new Option<bool>("--json") { Description = "Print the report as JSON" };
        var command = new Command("inspect", "Show a package's inputs, outputs, state contract, opsets, op counts, parameters and bytes") { target, json };
        command.SetAction(result => Verbs.Guard(context, () =>
        {
            var report = InspectReport.Read(result.GetValue(target)!);
            if (result.GetValue(json)) context.Out.WriteLine(report.ToJson());
            else report.Print(context.Out);
            return ExitCodes.Ok;
        }));
        return command;
    }
}
