using Recur.Cli;
using Recur.Cli.Common;

namespace Recur.Tests.Support;

/// <summary>Runs the `recur` CLI in-process through its test entry point, capturing what it prints.</summary>
public static class CliRunner
{
    public sealed record Result(int Exit, string Out, string Err)
    {
        public string LastLine => Out.TrimEnd().Split('\n')[^1].Trim();
        public override string ToString() => $"exit {Exit}\n--- stdout\n{Out}\n--- stderr\n{Err}";
    }

    public static Result Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = Program.Run(args, new CliContext(output, error, interactive: false));
        return new Result(exit, output.ToString(), error.ToString());
    }
}

/// <summary>Golden checkpoints converted once per test run into a temporary folder.</summary>
public static class ConvertedPackages
{
    private static readonly string Root = Path.Combine(Path.GetTempPath(), $"recur-tests-{Environment.ProcessId}");
    private static readonly Dictionary<string, Lazy<string>> Cache = new();
    private static readonly Lock Gate = new();

    /// <summary>The package folder for a golden case converted with the given extra convert arguments.</summary>
    public static string Get(string caseName, params string[] extraArgs)
    {
        string key = caseName + "|" + string.Join(' ', extraArgs);
        Lazy<string> entry;
        lock (Gate)
        {
            if (!Cache.TryGetValue(key, out entry!))
            {
                entry = new Lazy<string>(() => Convert(caseName, extraArgs));
                Cache[key] = entry;
            }
        }
        return entry.Value;
    }

    private static string Convert(string caseName, string[] extraArgs)
    {
        string output = Path.Combine(Root, $"{caseName}-{Guid.NewGuid():N}");
        var result = CliRunner.Run(["convert", GoldenCases.Dir(caseName), "-o", output, "--quiet", .. extraArgs]);
        if (result.Exit != 0) throw new InvalidOperationException($"convert {caseName} failed: {result}");
        return output;
    }

    public static string Expected(string caseName) => Path.Combine(GoldenCases.Dir(caseName), "expected.safetensors");
}
