using Recur.Package;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Recur.Runtime.Ort;

namespace Recur.Runtime.Execution;

/// <summary>A tensor of a saved state: its name, type, shape and little-endian bytes.</summary>
public sealed record NamedTensor(string Name, TensorElementType Type, long[] Shape, byte[] Data);

/// <summary>
/// Saving and restoring a <see cref="ModelState"/> (resume a conversation without re-reading it). The
/// tensors are the contract's state inputs, "attention_mask" (the positions seen so far) and, for
/// encoder-decoder models, "encoder/{decoder input}".
/// </summary>
public static class StateSnapshot
{
    public const string MaskName = Contract.AttentionMask;
    public const string EncoderPrefix = "encoder/";

    public static IReadOnlyList<NamedTensor> Capture(ModelState state)
    {
        var tensors = new List<NamedTensor>();
        for (int i = 0; i < state.Contract.Count; i++) tensors.Add(Copy(state.Contract[i].Input, state.Current[i]));
        var mask = state.Mask.SelectMany(row => row).ToArray();
        tensors.Add(new NamedTensor(MaskName, TensorElementType.Int64, [state.Batch, state.Length], MemoryMarshal.AsBytes(mask.AsSpan()).ToArray()));
        foreach (var (name, value) in state.EncoderOutputs) tensors.Add(Copy(EncoderPrefix + name, value));
        return tensors;
    }

    public static ModelState Restore(ModelRunner runner, IReadOnlyList<NamedTensor> tensors, string source)
    {
        var byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        if (!byName.TryGetValue(MaskName, out var mask) || mask.Shape.Length != 2)
            throw new InvalidDataException($"{source}: not a saved state (no '{MaskName}' [batch, length])");
        int batch = (int)mask.Shape[0];
        var state = runner.CreateState(batch);
        try
        {
            for (int i = 0; i < state.Contract.Count; i++)
            {
                var spec = state.Contract[i];
                if (!byName.TryGetValue(spec.Input, out var t))
                    throw new InvalidDataException($"{source}: has no '{spec.Input}'; it was saved from a different model");
                if (t.Type != spec.DType || t.Shape.Length != spec.Shape.Count)
                    throw new InvalidDataException($"{source}: '{spec.Input}' is {t.Type} [{string.Join(", ", t.Shape)}], the package expects {spec.DType} of rank {spec.Shape.Count}");
                state.Current[i].Dispose();
                state.Current[i] = FromBytes(t);
            }
            var ids = MemoryMarshal.Cast<byte, long>(mask.Data.AsSpan());
            for (int r = 0; r < batch; r++) state.Mask[r].AddRange(ids.Slice((int)(r * mask.Shape[1]), (int)mask.Shape[1]).ToArray());
            foreach (var t in tensors.Where(t => t.Name.StartsWith(EncoderPrefix, StringComparison.Ordinal)))
                state.EncoderOutputs[t.Name[EncoderPrefix.Length..]] = FromBytes(t);
            return state;
        }
        catch
        {
            state.Dispose();
            throw;
        }
    }

    private static NamedTensor Copy(string name, OrtValue value) =>
        new(name, value.ElementType, value.Shape, value.AsBytes().ToArray());

    private static OrtValue FromBytes(NamedTensor t)
    {
        var value = OrtValue.Allocate(t.Type, t.Shape);
        var destination = value.AsBytes();
        if (destination.Length != t.Data.Length)
            throw new InvalidDataException($"state tensor '{t.Name}' has {t.Data.Length} bytes for shape [{string.Join(", ", t.Shape)}]");
        t.Data.CopyTo(destination);
        return value;
    }
}
