using System.Diagnostics;
using Recur.Tests.Support;

namespace Recur.Tests.Hostile;

/// <summary>
/// Faults from outside: a convert killed part-way, a full disk, a read-only folder. The kills need a separate
/// process; the disks are small tmpfs mounts, which need root (the tests say so and skip where mounting is impossible).
/// </summary>
public sealed class FaultTests
{
    private static readonly string Cli = Path.Combine(AppContext.BaseDirectory, "recur.dll");

    [Theory]
    [InlineData("KILL", 150)]
    [InlineData("KILL", 400)]
    [InlineData("KILL", 700)]
    [InlineData("KILL", 1000)]
    [InlineData("KILL", 1400)]
    [InlineData("TERM", 500)]
    [InlineData("INT", 900)]
    public void A_killed_convert_never_leaves_a_half_written_package_and_the_next_convert_sweeps_up(string signal, int afterMs)
    {
        string parent = Outcome.TempDir("kill");
        string target = Path.Combine(parent, "pkg");
        try
        {
            // A good package is there first: a killed --force convert must leave it whole or replace it whole.
            Assert.Equal(0, CliRunner.Run("convert", GoldenCases.Dir("mamba"), "-o", target, "-q", "--no-verify").Exit);
            string before = Outcome.Snapshot(target);
            var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in new[] { Cli, "convert", GoldenCases.Dir("rwkv"), "-o", target, "--force", "-q" }) start.ArgumentList.Add(a);
            using var process = Process.Start(start)!;
            Thread.Sleep(afterMs);
            using (var kill = Process.Start(new ProcessStartInfo("kill", ["-" + signal, process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))!) kill.WaitForExit();
            Assert.True(process.WaitForExit(30_000), "the killed convert did not end");

            // The next convert into the parent sweeps up (and puts back a package moved aside by a kill between renames).
            Assert.Equal(0, CliRunner.Run("convert", GoldenCases.Dir("rwkv"), "-o", Path.Combine(parent, "second"), "-q", "--no-verify").Exit);
            string manifest = File.ReadAllText(Path.Combine(target, "recur.json"));
            if (manifest.Contains("\"mamba\"", StringComparison.Ordinal)) Assert.Equal(before, Outcome.Snapshot(target));
            else Assert.Equal(0, CliRunner.Run("inspect", target).Exit); // the new package, whole
            Assert.Equal(["pkg", "second"], Directory.GetFileSystemEntries(parent).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        }
        finally { Directory.Delete(parent, true); }
    }

    [TmpfsFact]
    public void A_full_disk_fails_convert_logits_and_save_state_in_one_line_leaving_nothing_behind()
    {
        using var disk = Tmpfs.Mount("256k", readOnly: false);
        string package = ConvertedPackages.Get("rwkv");
        Outcome.Clean(CliRunner.Run("convert", GoldenCases.Dir("rwkv"), "-o", Path.Combine(disk.Path, "pkg"), "-q", "--no-verify"), "convert on a full disk");
        Assert.Empty(Directory.GetFileSystemEntries(disk.Path));

        string state = Path.Combine(disk.Path, "state.safetensors");
        File.WriteAllText(state, "an older state");
        // Fill the disk to the last block.
        using (var filler = new FileStream(Path.Combine(disk.Path, "filler"), FileMode.Create, FileAccess.Write, FileShare.None, 1))
        {
            try { while (true) filler.Write(new byte[512]); } catch (IOException) { }
        }
        string logits = Path.Combine(disk.Path, "logits.safetensors");
        var result = CliRunner.Run("logits", package, "--input", ConvertedPackages.Expected("rwkv"), "--out", logits);
        Assert.NotEqual(0, result.Exit);
        Outcome.Clean(result, "logits on a full disk");
        result = CliRunner.Run("generate", package, "--ids", "1 2 3", "--max-new-tokens", "2", "--save-state", state);
        Assert.NotEqual(0, result.Exit);
        Outcome.Clean(result, "save-state on a full disk");
        Assert.Equal("an older state", File.ReadAllText(state));
        Assert.Equal(["filler", "state.safetensors"], Directory.GetFileSystemEntries(disk.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [TmpfsFact]
    public void A_read_only_folder_refuses_convert_and_save_state_in_one_line()
    {
        using var disk = Tmpfs.Mount("64k", readOnly: true);
        var result = CliRunner.Run("convert", GoldenCases.Dir("rwkv"), "-o", Path.Combine(disk.Path, "pkg"), "-q", "--no-verify");
        Assert.NotEqual(0, result.Exit);
        Outcome.Clean(result, "convert into a read-only folder");
        result = CliRunner.Run("generate", ConvertedPackages.Get("rwkv"), "--ids", "1", "--max-new-tokens", "1", "--save-state", Path.Combine(disk.Path, "s"));
        Assert.NotEqual(0, result.Exit);
        Outcome.Clean(result, "save-state into a read-only folder");
        Assert.Empty(Directory.GetFileSystemEntries(disk.Path));
    }
}

/// <summary>A fact that needs a tmpfs mount; skipped, saying why, where this process cannot mount one.</summary>
public sealed class TmpfsFactAttribute : FactAttribute
{
    public TmpfsFactAttribute()
    {
        if (Tmpfs.CannotMount is string reason) Skip = reason;
    }
}

/// <summary>A small tmpfs mounted on a temporary folder, unmounted and removed on dispose.</summary>
public sealed class Tmpfs : IDisposable
{
    private static readonly Lazy<string?> Probe = new(() =>
    {
        if (!OperatingSystem.IsLinux()) return "tmpfs mounts are a Linux feature";
        if (Environment.UserName != "root") return "mounting a tmpfs needs root";
        try
        {
            using var probe = Mount("16k", readOnly: false);
            return null;
        }
        catch (InvalidOperationException e)
        {
            return $"cannot mount a tmpfs here ({e.Message})";
        }
    });

    public static string? CannotMount => Probe.Value;

    private Tmpfs(string path) => Path = path;

    public string Path { get; }

    public static Tmpfs Mount(string size, bool readOnly)
    {
        string path = Outcome.TempDir("tmpfs");
        string error = Run("mount", "-t", "tmpfs", "-o", $"size={size}{(readOnly ? ",ro" : "")}", "tmpfs", path);
        if (error.Length > 0)
        {
            Directory.Delete(path);
            throw new InvalidOperationException(error);
        }
        return new Tmpfs(path);
    }

    public void Dispose()
    {
        Run("umount", Path);
        Directory.Delete(Path, recursive: true);
    }

    private static string Run(string command, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(command, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return p.ExitCode == 0 ? "" : $"{command} exited {p.ExitCode}: {err.Trim()}";
    }
}
