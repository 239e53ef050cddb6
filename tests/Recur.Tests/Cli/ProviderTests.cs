using Recur.Tests.Support;

namespace Recur.Tests.Cli;

/// <summary>No GPU exists on these machines: GPU providers must fail over to CPU cleanly, or fail plainly when insisted on.</summary>
public sealed class ProviderTests
{
    [Theory]
    [InlineData("cuda")]
    [InlineData("tensorrt")]
    [InlineData("dml")]
    public void A_gpu_provider_that_cannot_load_falls_back_to_cpu_with_one_warning(string provider)
    {
        var result = CliRunner.Run("validate", ConvertedPackages.Get("rwkv"), "--expected", ConvertedPackages.Expected("rwkv"), "--provider", provider);
        Assert.True(result.Exit == 0, result.ToString());
        var warning = Assert.Single(result.Err.Trim().Split('\n'));
        Assert.StartsWith($"warning: execution provider '{provider}' could not be", warning);
        Assert.Contains("running on CPU", warning);
        Assert.StartsWith("max_abs_diff=", result.LastLine);
    }

    [Fact]
    public void An_insisted_provider_that_cannot_load_fails_with_one_line()
    {
        var result = CliRunner.Run("generate", ConvertedPackages.Get("rwkv"), "--ids", "1 2 3", "--provider", "cuda", "--device-id", "1", "--require-provider");
        Assert.Equal(2, result.Exit);
        var line = Assert.Single(result.Err.Trim().Split('\n'));
        Assert.StartsWith("error: execution provider 'cuda' cannot be used: ", line);
        Assert.Equal("", result.Out);
    }
}
