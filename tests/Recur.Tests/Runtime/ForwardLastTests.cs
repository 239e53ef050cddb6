using Recur.Tests.Support;

namespace Recur.Tests.Runtime;

/// <summary>ForwardLast returns exactly the last position of what Forward returns, row by row, and advances the state alike.</summary>
public sealed class ForwardLastTests
{
    [Theory]
    [InlineData("rwkv")]
    [InlineData("gemma")]
    public void Last_position_of_each_row_equals_Forward(string caseName)
    {
        using var runner = GoldenChecks.OpenRunner(ConvertedPackages.Get(caseName));
        int vocab = runner.VocabSize;
        long[] ids = [3, 9, 27, 81, 5, 15, 45, 135];
        using var full = runner.CreateState(2);
        using var last = runner.CreateState(2);
        for (int call = 0; call < 2; call++) // a prefill, then a step that depends on the state each left behind
        {
            int length = call == 0 ? 4 : 1;
            var chunk = call == 0 ? ids : [7, 11];
            var all = runner.Forward(full, chunk, length);
            var only = runner.ForwardLast(last, chunk, length);
            Assert.Equal((2, 1, vocab), (only.Batch, only.Length, only.Vocab));
            for (int r = 0; r < 2; r++)
                Assert.True(all.At(r, length - 1).SequenceEqual(only.At(r, 0)), $"{caseName}: row {r} of call {call} differs");
        }
    }
}
