using BenchmarkDotNet.Running;
using Recur.Benchmarks;

// Micro benchmarks over the packages `make bench` writes to out/bench/pkg (make microbench runs them);
// BenchmarkDotNet's own arguments pass through, e.g. --filter '*Decode*'.
// `ab PACKAGE_A PACKAGE_B [options]` instead interleaves two packages call by call (see PairedComparison).
if (args.Length > 0 && args[0] == "ab") return PairedComparison.Run(args[1..]);
BenchmarkSwitcher.FromAssembly(typeof(Packages).Assembly).Run(args);
return 0;
