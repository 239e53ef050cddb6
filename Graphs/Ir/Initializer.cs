using Recur.Graphs.Weights;

namespace Recur.Graphs.Ir;

/// <summary>
/// A constant tensor of the model. Its bytes are produced only when the model is written, so a
/// conversion holds at most one tensor's data at a time.
/// </summary>
public sealed class Initializer
{
    internal Initializer(string name, TensorDType type, long[] shape, Func<byte[]> materialize, bool isGraphConstant = false)
    {
        IsGraphConstant = isGraphConstant;
        Name = name;
        Type = type;
        Shape = shape;
        Materialize = materialize;
    }

    public string Name { get; }
    public TensorDType Type { get; }
    public long[] Shape { get; }
    public Func<byte[]> Materialize { get; }
    /// <summary>A constant of the graph's own math (a -inf mask, a default), not data from the checkpoint.</summary>
    public bool IsGraphConstant { get; }
    public long ElementCount => Shape.Aggregate(1L, (a, d) => a * d);
    public long ByteSize => ElementCount * TensorDTypes.SizeOf(Type);
}
