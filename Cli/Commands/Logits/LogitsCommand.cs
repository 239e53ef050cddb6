using System.CommandLine;
using Recur.Cli.Common;
using Recur.Package.Files;
using Recur.Cli.Golden;
using Recur.Package.Tensors;
using Recur.Runtime.Execution;

namespace Recur.Cli.Commands.Logits;

/// <summary>`recur logits`: runs every input set of a safetensors file and writes the logits under the golden names.</summary>
internal static class LogitsCommand
{
    public static Command Create(CliContext context)
    {
        var package = new Argument<string>("package") { Description = "Recur package folder" };
        var input = new Option<string>("--input") { Description = "safetensors with input_ids[_suffix] (or encoder_input_ids + decoder_input_ids) int64 [batch, sequence]", Required = true };
        var output = new Option<string>("--out") { Description = "safetensors to write: logits[_suffix] float32 [batch, sequence, vocab]", Required = true };
        var split = new Option<int?>("--split") { Description = "Run the first N positions in one call and the rest in a second call that receives the state" };
        var runtime = new RuntimeOptions();
        var command = new Command("logits", "Compute logits for the input sets of a safetensors file") { package, input, output, split };
        runtime.AddTo(command);
        command.SetAction(result => Verbs.Guard(context, () =>
        {
            string outPath = result.GetValue(output)!;
            AtomicFile.RequireWritableTarget(Path.GetFullPath(outPath), "--out"); // before the run, not after it
            var config = runtime.Resolve(result, context);
            using var runner = ModelRunner.Open(result.GetValue(package)!, config);
            RuntimeOptions.ReportWarnings(runner.Warnings, context);
            var tensors = new List<SafetensorsWriter.Tensor>();
            foreach (var set in GoldenInputs.Read(result.GetValue(input)!, runner.Package.IsEncoderDecoder))
            {
                var logits = GoldenInputs.Run(runner, set, result.GetValue(split));
                tensors.Add(SafetensorsWriter.Tensor.Float32(set.LogitsName, [logits.Batch, logits.Length, logits.Vocab], logits.Data));
            }
            SafetensorsWriter.Write(outPath, tensors, what: "--out");
            context.Out.WriteLine($"wrote {string.Join(", ", tensors.Select(t => $"{t.Name} [{string.Join(", ", t.Shape)}]"))} to {outPath}");
            return ExitCodes.Ok;
        }));
        return command;
    }
}
