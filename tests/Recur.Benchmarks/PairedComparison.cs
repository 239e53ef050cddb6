using System.Diagnostics;
using System.Globalization;
using Recur.Runtime.Execution;
using Recur.Runtime.Ort;

namespace Recur.Benchmarks;

/// <summary>
/// A/B timing that holds up on a shared machine: both packages are open in one process and every call
/// alternates between them (prefill A, prefill B, then decode steps A, B, A, B, ...), so load from other
/// work lands on both alike. Reports per side the median and the 10th percentile of each call's time
/// (the low percentile approximates the uncontended cost) and the B/A ratios; then the same for the process's CPU time per
/// call, which other processes' load changes far less than the wall clock (with spinning off, ORT's threads use CPU only
/// while they work).
/// <code>
/// ab PACKAGE_A PACKAGE_B [--rounds N] [--prompt N] [--steps N] [--threads N]
///    [--a-config KEY=VALUE]... [--b-config KEY=VALUE]...     (ONNX Runtime session config entries per side)
///    [--a-buffers reuse|fresh] [--b-buffers reuse|fresh]      (fresh: ORT allocates every output on every call,
///                                                              to measure what the runner's reused buffers save)
/// </code>
/// </summary>
internal static class PairedComparison
{
    public static int Run(string[] args)
    {
        if (args.Length < 2) { Console.Error.WriteLine("usage: ab PACKAGE_A PACKAGE_B [--rounds N] [--prompt N] [--steps N] [--threads N] [--a-config K=V] [--b-config K=V]"); return 2; }
        int rounds = 5, prompt = 128, steps = 64, threads = 0;
        var configs = new[] { new Dictionary<string, string>(), new Dictionary<string, string>() };
        var reuse = new[] { true, true };
        for (int i = 2; i + 1 < args.Length; i += 2)
        {
            string value = args[i + 1];
            switch (args[i])
            {
                case "--rounds": rounds = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "--prompt": prompt = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "--steps": steps = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "--threads": threads = int.Parse(value, CultureInfo.InvariantCulture); break;
                case "--a-config": case "--b-config":
                    int at = value.IndexOf('=');
                    configs[args[i] == "--a-config" ? 0 : 1][value[..at]] = value[(at + 1)..];
                    break;
                case "--a-buffers": case "--b-buffers":
                    if (value is not ("reuse" or "fresh")) { Console.Error.WriteLine($"{args[i]}: expected reuse or fresh, got {value}"); return 2; }
                    reuse[args[i] == "--a-buffers" ? 0 : 1] = value == "reuse";
                    break;
                default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
            }
        }
        OrtLibrary.Initialize();
        var runners = new ModelRunner[2];
        for (int s = 0; s < 2; s++)
            runners[s] = ModelRunner.Open(args[s], new SessionConfig { IntraOpThreads = threads, ConfigEntries = configs[s] }, reuse[s]);
        try
        {
            int vocab = Math.Max(2, Math.Min(runners[0].VocabSize, runners[1].VocabSize));
            var ids = Packages.Ids(prompt, vocab);
            var next = Packages.Ids(1, vocab, seed: 7);
            var prefill = new[] { new List<double>(), new List<double>() };
            var decode = new[] { new List<double>(), new List<double>() };
            var prefillCpu = new[] { new List<double>(), new List<double>() };
            var decodeCpu = new[] { new List<double>(), new List<double>() };
            var clock = new Stopwatch();
            for (int r = 0; r < rounds + 1; r++) // round 0 warms up
            {
                var states = runners.Select(Fresh).ToArray();
                try
                {
                    for (int k = 0; k < 2; k++)
                    {
                        int s = (r + k) % 2; // alternate which side goes first
                        double cpu = CpuMilliseconds();
                        clock.Restart();
                        runners[s].ForwardLast(states[s], ids, prompt);
                        if (r > 0) prefill[s].Add(clock.Elapsed.TotalMilliseconds);
                        if (r > 0) prefillCpu[s].Add(CpuMilliseconds() - cpu);
                    }
                    for (int t = 0; t < steps; t++)
                    {
                        for (int k = 0; k < 2; k++)
                        {
                            int s = (r + t + k) % 2;
                            double cpu = CpuMilliseconds();
                            clock.Restart();
                            runners[s].ForwardLast(states[s], next, 1);
                            if (r > 0) decode[s].Add(clock.Elapsed.TotalMilliseconds);
                            if (r > 0) decodeCpu[s].Add(CpuMilliseconds() - cpu);
                        }
                    }
                }
                finally
                {
                    foreach (var state in states) state.Dispose();
                }
                ModelState Fresh(ModelRunner runner)
                {
                    var state = runner.CreateState(1);
                    if (runner.Package.IsEncoderDecoder) runner.Encode(state, ids, prompt);
                    return state;
                }
            }
            Report("prefill", prefill, prompt);
            Report("decode", decode, 1);
            Report("prefill cpu", prefillCpu, prompt);
            Report("decode cpu", decodeCpu, 1);
            return 0;
        }
        finally
        {
            foreach (var runner in runners) runner.Dispose();
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out TimeSpec time);

    private struct TimeSpec { public long Seconds; public long Nanoseconds; }

    /// <summary>CPU time of every thread of this process (CLOCK_PROCESS_CPUTIME_ID, Linux), in ms.</summary>
    private static double CpuMilliseconds() => ClockGetTime(2, out var t) == 0 ? t.Seconds * 1e3 + t.Nanoseconds / 1e6 : double.NaN;

    private static void Report(string what, List<double>[] times, int tokens)
    {
        double Quantile(List<double> values, double q)
        {
            var sorted = values.Order().ToList();
            return sorted[(int)Math.Round(q * (sorted.Count - 1))];
        }
        double aMedian = Quantile(times[0], 0.5), bMedian = Quantile(times[1], 0.5), aLow = Quantile(times[0], 0.1), bLow = Quantile(times[1], 0.1);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{what,-11} A median {aMedian,8:F3} ms ({tokens * 1000 / aMedian,8:F1} tok/s) p10 {aLow,8:F3} ms | B median {bMedian,8:F3} ms ({tokens * 1000 / bMedian,8:F1} tok/s) p10 {bLow,8:F3} ms | B/A time: median {bMedian / aMedian:F3}, p10 {bLow / aLow:F3}  (n={times[0].Count})"));
    }
}
