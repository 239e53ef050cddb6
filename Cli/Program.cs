using System.CommandLine;
using Recur.Cli.Commands;
using Recur.Cli.Common;

namespace Recur.Cli;

public static class Program
{
    public static int Main(string[] args) => Run(args, CliContext.Console());

    /// <summary>The whole CLI as a function of its arguments, for tests.</summary>
    public static int Run(string[] args, CliContext context)
    {
        var root = new RootCommand("Recur: Hugging Face checkpoints of stateful language models to plain ONNX graphs with explicit state, run with ONNX Runtime.");
        foreach (var verb in Verbs.All(context)) root.Subcommands.Add(verb);
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var error in parsed.Errors) context.Err.WriteLine($"error: {error.Message}");
            context.Err.WriteLine("See `recur --help`.");
            return ExitCodes.BadInput;
        }
        return parsed.Invoke(new InvocationConfiguration { Output = context.Out, Error = context.Err, EnableDefaultExceptionHandler = false });
    }
}
