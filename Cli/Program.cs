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
            // One line, however many problems the parser found.
            context.Err.WriteLine($"error: {string.Join("; ", parsed.Errors.Select(Describe))} (see `recur --help`)");
            return ExitCodes.BadInput;
        }
        return parsed.Invoke(new InvocationConfiguration { Output = context.Out, Error = context.Err, EnableDefaultExceptionHandler = false });
    }

    /// <summary>A parse error on one line, naming the option it belongs to when the parser's own text does not.</summary>
    private static string Describe(System.CommandLine.Parsing.ParseError error)
    {
        string message = string.Join(' ', error.Message.Split((char[])[' ', '\t', '\r', '\n'], StringSplitOptions.RemoveEmptyEntries));
        var option = error.SymbolResult switch
        {
            System.CommandLine.Parsing.OptionResult o => o.Option,
            System.CommandLine.Parsing.ArgumentResult { Parent: System.CommandLine.Parsing.OptionResult o } => o.Option,
            _ => null,
        };
        return option is null || message.Contains(option.Name, StringComparison.Ordinal) ? message : $"{option.Name}: {message}";
    }
}
