using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Recur.Runtime.Ort;
using Recur.Runtime.Packages;

namespace Recur.Runtime.Execution;

/// <summary>
/// Everything a package's decoder carries from one call to the next: the state tensors of the contract, the
/// tokens seen (for the attention mask) and, for encoder-decoder models, the encoder's outputs. Fixed-size
/// state tensors are double-buffered: each call's present.* outputs are written by ONNX Runtime into the spare
/// buffers, which then swap with the current ones, so a decode step allocates and copies nothing for them.
/// The last position's logits go into one reused buffer too.
/// </summary>
public sealed class ModelState : IDisposable
{
    private readonly IReadOnlyList<StateTensor> contract;
    internal OrtValue[] Current;
    // Spare buffers for fixed-size states: the next call writes into them, then they swap with Current.
    internal OrtValue?[] Spare;
    internal readonly List<long>[] Mask;
    internal readonly Dictionary<string, OrtValue> EncoderOutputs = new(StringComparer.Ordinal);
    // [batch, 1, vocab] logits of the last position, written by ORT in place (see ModelRunner.ForwardLast).
    private float[]? lastLogits;
    private OrtValue? lastLogitsValue;
    private bool disposed;

    internal ModelState(IReadOnlyList<StateTensor> contract, int batch)
    {
        this.contract = contract;
        Batch = batch;
        Current = new OrtValue[contract.Count];
        Spare = new OrtValue?[contract.Count];
        try
        {
            for (int i = 0; i < contract.Count; i++)
            {
                Current[i] = Filled(contract[i], batch);
                // An in-place buffer is its own output: no spare.
                if (contract[i].IsFixedSize && contract[i].InPlaceAxis is null) Spare[i] = OrtValue.Allocate(contract[i].DType, contract[i].InitialShape(batch));
            }
        }
        catch
        {
            Dispose();
            throw;
        }
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

    /// <summary>The reused [batch, 1, vocab] logits buffer and the tensor over it, made on first use.</summary>
    internal (float[] Data, OrtValue Value) LastLogits(int vocab)
    {
        if (lastLogits is null || lastLogits.Length != Batch * vocab)
        {
            lastLogitsValue?.Dispose();
            lastLogits = new float[Batch * vocab];
            lastLogitsValue = OrtValue.FromArray(lastLogits, [Batch, 1, vocab]);
        }
        return (lastLogits, lastLogitsValue!);
    }

    private static OrtValue Filled(StateTensor s, int batch)
    {
        var value = OrtValue.Allocate(s.DType, s.InitialShape(batch));
        Fill(value, s.Init);
        return value;
    }

    private static void Fill(OrtValue value, double init)
    {
        switch (value.ElementType)
        {
            case TensorElementType.Float: value.AsSpan<float>().Fill((float)init); break;
            case TensorElementType.Float16: value.AsSpan<Float16>().Fill((Float16)(float)init); break;
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
        foreach (var v in Current) v?.Dispose();
        foreach (var v in Spare) v?.Dispose();
        foreach (var v in EncoderOutputs.Values) v.Dispose();
        lastLogitsValue?.Dispose();
    }
}
