using Recur.Package.Files;
using Recur.Runtime.Tokenizers;

namespace Recur.Cli.Common;

/// <summary>Opens a tokenizer.json for a command: a regular file within the JSON budget, and a failure inside the reader names the file.</summary>
internal static class TokenizerFiles
{
    public static Tokenizer Load(string path)
    {
        // A regular file within the JSON budget; the reader itself refuses invalid UTF-8, naming the offset.
        InputFiles.RequireWithin(path, "tokenizer", InputBudgets.JsonBytes);
        try
        {
            return Tokenizer.FromFile(path);
        }
        catch (Exception e) when (e is OverflowException or FormatException or System.Text.Json.JsonException or InvalidOperationException)
        {
            // A number or text the reader could not hold (an id of 2^31 - 1, say): still the file's fault, said so.
            throw new InvalidDataException($"tokenizer {path}: holds a value out of range or of the wrong form ({e.Message.ReplaceLineEndings(" ").TrimEnd('.')})");
        }
    }
}
