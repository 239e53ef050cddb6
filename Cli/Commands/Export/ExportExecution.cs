using Recur.Cli.Common;
using Recur.Export.Serving;

namespace Recur.Cli.Commands.Export;

internal static class ExportExecution
{
    public static int Triton(TritonExportOptions options, bool quiet, CliContext context)
    {
        var result = TritonRepository.Write(options);
        if (quiet) return ExitCodes.Ok;
        context.Out.WriteLine($"wrote Triton model repository {result.OutputDir}");
        foreach (var model in result.Models)
        {
            string state = !model.Sequence ? "stateless (run once per sequence; its outputs are the decoder's inputs)"
                : model.StateBytesPerToken == 0 ? $"{model.StateTensors} state tensors, {Size(model.FixedStateBytes)} per sequence"
                : $"{model.StateTensors} state tensors, {Size(model.FixedStateBytes + model.StateBytesPerToken)} per sequence + {Size(model.StateBytesPerToken)} per token";
            context.Out.WriteLine($"  {model.Name}: max_batch_size {model.MaxBatchSize}, {state}");
        }
        return ExitCodes.Ok;
    }

    private static string Size(long bytes) => bytes < 1024 ? $"{bytes} B" : bytes < 1 << 20 ? $"{bytes / 1024.0:F1} KiB" : $"{bytes / 1048576.0:F1} MiB";
}
