using Recur.Graphs.Weights;

namespace Recur.Graphs.Ir;

/// <summary>
/// A typed tensor value in a graph under construction. Values are handed out by a
/// <see cref="GraphBuilder"/> and passed back into its op methods; there is no wiring by name.
/// </summary>
public sealed class Value
{
    internal Value(GraphBuilder owner, string name, TensorDType type, IReadOnlyList<Dim>? shape)
    {
        Owner = owner;
        Name = name;
        Type = type;
        Shape = shape;
    }

    internal GraphBuilder Owner { get; }
    public string Name { get; internal set; }
    public TensorDType Type { get; }
    /// <summary>The shape as far as it is known while building; null when even the rank is unknown.</summary>
    public IReadOnlyList<Dim>? Shape { get; }
    public int Rank => Shape?.Count ?? throw new InvalidOperationException($"rank of '{Name}' is unknown");
    /// <summary>Contents of small integer constants, kept so shape arguments can be checked while building.</summary>
    internal long[]? KnownInts { get; init; }

    public Dim this[int axis] => Shape is null ? Dim.Unknown : Shape[axis < 0 ? axis + Shape.Count : axis];

    public override string ToString() => $"{Name}: {Type} {Shapes.Format(Shape)}";
}
