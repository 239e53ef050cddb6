using System.CommandLine;
using System.Text;
using System.Text.Json;
using Recur.Cli.Common;
using Recur.Package.Files;
using Recur.Runtime.Tokenizers;

namespace Recur.Cli.Commands.Tokenize;

/// <summary>`recur tokenize`: text to ids (a JSON array) or ids to text, with a package's or any tokenizer.json.</summary>
internal static class TokenizeCommand
{
    public static Command Create(CliContext context)
    {
        var target = new Argument<string>("tokenizer") { Description = "Recur package folder, checkpoint folder, a tokenizer.json or an RWKV World vocabulary (rwkv_vocab_v20230424.txt)" };
        var text = new Option<string?>("--text") { Description = "Text to encode" };
        var file = new Option<string?>("--file") { Description = "Encode the contents of this UTF-8 text file" };
        var decode = new Option<string?>("--decode") { Description = "Token ids to decode, e.g. \"1 2 3\"" };
        var noSpecial = new Option<bool>("--no-special-tokens") { Description = "Encode without the post-processor's special tokens (e.g. BOS); decode skipping special tokens" };
        var command = new Command("tokenize", "Encode text to token ids (JSON array) or decode ids to text") { target, text, file, decode, noSpecial };
        command.SetAction(result => Verbs.Guard(context, () =>
        {
            int given = new[] { result.GetValue(text) is not null, result.GetValue(file) is not null, result.GetValue(decode) is not null }.Count(b => b);
            if (given != 1) throw new UsageException("give exactly one of --text, --file or --decode");
            var tokenizer = TokenizerFiles.Load(Locate(result.GetValue(target)!));
            bool special = !result.GetValue(noSpecial);
            if (result.GetValue(decode) is string ids)
            {
                // An empty list decodes to "", as in Hugging Face.
                long[] parsed = string.IsNullOrWhiteSpace(ids) ? [] : Generate.GenerateExecution.ParseIds(ids, "--decode");
                foreach (long id in parsed)
                    if (id >= tokenizer.VocabSize) throw new UsageException($"--decode: id {id} is outside the vocabulary (size {tokenizer.VocabSize})");
                context.Out.WriteLine(tokenizer.Decode(parsed.Select(i => (int)i).ToArray(), skipSpecialTokens: !special));
                return ExitCodes.Ok;
            }
            string input = result.GetValue(text) ?? ReadFile(result.GetValue(file)!);
            context.Out.WriteLine(JsonSerializer.Serialize(tokenizer.Encode(input, addSpecialTokens: special)));
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static string Locate(string target)
    {
        if (InputFiles.KindOf(target) is InputFiles.Kind.Regular or InputFiles.Kind.Other) return target; // a pipe or device is refused by the loader, by name
        foreach (var name in new[] { "tokenizer.json", Tokenizer.WorldVocabularyFile })
        {
            string inFolder = Path.Combine(target, name);
            if (Directory.Exists(target) && InputFiles.KindOf(inFolder) != InputFiles.Kind.Missing) return inFolder;
        }
        throw new UsageException(Directory.Exists(target)
            ? $"{target}: has no tokenizer.json (nor an RWKV World {Tokenizer.WorldVocabularyFile})"
            : $"{target}: no such file or folder");
    }

    private static string ReadFile(string path) => InputFiles.ReadText(path, "--file");
}
