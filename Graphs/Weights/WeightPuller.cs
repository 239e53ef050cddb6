using Recur.Graphs.Ir;

namespace Recur.Graphs.Weights;

/// <summary>
/// Hands checkpoint tensors to the graph by their Hugging Face names, at the point of use, and
/// remembers which were used so a conversion can refuse a checkpoint with tensors nothing read.
/// </summary>
public sealed class WeightPuller(ITensorSource source, string checkpointName)
{
    private readonly HashSet<string> used = new(StringComparer.Ordinal);

    public ITensorSource Source => source;
    public string CheckpointName => checkpointName;
    public IReadOnlyCollection<string> Used => used;

    public bool Contains(string name) => source.TryGetEntry(name, out _);

    /// <summary>Looks a tensor up and checks its shape; the read itself happens when the model is written.</summary>
    public TensorEntry Entry(string name, long[]? expectedShape = null)
    {
        if (!source.TryGetEntry(name, out var entry))
        {
            source.Describe(name); // throws KeyNotFoundException naming the tensor and its closest names
            throw new KeyNotFoundException($"{checkpointName}: tensor '{name}' not found");
        }
        if (expectedShape is not null && !entry.Shape.SequenceEqual(expectedShape))
            throw new InvalidDataException(
                $"{checkpointName}: tensor '{name}' has shape [{string.Join(", ", entry.Shape)}] but the config implies [{string.Join(", ", expectedShape)}]");
        used.Add(name);
        return entry;
    }

    public float[] Read(string name) => source.ReadFloat32(name);

    /// <summary>Checkpoint tensors that nothing in the graph used, with their shapes.</summary>
    public IReadOnlyList<TensorEntry> Unused() =>
        source.Names.Where(n => !used.Contains(n)).Order(StringComparer.Ordinal)
            .Select(n => source.TryGetEntry(n, out var e) ? e : throw new InvalidOperationException(n)).ToList();

    /// <summary>Marks a tensor as deliberately not needed (e.g. a buffer HF recomputes, like rotary inv_freq).</summary>
    public void Ignore(string name)
    {
        if (source.TryGetEntry(name, out _)) used.Add(name);
    }
}
