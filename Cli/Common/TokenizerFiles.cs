using Recur.Package.Files;
using Recur.Runtime.Tokenizers;

namespace Recur.Cli.Common;

/// <summary>Opens a tokenizer.json for a command: a regular file within the JSON budget, and a failure inside the reader names the file.</summary>
internal static class TokenizerFiles
{
    public static Tokenizer Load(string path)
    {
        // Checked here so the reader never meets invalid UTF-8 inside a string, where its error names no file.
        if (!System.Text.Unicode.Utf8.IsValid(InputFiles.ReadBytes(path, "tokenizer", InputBudgets.JsonBytes)))
            throw new InvalidDataException($"tokenizer {path}: is not valid UTF-8 text, so not JSON");
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
