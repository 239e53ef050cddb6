using Recur.Graphs.Ir;
using Recur.Graphs.Weights;
using static Recur.Package.Tensors.NameSuggestions;

namespace Recur.Export.Checkpoints;

/// <summary>
/// A checkpoint in another naming (BlinkDL's original RWKV files) presented under the Hugging Face names an
/// architecture pulls. Each original tensor maps to one name, optionally viewed in another shape (same bytes)
/// or transposed (a [rows, cols] matrix read as [cols, rows]). Names outside a mapping pass through renamed
/// by its rule, so the converter's unused-tensor check still reports them.
/// </summary>
public sealed class RenamedTensors : ITensorSource
{
    /// <summary>Where one original tensor goes: its Hugging Face name, a shape to view it in, or a transpose.</summary>
    public sealed record Target(string Name, long[]? Shape = null, bool Transpose = false);

    private readonly ITensorSource inner;
    private readonly string naming;
    private readonly Dictionary<string, (string Original, Target Target)> byName = new(StringComparer.Ordinal);
    private readonly IReadOnlyCollection<string> names;

    /// <param name="naming">The original naming, for messages (e.g. "original RWKV-4").</param>
    public RenamedTensors(ITensorSource inner, string naming, Func<string, TensorEntry, Target> map)
    {
        this.inner = inner;
        this.naming = naming;
        foreach (var original in inner.Names)
        {
            if (!inner.TryGetEntry(original, out var entry)) continue;
            var target = map(original, entry);
            if (target.Transpose && entry.Shape.Length != 2)
                throw new InvalidDataException($"checkpoint tensor {Quote(original)} [{string.Join(", ", entry.Shape)}] should be a matrix");
            if (target.Shape is { } s && s.Aggregate(1L, (a, d) => a * d) != entry.ElementCount)
                throw new InvalidDataException(
                    $"checkpoint tensor {Quote(original)} has shape [{string.Join(", ", entry.Shape)}]; expected {entry.ElementCount} elements as [{string.Join(", ", s)}]");
            if (!byName.TryAdd(target.Name, (original, target)))
                throw new InvalidDataException(
                    $"checkpoint tensors {Quote(byName[target.Name].Original)} and {Quote(original)} both map to the Hugging Face name {Quote(target.Name)}; the checkpoint mixes the {naming} and Hugging Face namings");
        }
        names = Array.AsReadOnly(byName.Keys.Order(StringComparer.Ordinal).ToArray());
    }

    public IReadOnlyCollection<string> Names => names;

    public bool TryGetEntry(string name, out TensorEntry entry)
    {
        if (byName.TryGetValue(name, out var m) && inner.TryGetEntry(m.Original, out var e))
        {
            long[] shape = m.Target.Shape ?? (m.Target.Transpose ? [e.Shape[1], e.Shape[0]] : e.Shape);
            entry = e with { Name = name, Shape = shape };
            return true;
        }
        entry = null!; // the interface's out parameter is not annotated; callers check the return value
        return false;
    }

    public float[] ReadFloat32(string name)
    {
        var (original, target) = Find(name);
        var data = inner.ReadFloat32(original);
        return target.Transpose ? Transposed(data, Shape(original), 1) : data;
    }

    public void ReadRaw(string name, Span<byte> destination)
    {
        var (original, target) = Find(name);
        if (!target.Transpose)
        {
            inner.ReadRaw(original, destination);
            return;
        }
        var raw = new byte[destination.Length];
        inner.ReadRaw(original, raw);
        long[] shape = Shape(original);
        Transposed(raw, shape, (int)(raw.Length / (shape[0] * shape[1]))).CopyTo(destination);
    }

    public string Describe(string name)
    {
        var (original, _) = Find(name);
        return $"{inner.Describe(original)} (original name {Quote(original)})";
    }

    private long[] Shape(string original) => inner.TryGetEntry(original, out var e) ? e.Shape : throw new KeyNotFoundException(original);

    private (string Original, Target Target) Find(string name) =>
        byName.TryGetValue(name, out var m) ? m
            : throw new KeyNotFoundException($"tensor {Quote(name)} is not in the checkpoint (read under the {naming} names); {ClosestText(name, names)}");

    /// <summary>A row-major [rows, cols] array of elements of <paramref name="size"/> units as [cols, rows].</summary>
    private static T[] Transposed<T>(T[] data, long[] shape, int size)
    {
        long rows = shape[0], cols = shape[1];
        var t = new T[data.Length];
        for (long r = 0; r < rows; r++)
            for (long c = 0; c < cols; c++)
                Array.Copy(data, (r * cols + c) * size, t, (c * rows + r) * size, size);
        return t;
    }
}
