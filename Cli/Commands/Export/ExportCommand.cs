using System.CommandLine;
using Recur.Cli.Common;

namespace Recur.Cli.Commands.Export;

/// <summary>`recur export`: a package in another serving system's layout; `export triton` writes a Triton model repository.</summary>
internal static class ExportCommand
{
    public static Command Create(CliContext context)
    {
        var command = new Command("export", "Write a package in a serving system's layout");
        command.Subcommands.Add(Triton(context));
        return command;
    }

    private static Command Triton(CliContext context)
    {
        var package = new Argument<string>("package") { Description = "Recur package folder" };
        var output = new Option<string>("--output", "-o") { Description = "Model repository folder to write (an existing one written by recur is replaced only with --force)", Required = true };
        var name = new Option<string?>("--name") { Description = "Model name in the repository (default: the package folder's name)" };
        var maxBatch = new Option<int?>("--max-batch-size") { Description = "Requests per run: default 8 for fixed-size state; growing caches (gemma, gemma2, switch) take only 1" };
        var instances = new Option<int>("--instances") { Description = "Model instances (instance_group count)", DefaultValueFactory = _ => 1 };
        var strategy = new Option<string>("--strategy") { Description = "Sequence batcher strategy: oldest (batches the oldest requests of any sequences) or direct (one batch slot per sequence)", DefaultValueFactory = _ => "oldest" };
        strategy.AcceptOnlyFromAmong("oldest", "direct");
        var maxSequences = new Option<int>("--max-sequences") { Description = "oldest: sequences each instance holds state for at once (max_candidate_sequences)", DefaultValueFactory = _ => 64 };
        var provider = new Option<string>("--provider") { Description = "Where instances run: cpu (KIND_CPU) or cuda (KIND_GPU)", DefaultValueFactory = _ => "cpu" };
        provider.AcceptOnlyFromAmong("cpu", "cuda");
        var force = new Option<bool>("--force") { Description = "Replace an existing repository written by recur" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Print nothing but errors" };
        var command = new Command("triton", "Write a Triton Inference Server model repository (ONNX Runtime backend, sequence batching with implicit state)")
        {
            package, output, name, maxBatch, instances, strategy, maxSequences, provider, force, quiet,
        };
        command.SetAction(result => Verbs.Guard(context, () => ExportExecution.Triton(new Recur.Export.Serving.TritonExportOptions
        {
            PackageDir = result.GetValue(package)!,
            OutputDir = result.GetValue(output)!,
            Name = result.GetValue(name),
            MaxBatchSize = result.GetValue(maxBatch),
            Instances = result.GetValue(instances),
            Strategy = result.GetValue(strategy) == "direct" ? Recur.Export.Serving.TritonStrategy.Direct : Recur.Export.Serving.TritonStrategy.Oldest,
            MaxSequences = result.GetValue(maxSequences),
            Gpu = result.GetValue(provider) == "cuda",
            Force = result.GetValue(force),
        }, result.GetValue(quiet), context)));
        return command;
    }
}
