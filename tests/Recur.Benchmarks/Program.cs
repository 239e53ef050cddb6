using BenchmarkDotNet.Running;

// Micro benchmarks over the packages `make bench` writes to out/bench/pkg (make microbench runs them).
// Pass BenchmarkDotNet's own arguments through, e.g. --filter '*Decode*'.
BenchmarkSwitcher.FromAssembly(typeof(Recur.Benchmarks.Packages).Assembly).Run(args);
