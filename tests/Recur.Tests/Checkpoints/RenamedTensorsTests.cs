using System.Runtime.InteropServices;
using Recur.Export.Checkpoints;
using Recur.Tests.Support;

namespace Recur.Tests.Checkpoints;

/// <summary>A checkpoint presented under other names: renamed, viewed in another shape, or transposed.</summary>
public sealed class RenamedTensorsTests
{
    private static RenamedTensors Source() => new(
        new MemoryTensors().Add("w1", [1, 2, 3, 4, 5, 6], 2, 3).Add("x", [7, 8], 1, 1, 2),
        "test", (name, _) => name == "w1" ? new RenamedTensors.Target("lora.0.weight", Transpose: true) : new RenamedTensors.Target("mix", [2]));

    [Fact]
    public void A_transposed_matrix_reads_as_its_transpose_in_floats_and_raw_bytes()
    {
        var source = Source();
        Assert.True(source.TryGetEntry("lora.0.weight", out var entry));
        Assert.Equal(new long[] { 3, 2 }, entry.Shape);
        Assert.Equal(new float[] { 1, 4, 2, 5, 3, 6 }, source.ReadFloat32("lora.0.weight"));
        var raw = new byte[24];
        source.ReadRaw("lora.0.weight", raw);
        Assert.Equal(new float[] { 1, 4, 2, 5, 3, 6 }, MemoryMarshal.Cast<byte, float>(raw).ToArray());
    }

    [Fact]
    public void A_reshaped_vector_keeps_its_bytes_and_the_original_name_is_gone()
    {
        var source = Source();
        Assert.True(source.TryGetEntry("mix", out var entry));
        Assert.Equal(new long[] { 2 }, entry.Shape);
        Assert.Equal(new float[] { 7, 8 }, source.ReadFloat32("mix"));
        Assert.Equal(["lora.0.weight", "mix"], source.Names);
        var e = Assert.Throws<KeyNotFoundException>(() => source.ReadFloat32("x"));
        Assert.Contains("read under the test names", e.Message);
        Assert.Contains("(original name 'x')", source.Describe("mix"));
    }

    [Fact]
    public void Two_originals_on_one_name_are_refused()
    {
        var e = Assert.Throws<InvalidDataException>(() =>
            new RenamedTensors(new MemoryTensors().Add("a", [1], 1).Add("b", [2], 1), "test", (_, _) => new RenamedTensors.Target("same")));
        Assert.Contains("both map to the Hugging Face name 'same'", e.Message);
    }
}
