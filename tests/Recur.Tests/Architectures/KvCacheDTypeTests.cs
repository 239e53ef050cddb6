using System.Globalization;
using Recur.Tests.Support;

namespace Recur.Tests.Architectures;

/// <summary>
/// `convert --kv-dtype fp16`: growing attention caches stored as float16, attention in float32. Rounding keys and
/// values to float16 (11-bit mantissa, relative error 2^-11) moved the golden logits by 1.2e-3 (gemma), 1.2e-2
/// (gemma2, whose soft caps and larger logits amplify it) and 3.3e-3 (jamba); they are held to 0.05, the fp16
/// tolerance of the weights, with top-1 agreement. The new keys are rounded too, so a split call equals the whole.
/// </summary>
public sealed class KvCacheDTypeTests
{
    [Theory]
    [InlineData("gemma", 1.0)]
    [InlineData("gemma2", 1.0)]
    [InlineData("jamba", 0.95)] // one router near-tie flips an expert on 1 of 84 positions
    public void A_float16_cache_stays_within_the_fp16_tolerance_whole_and_split(string caseName, double top1Floor)
    {
        string package = ConvertedPackages.Get(caseName, "--kv-dtype", "fp16");
        Assert.Contains("float16 [batch,", CliRunner.Run("inspect", package).Out);
        var whole = Validate(package, caseName, null);
        var split = Validate(package, caseName, 11);
        Assert.InRange(whole.MaxAbsDiff, 1e-4, 0.05); // above float32's noise: the cache really is float16
        Assert.InRange(whole.Top1, top1Floor, 1.0);
        Assert.Equal(whole.MaxAbsDiff, split.MaxAbsDiff, 6);
    }

    [Fact]
    public void Architectures_without_a_growing_attention_cache_refuse_it_in_one_line()
    {
        string output = Path.Combine(Path.GetTempPath(), $"recur-kv16-{Guid.NewGuid():N}");
        var result = CliRunner.Run("convert", GoldenCases.Dir("mamba"), "-o", output, "--kv-dtype", "fp16", "--quiet");
        Assert.Equal(2, result.Exit);
        Assert.Equal("error: --kv-dtype fp16: mamba packages have no growing attention cache that takes it (gemma, gemma2, jamba do)", result.Err.Trim());
        Assert.False(Directory.Exists(output));
    }

    private static (double MaxAbsDiff, double Top1) Validate(string package, string caseName, int? split)
    {
        var args = new List<string> { "validate", package, "--expected", ConvertedPackages.Expected(caseName), "--atol", "1" };
        if (split is int n) args.AddRange(["--split", n.ToString(CultureInfo.InvariantCulture)]);
        var result = CliRunner.Run([.. args]);
        Assert.True(result.Exit == 0, result.ToString());
        var fields = result.LastLine.Split(' ').Select(f => f.Split('=')).ToDictionary(f => f[0], f => double.Parse(f[1], CultureInfo.InvariantCulture));
        return (fields["max_abs_diff"], fields["top1"]);
    }
}
