using BenchmarkDotNet.Attributes;
using Recur.Runtime.Execution;

namespace Recur.Benchmarks;

/// <summary>
/// Per architecture at the benchmark shapes: a 128-token prefill from an empty state, and decode steps
/// after a 128-token prompt (64 per invocation, reported per step, so an attention cache stays near
/// the length DESIGN.md's baselines use).
/// </summary>
[MemoryDiagnoser]
[WarmupCount(1)]
[IterationCount(7)]
public class ModelBenchmarks
{
    private const int Prompt = 128, Steps = 64;
    private ModelRunner runner = null!;
    private ModelState state = null!;
    private long[] prompt = [], next = [];

    [Params("rwkv-169m", "mamba-130m", "mamba2-130m", "falcon-mamba-130m", "gemma-46m", "recurrent-gemma-35m", "jamba-tiny-306m", "switch-105m")]
    public string Model { get; set; } = "";

    [GlobalSetup]
    public void Open()
    {
        runner = Packages.Open(Model);
        int vocab = runner.VocabSize > 0 ? runner.VocabSize : 2;
        prompt = Packages.Ids(Prompt, vocab);
        next = Packages.Ids(1, vocab, seed: 7);
    }

    [IterationSetup(Target = nameof(Prefill))]
    public void EmptyState() => state = Fresh();

    [IterationSetup(Target = nameof(DecodeStep))]
    public void PromptState()
    {
        state = Fresh();
        runner.ForwardLast(state, prompt, Prompt);
    }

    [IterationCleanup]
    public void DropState() => state.Dispose();

    [Benchmark]
    public Logits Prefill() => runner.ForwardLast(state, prompt, Prompt);

    [Benchmark(OperationsPerInvoke = Steps)]
    public void DecodeStep()
    {
        for (int s = 0; s < Steps; s++) runner.ForwardLast(state, next, 1);
    }

    [GlobalCleanup]
    public void Close() => runner.Dispose();

    private ModelState Fresh()
    {
        var fresh = runner.CreateState(1);
        if (runner.Package.IsEncoderDecoder) runner.Encode(fresh, prompt, Prompt);
        return fresh;
    }
}
