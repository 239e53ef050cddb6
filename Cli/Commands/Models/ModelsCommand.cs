using System.CommandLine;
using Recur.Cli.Common;
using Recur.Graphs.Architectures;

namespace Recur.Cli.Commands.Models;

/// <summary>`recur models`: the architectures of models.json, which of them convert today, and known checkpoints.</summary>
internal static class ModelsCommand
{
    public static Command Create(CliContext context)
    {
        var json = new Option<bool>("--json") { Description = "Print models.json as it is" };
        var command = new Command("models", "List the supported architectures and known public checkpoints") { json };
        command.SetAction(result => Verbs.Guard(context, () =>
        {
            var catalog = ModelsCatalog.Load();
            if (result.GetValue(json))
            {
                context.Out.WriteLine(File.ReadAllText(catalog.Path));
                return ExitCodes.Ok;
            }
            var registered = Registry.Architectures.Select(a => a.ModelType).ToHashSet();
            foreach (var a in catalog.Architectures)
            {
                string type = a.GetProperty("model_type").GetString()!;
                string status = registered.Contains(type) ? "converts" : "not supported yet";
                context.Out.WriteLine($"{type,-22} {a.GetProperty("hf_class").GetString(),-44} {status}");
                context.Out.WriteLine($"{"",-22} state: {a.GetProperty("state").GetString()}");
                if (a.TryGetProperty("tolerance", out var tol))
                    context.Out.WriteLine($"{"",-22} default dtype {a.GetProperty("default_dtype").GetString()}, tolerance {string.Join(", ", tol.EnumerateObject().Select(p => $"{p.Name} {p.Value.GetDouble():G3}"))}");
                foreach (var c in a.GetProperty("checkpoints").EnumerateArray())
                    context.Out.WriteLine($"{"",-22} - {c.GetProperty("id").GetString()} ({c.GetProperty("parameters").GetString()})");
            }
            return ExitCodes.Ok;
        }));
        return command;
    }
}
