using Recur.Graphs;
using Recur.Graphs.Weights;
using Recur.Tests.Support;

namespace Recur.Tests.Components;

/// <summary>
/// T5's relative position buckets against a loop written from T5Attention._relative_position_bucket. The bias is a
/// lookup in the table, so it must match exactly: a wrong bucket is a wrong row, never a rounding difference.
/// </summary>
public sealed class RelativePositionBiasTests
{
    private const int H = 3;

    // Keys at exact distances, at the powers of two where T5's log buckets change, and beyond max_distance.
    private static readonly long[] Keys = [0, 1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 100, 127, 128, 129, 200, 400];

    [Theory]
    [InlineData(true, 32, 128, new long[] { 0, 3, 64, 130, 400 })]   // T5's defaults, encoder
    [InlineData(false, 32, 128, new long[] { 0, 3, 64, 130, 400 })]  // decoder
    [InlineData(true, 10, 12, new long[] { 0, 5, 20 })]              // few buckets, short max distance
    [InlineData(false, 10, 12, new long[] { 9 })]                   // one decode step
    public void Buckets_match_the_reference(bool bidirectional, int buckets, int maxDistance, long[] queries)
    {
        var table = Enumerable.Range(0, buckets * H).Select(i => (float)i).ToArray(); // row b holds 3b, 3b+1, 3b+2: the bucket is readable
        var b = new GraphBuilder("t5bias");
        b.Output(b.RelativePositionBias(b.Input("queries", TensorDType.Int64, "sequence"), b.Input("keys", TensorDType.Int64, "keys"),
            b.Input("table", TensorDType.Float32, buckets, H), bidirectional, buckets, maxDistance), "bias");
        using var graph = GraphRun.Open(b);
        var bias = graph.Run(("queries", HostTensor.Of(queries, queries.Length)), ("keys", HostTensor.Of(Keys, Keys.Length)),
            ("table", HostTensor.Of(table, buckets, H)))["bias"];

        Assert.Equal(new long[] { 1, H, queries.Length, Keys.Length }, bias.Shape);
        var seen = new HashSet<int>();
        for (int q = 0; q < queries.Length; q++)
            for (int k = 0; k < Keys.Length; k++)
            {
                int bucket = Bucket(Keys[k] - queries[q], bidirectional, buckets, maxDistance);
                seen.Add(bucket);
                for (int h = 0; h < H; h++)
                    Assert.True(table[bucket * H + h] == bias.Floats[(h * queries.Length + q) * Keys.Length + k],
                        $"query {queries[q]}, key {Keys[k]}, head {h}: expected bucket {bucket}, got row {bias.Floats[(h * queries.Length + q) * Keys.Length + k] / H}");
            }
        if (queries.Length > 1) Assert.Contains((bidirectional ? buckets / 2 : buckets) - 1, seen); // the far bucket was reached
    }

    /// <summary>
    /// Hugging Face's _relative_position_bucket for one distance (key - query). Its log branch runs on a float32 tensor
    /// (the Python float constants round to float32) and truncates toward zero.
    /// </summary>
    private static int Bucket(long relative, bool bidirectional, int buckets, int maxDistance)
    {
        int result = 0, n = buckets;
        long rel = relative;
        if (bidirectional)
        {
            n /= 2;
            if (rel > 0) result += n;
            rel = Math.Abs(rel);
        }
        else rel = -Math.Min(rel, 0);
        int exact = n / 2;
        if (rel < exact) return result + (int)rel;
        float ratio = MathF.Log((float)rel / exact) / (float)Math.Log((double)maxDistance / exact) * (n - exact);
        return result + Math.Min(exact + (int)ratio, n - 1);
    }
}
