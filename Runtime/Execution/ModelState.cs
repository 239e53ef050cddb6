using Recur.Runtime.Ort;
using Recur.Runtime.Packages;

namespace Recur.Runtime.Execution;

/// <summary>
/// Everything a package's decoder carries from one call to the next: the state tensors of the
/// contract, the tokens seen (for the attention mask) and, for encoder-decoder models, the encoder's
/// outputs. Fixed-size state tensors are double-buffered so a decode step allocates nothing for them.
/// </summary>
public sealed class ModelState : IDisposable
{
    private readonly IReadOnlyList<StateTensor> contract;
    internal OrtValue[] Current;
    // Spare buffers for fixed-size states: the next call writes into them, then they swap with Current.
    internal OrtValue?[] Spare;
    internal readonly List<long>[] Mask;
    internal readonly Dictionary<string, OrtValue> EncoderOutputs = new(StringComparer.Ordinal);
    private bool disposed;

    internal ModelState(IReadOnlyList<StateTensor> contract, int batch)
    {
        this.contract = contract;
        Batch = batch;
        Current = contract.Select(s => Filled(s, batch)).ToArray();
        Spare = contract.Select(s => s.IsFixedSize ? OrtValue.Allocate(s.DType, s.InitialShape(batch)) : null).ToArray();
        Mask = Enumerable.Range(0, batch).Select(_ => new List<long>()).ToArray();
    }

    public int Batch { get; }
    /// <summary>Positions processed so far (including left padding).</summary>
    public long Length => Mask[0].Count;

    /// <summary>The current value of a state tensor by its input name (past_key_values.*).</summary>
    public OrtValue this[string inputName]
    {
        get
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            for (int i = 0; i < contract.Count; i++)
                if (contract[i].Input == inputName) return Current[i];
            throw new KeyNotFoundException($"no state tensor '{inputName}'");
        }
    }

    public IReadOnlyList<StateTensor> Contract => contract;

    private static OrtValue Filled(StateTensor s, int batch)
    {
        var value = OrtValue.Allocate(s.DType, s.InitialShape(batch));
        if (s.Init != 0) Fill(value, s.Init);
        return value;
    }

    private static void Fill(OrtValue value, double init)
    {
        switch (value.ElementType)
        {
            case TensorElementType.Float: value.AsSpan<float>().Fill((float)init); break;
            case TensorElementType.Float16: value.AsSpan<Half>().Fill((Half)init); break;
            case TensorElementType.BFloat16: value.AsSpan<BFloat16>().Fill((BFloat16)(float)init); break;
            case TensorElementType.Int64: value.AsSpan<long>().Fill((long)init); break;
            case TensorElementType.Int32: value.AsSpan<int>().Fill((int)init); break;
            default: throw new NotSupportedException($"state of type {value.ElementType} cannot be initialised");
        }
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        foreach (var v in Current) v.Dispose();
        foreach (var v in Spare) v?.Dispose();
        foreach (var v in EncoderOutputs.Values) v.Dispose();
    }
}
