using Recur.Tests.Support;

namespace Recur.Tests.Generation;

/// <summary>
/// logits_to_keep: the lm_head runs on the last positions only when a caller asks, and the default
/// (an app that never feeds it) still returns every position.
/// </summary>
public sealed class LogitsToKeepTests
{
    [Theory]
    [InlineData("rwkv")]
    [InlineData("mamba2")]
    [InlineData("gemma2")]
    [InlineData("falcon_mamba")]
    [InlineData("jamba")]
    [InlineData("switch")]
    public void Last_position_only_equals_the_last_row_of_all_positions(string caseName)
    {
        using var runner = GoldenChecks.OpenRunner(ConvertedPackages.Get(caseName));
        bool encoderDecoder = runner.Package.IsEncoderDecoder;
        var (ids, _) = GoldenChecks.ReadIds(caseName, encoderDecoder ? "decoder_input_ids_batch2" : "input_ids_batch2");
        long[]? encoder = encoderDecoder ? GoldenChecks.ReadIds(caseName, "encoder_input_ids_batch2").Ids : null;
        int length = ids.Length / 2;
        var golden = GoldenChecks.ReadFloats(caseName, "logits_batch2");
        int vocab = golden.Length / ids.Length;

        using var state = runner.CreateState(2);
        if (encoder is not null) runner.Encode(state, encoder, encoder.Length / 2);
        var last = runner.ForwardLast(state, ids, length);
        Assert.Equal(1, last.Length);
        Assert.Contains("logits_to_keep", runner.Decoder.OverridableInitializerMetadata.Keys); // so ForwardLast asked the graph for one position
        for (int r = 0; r < 2; r++)
            Assert.InRange(GoldenChecks.MaxAbsDiff(last.At(r, 0), golden.AsSpan(((r * length) + length - 1) * vocab, vocab)), 0, GoldenChecks.Fp32Atol);
    }
}
