using System.Runtime.InteropServices;
using Recur.Graphs.Weights;

namespace Recur.Tests.Support;

/// <summary>
/// Named float32 tensors held in memory, so a test can hand a <see cref="Recur.Graphs.GraphBuilder"/>
/// weights by their Hugging Face names without writing a checkpoint.
/// </summary>
public sealed class MemoryTensors : ITensorSource
{
    private readonly Dictionary<string, (float[] Data, long[] Shape)> tensors = new(StringComparer.Ordinal);

    /// <summary>Adds (or replaces) a tensor; the data is copied so later edits by the test do not leak in.</summary>
    public MemoryTensors Add(string name, float[] data, params long[] shape)
    {
        long count = shape.Aggregate(1L, (a, d) => a * d);
        if (count != data.LongLength)
            throw new ArgumentException($"'{name}': shape [{string.Join(", ", shape)}] holds {count} values, got {data.Length}");
        tensors[name] = ((float[])data.Clone(), (long[])shape.Clone());
        return this;
    }

    /// <summary>A puller over these tensors, as a GraphBuilder takes it.</summary>
    public WeightPuller Puller() => new(this, "memory");

    public IReadOnlyCollection<string> Names => tensors.Keys;

    public bool TryGetEntry(string name, out TensorEntry entry)
    {
        if (tensors.TryGetValue(name, out var t))
        {
            entry = new TensorEntry(name, TensorDType.Float32, (long[])t.Shape.Clone());
            return true;
        }
        entry = null!;
        return false;
    }

    public float[] ReadFloat32(string name) => (float[])Get(name).Data.Clone();

    public void ReadRaw(string name, Span<byte> destination)
    {
        var bytes = MemoryMarshal.AsBytes(Get(name).Data.AsSpan());
        if (destination.Length != bytes.Length)
            throw new ArgumentException($"'{name}' has {bytes.Length} bytes, destination {destination.Length}");
        bytes.CopyTo(destination);
    }

    public string Describe(string name) => tensors.ContainsKey(name) ? "memory"
        : throw new KeyNotFoundException($"memory: tensor '{name}' not found (have: {string.Join(", ", tensors.Keys.Order(StringComparer.Ordinal))})");

    private (float[] Data, long[] Shape) Get(string name) =>
        tensors.TryGetValue(name, out var t) ? t : throw new KeyNotFoundException($"memory: tensor '{name}' not found");
}
