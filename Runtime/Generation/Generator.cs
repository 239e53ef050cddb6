using System.Diagnostics;
using Recur.Runtime.Execution;

namespace Recur.Runtime.Generation;

public sealed record GenerationRequest
{
    /// <summary>Prompt ids per row (rows may differ in length: shorter rows are left-padded where the model takes an attention mask).</summary>
    public required IReadOnlyList<long[]> Prompts { get; init; }
    /// <summary>Encoder input per row, for encoder-decoder packages.</summary>
    public IReadOnlyList<long[]>? EncoderInputs { get; init; }
    public int MaxNewTokens { get; init; } = 32;
    public SamplingOptions Sampling { get; init; } = new();
    /// <summary>Token ids that end a row (the package's eos ids by default).</summary>
    public IReadOnlyList<long>? EosTokenIds { get; init; }
    /// <summary>Asked after each token: true ends that row (e.g. a stop string appeared in its text).</summary>
    public Func<int, bool>? ShouldStop { get; init; }
}

public sealed record GenerationResult(IReadOnlyList<long[]> NewTokens, int PromptTokens, TimeSpan Prefill, TimeSpan Decode, int DecodeSteps)
{
    public double PrefillTokensPerSecond => PromptTokens / Math.Max(Prefill.TotalSeconds, 1e-9);
    public double DecodeTokensPerSecond => NewTokens.Sum(t => t.Length) / Math.Max(Decode.TotalSeconds, 1e-9);
}

/// <summary>
/// Prefill the prompt in one call, then decode one token per call, each step feeding the state back.
/// <paramref name="onToken"/> receives (row, token) as soon as each token is chosen, for streaming.
/// </summary>
public static class Generator
{
    /// <param name="resume">A state to continue (its owner keeps it); otherwise a fresh one is made and disposed.</param>
    /// <param name="onFinished">Receives the state after the last step, e.g. to save it.</param>
    public static GenerationResult Run(ModelRunner runner, GenerationRequest request, Action<int, long>? onToken = null, ModelState? resume = null,
        Action<ModelState>? onFinished = null)
    {
        int batch = request.Prompts.Count;
        if (batch == 0) throw new ArgumentException("no prompt");
        if (request.Prompts.Any(p => p.Length == 0) && resume is null && !runner.Package.IsEncoderDecoder)
            throw new ArgumentException("an empty prompt has nothing to continue from");
        var eos = (request.EosTokenIds ?? runner.Package.Generation.EosTokenIds).ToHashSet();
        var sampler = new Sampler(request.Sampling);
        var state = resume ?? runner.CreateState(batch);
        try
        {
            if (runner.Package.IsEncoderDecoder && resume is null)
            {
                var enc = request.EncoderInputs ?? throw new ArgumentException("an encoder-decoder model needs encoder input");
                // Encoder inputs of different lengths are padded on the right and masked, as T5 tokenizers pad.
                int encLength = enc.Max(e => e.Length);
                long pad = runner.Package.Generation.PadTokenId ?? 0;
                var encIds = new long[batch * encLength];
                var encMask = new long[batch * encLength];
                for (int r = 0; r < batch; r++)
                    for (int t = 0; t < encLength; t++)
                    {
                        bool real = t < enc[r].Length;
                        encIds[r * encLength + t] = real ? enc[r][t] : pad;
                        encMask[r * encLength + t] = real ? 1 : 0;
                    }
                runner.Encode(state, encIds, encLength, encMask);
            }

            int length = request.Prompts.Max(p => p.Length);
            var history = request.Prompts.Select(p => new List<long>(p)).ToArray();
            var ids = new long[batch * length];
            var mask = new long[batch * length];
            bool padded = false;
            for (int r = 0; r < batch; r++)
            {
                int pad = length - request.Prompts[r].Length;
                padded |= pad > 0;
                long padId = runner.Package.Generation.PadTokenId ?? 0;
                for (int t = 0; t < length; t++)
                {
                    ids[r * length + t] = t < pad ? padId : request.Prompts[r][t - pad];
                    mask[r * length + t] = t < pad ? 0 : 1;
                }
            }

            var clock = Stopwatch.StartNew();
            var logits = runner.ForwardLast(state, ids, length, padded ? mask : default);
            var prefill = clock.Elapsed;
            var produced = Enumerable.Range(0, batch).Select(_ => new List<long>()).ToArray();
            var done = new bool[batch];
            var next = new long[batch];
            int steps = 0;
            clock.Restart();
            for (int step = 0; step < request.MaxNewTokens; step++)
            {
                for (int r = 0; r < batch; r++)
                {
                    if (done[r]) { next[r] = runner.Package.Generation.PadTokenId ?? next[r]; continue; }
                    int token = sampler.Next(logits.At(r, logits.Length - 1), history[r]);
                    next[r] = token;
                    produced[r].Add(token);
                    history[r].Add(token);
                    onToken?.Invoke(r, token);
                    if (eos.Contains(token) || request.ShouldStop?.Invoke(r) == true) done[r] = true;
                }
                if (done.All(d => d) || step == request.MaxNewTokens - 1) break;
                logits = runner.ForwardLast(state, next, 1);
                steps++;
            }
            var decode = clock.Elapsed;
            onFinished?.Invoke(state);
            return new GenerationResult(produced.Select(p => p.ToArray()).ToList(), request.Prompts.Sum(p => p.Length), prefill, decode, steps);
        }
        finally
        {
            if (resume is null) state.Dispose();
        }
    }
}
