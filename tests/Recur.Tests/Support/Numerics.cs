namespace Recur.Tests.Support;

/// <summary>Seeded random inputs and element-wise comparisons that name the first index out of tolerance.</summary>
public static class Numerics
{
    public static float[] Uniform(Random random, int count, double low = -1, double high = 1) =>
        Enumerable.Range(0, count).Select(_ => (float)(low + (high - low) * random.NextDouble())).ToArray();

    /// <summary>Asserts |expected - actual| &lt;= atol + rtol * |expected| everywhere.</summary>
    public static void AssertClose(ReadOnlySpan<double> expected, ReadOnlySpan<float> actual, double atol, double rtol = 0, string what = "value")
    {
        var wide = new double[actual.Length];
        for (int i = 0; i < wide.Length; i++) wide[i] = actual[i];
        AssertClose(expected, wide, atol, rtol, what);
    }

    public static void AssertClose(ReadOnlySpan<double> expected, ReadOnlySpan<double> actual, double atol, double rtol = 0, string what = "value")
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double diff = Math.Abs(expected[i] - actual[i]);
            if (!(diff <= atol + rtol * Math.Abs(expected[i])))
                Assert.Fail($"{what}[{i}]: expected {expected[i]:R}, got {actual[i]:R} (diff {diff:E2} > atol {atol:E0} + rtol {rtol:E0} * |expected|)");
        }
    }

    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double atol, double rtol = 0, string what = "value")
    {
        var wide = new double[expected.Length];
        for (int i = 0; i < wide.Length; i++) wide[i] = expected[i];
        AssertClose(wide, actual, atol, rtol, what);
    }

    /// <summary>Positions from..to of a [batch, t, width] row-major array (generic so bool resets and int64 masks slice too).</summary>
    public static T[] SliceTime<T>(T[] x, int batch, int t, int width, int from, int to)
    {
        var result = new T[batch * (to - from) * width];
        for (int b = 0; b < batch; b++) Array.Copy(x, (b * t + from) * width, result, b * (to - from) * width, (to - from) * width);
        return result;
    }
}
