using Recur.Runtime.Execution;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Recur.Runtime.Ort;

namespace Recur.Benchmarks;

/// <summary>Finds the benchmark packages (out/bench/pkg of the repository, or $RECUR_BENCH_PACKAGES) and opens them.</summary>
public static class Packages
{
    public static string Folder(string name)
    {
        string? root = Environment.GetEnvironmentVariable("RECUR_BENCH_PACKAGES");
        if (root is null)
        {
            // BenchmarkDotNet runs each benchmark from a generated folder under bin/: walk up to the repository.
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Recur.slnx"))) dir = dir.Parent;
            root = dir is null ? throw new DirectoryNotFoundException("set RECUR_BENCH_PACKAGES to the folder `make bench` fills (out/bench/pkg)")
                : Path.Combine(dir.FullName, "out", "bench", "pkg");
        }
        string folder = Path.Combine(root, name);
        if (!File.Exists(Path.Combine(folder, "recur.json")))
            throw new DirectoryNotFoundException($"{folder}: no package; run `make bench` first");
        return folder;
    }

    public static ModelRunner Open(string name)
    {
        OrtLibrary.Initialize();
        return ModelRunner.Open(Folder(name));
    }

    /// <summary>Deterministic token ids below the vocabulary size.</summary>
    public static long[] Ids(int count, int vocab, int seed = 1234)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (long)random.Next(vocab)).ToArray();
    }
}
