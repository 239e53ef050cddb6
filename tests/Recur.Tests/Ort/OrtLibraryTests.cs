using System.Diagnostics;
using System.Text.Json;
using Recur.Tests.Support;

namespace Recur.Tests.Ort;

/// <summary>
/// --ort-library redirects Microsoft.ML.OnnxRuntime's native import to another build. Each case runs the CLI in its
/// own process: a process loads one ONNX Runtime library.
/// </summary>
public sealed class OrtLibraryTests
{
    private static readonly string Packaged = Path.Combine(AppContext.BaseDirectory, "libonnxruntime.so");

    [Fact]
    public void Another_copy_of_the_library_is_loaded_and_runs_the_golden()
    {
        string dir = Directory.CreateTempSubdirectory("recur-ort-").FullName;
        try
        {
            string copy = Path.Combine(dir, "libonnxruntime-custom.so");
            File.Copy(Packaged, copy);
            var (exit, output, error) = Recur("validate", ConvertedPackages.Get("rwkv"), "--expected", ConvertedPackages.Expected("rwkv"), "--json", "--ort-library", copy);
            Assert.True(exit == 0, error);
            using var json = JsonDocument.Parse(output);
            var ort = json.RootElement.GetProperty("onnxruntime");
            Assert.Equal(copy, ort.GetProperty("library").GetString());
            // The copy is this flavor's own library: 1.31.1 (CPU) or 1.31.0 (CUDA), as this process loaded it.
            Assert.Equal(OrtLibrary.Version, ort.GetProperty("version").GetString());
            Assert.Matches(@"^1\.31\.\d+$", OrtLibrary.Version);
            Assert.True(json.RootElement.GetProperty("pass").GetBoolean());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void The_default_is_the_packaged_library()
    {
        var (exit, output, error) = Recur("validate", ConvertedPackages.Get("rwkv"), "--expected", ConvertedPackages.Expected("rwkv"), "--json");
        Assert.True(exit == 0, error);
        using var json = JsonDocument.Parse(output);
        Assert.Equal(Packaged, json.RootElement.GetProperty("onnxruntime").GetProperty("library").GetString());
    }

    [Fact]
    public void A_file_that_does_not_load_is_one_line_exit_2()
    {
        string file = Path.Combine(Directory.CreateTempSubdirectory("recur-ort-").FullName, "libonnxruntime.so");
        File.WriteAllText(file, "not a library");
        try
        {
            var (exit, output, error) = Recur("validate", ConvertedPackages.Get("rwkv"), "--expected", ConvertedPackages.Expected("rwkv"), "--ort-library", file);
            Assert.Equal(2, exit);
            Assert.Equal($"error: --ort-library {file}: the system loader cannot load it (not a shared library for this platform, or a dependency is missing)", error.Trim());
            Assert.Equal("", output);
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(file)!, recursive: true);
        }
    }

    [Fact]
    public void A_shared_library_that_is_not_onnx_runtime_is_refused()
    {
        string other = Path.Combine(AppContext.BaseDirectory, "libonnxruntime_providers_shared.so");
        var (exit, _, error) = Recur("validate", ConvertedPackages.Get("rwkv"), "--expected", ConvertedPackages.Expected("rwkv"), "--ort-library", other);
        Assert.Equal(2, exit);
        Assert.Equal($"error: --ort-library {other}: not an ONNX Runtime library (it exports no OrtGetApiBase)", error.Trim());
    }

    [Fact]
    public void A_process_with_arguments_of_tens_of_kilobytes_starts_onnx_runtime()
    {
        // The former binding crashed the CLR (exit 134) creating the ONNX Runtime environment once argv passed ~29 KB.
        var (exit, output, error) = Recur("generate", ConvertedPackages.Get("rwkv"), "--ids", string.Join(' ', Enumerable.Repeat("5", 9000)),
            "--stop", new string('x', 40_000), "--max-new-tokens", "2");
        Assert.True(exit == 0, error);
        Assert.StartsWith("ids: ", output);
        Assert.Contains("prefill 9000 tokens", error);
    }

    private static (int Exit, string Out, string Err) Recur(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "recur.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment.Remove(OrtLibrary.EnvironmentVariable);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        string stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result, stderr);
    }
}
