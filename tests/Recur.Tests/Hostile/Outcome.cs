using System.Diagnostics;
using Recur.Tests.Support;

namespace Recur.Tests.Hostile;

/// <summary>What every run on hostile input must look like: exit 0, 1 or 2, at most one error line, no stack trace.</summary>
internal static class Outcome
{
    /// <summary>A refused input: the given exit code and exactly one line on stderr, which contains every fragment.</summary>
    public static string Refused(CliRunner.Result result, int exit = 2, params string[] fragments)
    {
        Assert.True(result.Exit == exit, result.ToString());
        string line = OneLine(result);
        Assert.StartsWith("error: ", line);
        foreach (var f in fragments) Assert.True(line.Contains(f, StringComparison.Ordinal), $"'{f}' not in: {line}");
        return line;
    }

    /// <summary>Any clean ending: exit 0, 1 or 2; a failure says so in one line; nothing looks like a stack trace.</summary>
    public static void Clean(CliRunner.Result result, string label)
    {
        Assert.True(result.Exit is 0 or 1 or 2, $"{label}: {result}");
        Assert.DoesNotContain("   at ", result.Err);
        Assert.DoesNotContain("Exception:", result.Err);
        if (result.Exit != 0)
        {
            var lines = result.Err.Trim().Split('\n').Where(l => !l.StartsWith("warning: ", StringComparison.Ordinal)).ToList();
            Assert.True(lines.Count == 1 && lines[0].StartsWith("error: ", StringComparison.Ordinal), $"{label}: {result}");
        }
    }

    private static string OneLine(CliRunner.Result result)
    {
        var lines = result.Err.Trim().Split('\n').Where(l => !l.StartsWith("warning: ", StringComparison.Ordinal)).ToList();
        Assert.True(lines.Count == 1, result.ToString());
        Assert.DoesNotContain("   at ", result.Err);
        return lines[0].Trim();
    }

    /// <summary>Runs the CLI in-process, failing the test if it takes longer than <paramref name="seconds"/>.</summary>
    public static CliRunner.Result Within(double seconds, params string[] args)
    {
        var task = Task.Run(() => CliRunner.Run(args));
        Assert.True(task.Wait(TimeSpan.FromSeconds(seconds)), $"recur {string.Join(' ', args.Select(a => a.Length > 80 ? a[..80] + "..." : a))} did not finish in {seconds} s");
        return task.Result;
    }

    /// <summary>Makes a named pipe (mkfifo), the input that used to block a reader forever.</summary>
    public static void MakeFifo(string path)
    {
        using var p = Process.Start(new ProcessStartInfo("mkfifo", [path]) { RedirectStandardError = true })!;
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
    }

    /// <summary>A fresh folder under the temporary folder, removed by the caller.</summary>
    public static string TempDir(string label)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"recur-hostile-{label}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>Files and folders under a folder, with their sizes, to prove a refused command changed nothing.</summary>
    public static string Snapshot(string dir) => string.Join("\n",
        Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Select(p => File.Exists(p) ? $"{p} {new FileInfo(p).Length} {new FileInfo(p).LastWriteTimeUtc.Ticks}" : p + "/"));
}
