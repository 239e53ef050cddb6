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
        // No response files: "--text @channel" is text, never a file to expand.
        var parsed = root.Parse(ValueAfterOption(root, args), new ParserConfiguration { ResponseFileTokenReplacer = null });
        if (parsed.Errors.Count > 0)
        {
            // One line, however many problems the parser found.
            context.Err.WriteLine($"error: {string.Join("; ", parsed.Errors.Select(Describe))} (see `recur --help`)");
            return ExitCodes.BadInput;
        }
        return parsed.Invoke(new InvocationConfiguration { Output = context.Out, Error = context.Err, EnableDefaultExceptionHandler = false });
    }

    /// <summary>
    /// An option that needs a value takes the next argument even when it is "--" (as getopt does), so
    /// `--text --` means the text "--"; System.CommandLine would read it as the end of the options.
    /// </summary>
    private static string[] ValueAfterOption(RootCommand root, string[] args)
    {
        Command command = root;
        int start = 0;
        while (start < args.Length && command.Subcommands.FirstOrDefault(c => c.Name == args[start]) is { } sub)
        {
            command = sub;
            start++;
        }
        var needsValue = command.Options.Where(o => o.Arity.MinimumNumberOfValues > 0)
            .SelectMany(o => o.Aliases.Append(o.Name)).ToHashSet(StringComparer.Ordinal);
        var result = new List<string>(args[..start]);
        for (int i = start; i < args.Length; i++)
        {
            if (args[i] == "--")
            {
                result.AddRange(args[i..]); // the end of the options: the rest stays as it is
                break;
            }
            bool takesDashes = needsValue.Contains(args[i]) && i + 1 < args.Length && args[i + 1] == "--";
            result.Add(takesDashes ? $"{args[i]}=--" : args[i]);
            if (takesDashes) i++;
        }
        return [.. result];
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
