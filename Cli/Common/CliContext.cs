namespace Recur.Cli.Common;

/// <summary>Where a command writes: standard output for results, standard error for progress and warnings.</summary>
public sealed class CliContext(TextWriter output, TextWriter error, bool interactive)
{
    public TextWriter Out { get; } = output;
    public TextWriter Err { get; } = error;
    /// <summary>True on a terminal: progress may redraw a line instead of printing one per step.</summary>
    public bool Interactive { get; } = interactive;

    public static CliContext Console() =>
        new(System.Console.Out, System.Console.Error, !System.Console.IsErrorRedirected);
}

/// <summary>An error in what the user asked for (options, files): reported as one line, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>Exit codes shared by every verb.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>The command ran but the result is not acceptable (e.g. validate outside tolerance) or the runtime failed.</summary>
    public const int Failed = 1;
    /// <summary>Bad usage or bad input: options, files, configs, checkpoints.</summary>
    public const int BadInput = 2;
}
