using BenchmarkDotNet.Attributes;
using Recur.Runtime.Execution;

namespace Recur.Benchmarks;

/// <summary>
/// ModelRunner.Forward's own cost per decode step, on the tiny RWKV-4 of tests/golden (its graph runs in
/// microseconds, so what is measured is the wrapper: tensors, names, the logits copy, the state swap).
/// </summary>
[MemoryDiagnoser]
public class ForwardOverheadBenchmarks
{
    private ModelRunner runner = null!;
    private ModelState state = null!;
    private readonly long[] next = [42];

    [GlobalSetup]
    public void Open()
    {
        runner = Packages.Open("tiny-rwkv");
        state = runner.CreateState(1);
    }

    [Benchmark]
    public Logits Forward() => runner.Forward(state, next, 1);

    [Benchmark]
    public Logits ForwardLast() => runner.ForwardLast(state, next, 1);

    [GlobalCleanup]
    public void Close()
    {
        state.Dispose();
        runner.Dispose();
    }
}
