using System.Globalization;
using Recur.Tests.Support;

namespace Recur.Tests.Architectures;

/// <summary>
/// fp16 and bf16 matrix weights on every architecture. Rounding the weights moves logits of size ~10
/// by about 1e-2 (fp16, 11-bit mantissa) or 1e-1 (bf16, 8-bit), so these are held to models.json's
/// per-dtype tolerances (0.05 and 0.25) and to top-1 agreement with the float32 reference, and must
/// differ from float32 by more than its noise (proof the weights really are reduced).
/// </summary>
public sealed class ReducedPrecisionTests
{
    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var c in new[] { "rwkv", "rwkv7", "mamba", "mamba2", "falcon_mamba", "gemma2", "recurrent_gemma", "jamba", "switch" })
            foreach (var d in new[] { "fp16", "bf16" })
                data.Add(c, d);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Validates_within_the_dtype_tolerance_with_top1_agreement(string caseName, string dtype)
    {
        string package = ConvertedPackages.Get(caseName, "--dtype", dtype);
        var result = CliRunner.Run("validate", package, "--expected", ConvertedPackages.Expected(caseName));
        Assert.True(result.Exit == 0, result.ToString());
        var fields = result.LastLine.Split(' ').Select(f => f.Split('=')).ToDictionary(f => f[0], f => double.Parse(f[1], CultureInfo.InvariantCulture));
        Assert.InRange(fields["top1"], 0.95, 1.0);
        Assert.InRange(fields["max_abs_diff"], 1e-4, dtype == "fp16" ? 0.05 : 0.25);
    }
}
