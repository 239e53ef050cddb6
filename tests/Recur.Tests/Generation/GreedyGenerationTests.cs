using Recur.Runtime.Execution;
using Recur.Runtime.Generation;
using Recur.Tests.Support;

namespace Recur.Tests.Generation;

/// <summary>
/// Ids in, ids out on every architecture: greedy decoding with state must pick what the reference
/// logits pick, and must equal re-running the whole growing sequence from scratch at every step.
/// </summary>
public sealed class GreedyGenerationTests
{
    public static TheoryData<string> Cases => ["rwkv", "rwkv7", "mamba", "mamba2", "falcon_mamba", "gemma", "gemma2", "recurrent_gemma", "jamba", "switch"];

    [Theory]
    [MemberData(nameof(Cases))]
    public void First_greedy_token_after_every_prefix_is_the_argmax_of_the_golden_logits(string caseName)
    {
        using var runner = GoldenChecks.OpenRunner(ConvertedPackages.Get(caseName));
        bool encoderDecoder = runner.Package.IsEncoderDecoder;
        var (ids, _) = GoldenChecks.ReadIds(caseName, encoderDecoder ? "decoder_input_ids" : "input_ids");
        long[]? encoder = encoderDecoder ? GoldenChecks.ReadIds(caseName, "encoder_input_ids").Ids : null;
        var golden = GoldenChecks.ReadFloats(caseName, "logits");
        int vocab = golden.Length / ids.Length;
        for (int prefix = 1; prefix <= ids.Length; prefix++)
        {
            var result = Generator.Run(runner, new GenerationRequest
            {
                Prompts = [ids[..prefix]],
                EncoderInputs = encoder is null ? null : [encoder],
                MaxNewTokens = 1,
                EosTokenIds = [],
            });
            int expected = Sampler.ArgMax(golden.AsSpan((prefix - 1) * vocab, vocab));
            Assert.True(expected == result.NewTokens[0][0], $"{caseName}: after {prefix} tokens greedy chose {result.NewTokens[0][0]}, the golden argmax is {expected}");
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Greedy_generation_with_state_equals_rerunning_the_growing_sequence(string caseName)
    {
        using var runner = GoldenChecks.OpenRunner(ConvertedPackages.Get(caseName));
        bool encoderDecoder = runner.Package.IsEncoderDecoder;
        var (ids, _) = GoldenChecks.ReadIds(caseName, encoderDecoder ? "decoder_input_ids" : "input_ids");
        long[]? encoder = encoderDecoder ? GoldenChecks.ReadIds(caseName, "encoder_input_ids").Ids : null;
        long[] prompt = ids[..5];
        const int steps = 32;

        var streamed = new List<long>();
        var generated = Generator.Run(runner, new GenerationRequest
        {
            Prompts = [prompt],
            EncoderInputs = encoder is null ? null : [encoder],
            MaxNewTokens = steps,
            EosTokenIds = [],
        }, (row, token) => streamed.Add(token)).NewTokens[0];
        Assert.Equal(steps, generated.Length);
        Assert.Equal(generated, streamed);

        // From scratch: a fresh state and the whole sequence so far, every step.
        var sequence = new List<long>(prompt);
        for (int step = 0; step < steps; step++)
        {
            using var state = runner.CreateState(1);
            if (encoder is not null) runner.Encode(state, encoder, encoder.Length);
            var logits = runner.Forward(state, sequence.ToArray(), sequence.Count);
            long next = Sampler.ArgMax(logits.At(0, sequence.Count - 1));
            Assert.True(next == generated[step], $"{caseName}: step {step}: stateful decoding chose {generated[step]}, re-running the sequence chose {next}");
            sequence.Add(next);
        }
    }
}
