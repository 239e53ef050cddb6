using System.CommandLine;
using Recur.Cli.Common;
using Microsoft.ML.OnnxRuntime;
using Recur.Runtime.Ort;

namespace Recur.Cli.Commands;

/// <summary>The verbs, and the one place where exceptions become one-line messages and exit codes.</summary>
internal static class Verbs
{
    public static IEnumerable<Command> All(CliContext context) =>
    [
        Convert.ConvertCommand.Create(context),
        Logits.LogitsCommand.Create(context),
        Validate.ValidateCommand.Create(context),
        Generate.GenerateCommand.Create(context),
        Tokenize.TokenizeCommand.Create(context),
        Inspect.InspectCommand.Create(context),
        Bench.BenchCommand.Create(context),
        Models.ModelsCommand.Create(context),
        Export.ExportCommand.Create(context),
    ];

    /// <summary>Runs a verb's body: input errors print one line and give exit 2, runtime failures exit 1, never a stack trace.</summary>
    public static int Guard(CliContext context, Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (IsInputError(e))
        {
            context.Err.WriteLine($"error: {OneLine(Text(e))}");
            return ExitCodes.BadInput;
        }
        catch (OnnxRuntimeException e)
        {
            context.Err.WriteLine($"error: ONNX Runtime: {OneLine(e.Message)}");
            return ExitCodes.Failed;
        }
        catch (Exception e) when (e is Graphs.GraphBuildException or InvalidOperationException or IOException)
        {
            context.Err.WriteLine($"error: {OneLine(e.Message)}");
            return ExitCodes.Failed;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A failure no check above foresaw still ends as one line, never a stack trace.
            context.Err.WriteLine($"error: unexpected {e.GetType().Name}: {OneLine(e.Message)}");
            return ExitCodes.Failed;
        }
    }

    private static bool IsInputError(Exception e) => e is UsageException or Graphs.Config.ConfigException or InvalidDataException
        or NotSupportedException or FileNotFoundException or DirectoryNotFoundException or KeyNotFoundException
        or OrtLibraryException or ProviderUnavailableException or ArgumentException or UnauthorizedAccessException
        or Recur.Export.OutputExistsException or Package.Files.FileRefusedException;

    /// <summary>An argument exception's message without .NET's "(Parameter 'x') Actual value was y." tail, which names code, not input.</summary>
    private static string Text(Exception e) =>
        e is ArgumentException { ParamName: not null } a && a.Message.IndexOf(" (Parameter '", StringComparison.Ordinal) is var at and > 0 ? a.Message[..at] : e.Message;

    private static string OneLine(string message) => message.ReplaceLineEndings(" ").Trim();
}
