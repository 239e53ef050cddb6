using Recur.Package;
using Recur.Package.Files;
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

    /// <summary>Writes a state file (safetensors, format recur-state/1) atomically; <paramref name="option"/> names it in errors.</summary>
    public static void Save(ModelState state, string path, string option)
    {
        var tensors = Capture(state).Select(t => new SafetensorsWriter.Tensor(t.Name, SafetensorsDTypes.NameOf((TensorDType)(int)t.Type), t.Shape, t.Data));
        SafetensorsWriter.Write(path, tensors, new Dictionary<string, string> { ["format"] = "recur-state/1" }, option);
    }

    /// <summary>Reads a state file back into a state for <paramref name="runner"/>, checked against its contract.</summary>
    public static ModelState Load(ModelRunner runner, string path, string option)
    {
        InputFiles.RequireRegular(path, option);
        using var file = SafetensorsFile.Open(path);
        var tensors = file.Names.Select(n =>
        {
            file.TryGetEntry(n, out var e);
            if (e.ElementCount > InputBudgets.TensorElements)
                throw new InvalidDataException($"{path}: '{n}' has {e.ElementCount:N0} elements, over the {InputBudgets.TensorElements:N0}-element budget for a state tensor");
            var data = new byte[e.ElementCount * TensorDTypes.SizeOf(e.DType)];
            file.ReadRaw(n, data);
            return new NamedTensor(n, (TensorElementType)(int)e.DType, e.Shape, data);
        }).ToList();
        return Restore(runner, tensors, path);
    }

    public static IReadOnlyList<NamedTensor> Capture(ModelState state)
    {
        var tensors = new List<NamedTensor>();
        for (int i = 0; i < state.Contract.Count; i++) tensors.Add(Copy(state.Contract[i].Input, state.Current[i]));
        var mask = state.Mask.SelectMany(row => row).ToArray();
        tensors.Add(new NamedTensor(MaskName, TensorElementType.Int64, [state.Batch, state.Length], MemoryMarshal.AsBytes(mask.AsSpan()).ToArray()));
        foreach (var (name, value) in state.EncoderOutputs) tensors.Add(Copy(EncoderPrefix + name, value));
        return tensors;
    }

    /// <summary>
    /// A state read from a file Recur may not have written: every tensor is checked against the package's contract
    /// (names, dtypes, shapes with batch and past_sequence, byte sizes from checked arithmetic) and for finiteness
    /// before anything is allocated, and each error names <paramref name="source"/> and the tensor.
    /// </summary>
    public static ModelState Restore(ModelRunner runner, IReadOnlyList<NamedTensor> tensors, string source)
    {
        var byName = new Dictionary<string, NamedTensor>(StringComparer.Ordinal);
        foreach (var t in tensors)
            if (!byName.TryAdd(t.Name, t)) throw new InvalidDataException($"{source}: tensor '{t.Name}' appears twice");
        if (!byName.TryGetValue(MaskName, out var mask))
            throw new InvalidDataException($"{source}: not a saved state (no '{MaskName}' tensor)");
        if (mask.Type != TensorElementType.Int64 || mask.Shape.Length != 2)
            throw new InvalidDataException($"{source}: '{MaskName}' is {mask.Type} [{string.Join(", ", mask.Shape)}]; expected Int64 [batch, length]");
        long batchLong = mask.Shape[0], length = mask.Shape[1];
        if (batchLong is < 1 or > InputBudgets.BatchRows)
            throw new InvalidDataException($"{source}: '{MaskName}' has batch {batchLong}; expected 1 to {InputBudgets.BatchRows}");
        if (length is < 0 or > InputBudgets.SequenceTokens)
            throw new InvalidDataException($"{source}: '{MaskName}' has length {length}; expected 0 to {InputBudgets.SequenceTokens}");
        int batch = (int)batchLong;
        CheckSize(mask, source);
        var ids = MemoryMarshal.Cast<byte, long>(mask.Data.AsSpan());
        foreach (long v in ids)
            if (v is not (0 or 1)) throw new InvalidDataException($"{source}: '{MaskName}' holds {v}; expected only 0 (padding) and 1");

        var contract = runner.Package.State;
        var expected = new HashSet<string>(StringComparer.Ordinal) { MaskName };
        foreach (var spec in contract)
        {
            expected.Add(spec.Input);
            if (!byName.TryGetValue(spec.Input, out var t))
                throw new InvalidDataException($"{source}: has no '{spec.Input}'; it was saved from a different model");
            if (t.Type != spec.DType || t.Shape.Length != spec.Shape.Count)
                throw new InvalidDataException($"{source}: '{spec.Input}' is {t.Type} [{string.Join(", ", t.Shape)}]; the package expects {spec.DType} [{string.Join(", ", spec.Shape)}]");
            for (int d = 0; d < spec.Shape.Count; d++)
            {
                (long low, long high, string what) = spec.Shape[d] switch
                {
                    long n => (n, n, n.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                    "batch" => (batchLong, batchLong, $"the batch of '{MaskName}', {batchLong}"),
                    "past_sequence" => (0L, length, $"at most the length of '{MaskName}', {length}"),
                    var symbol => (0L, (long)InputBudgets.SequenceTokens, $"'{symbol}' from 0 to {InputBudgets.SequenceTokens}"),
                };
                if (t.Shape[d] < low || t.Shape[d] > high)
                    throw new InvalidDataException($"{source}: '{spec.Input}' has dimension {d} = {t.Shape[d]}; expected {what}");
            }
            CheckSize(t, source);
            CheckFinite(t, source);
        }
        foreach (var (_, decoderInput) in runner.Package.EncoderFeeds)
        {
            string name = EncoderPrefix + decoderInput;
            expected.Add(name);
            if (!byName.TryGetValue(name, out var t))
                throw new InvalidDataException($"{source}: has no '{name}'; it was saved from a different model");
            if (t.Shape.Length == 0 || t.Shape[0] != batchLong)
                throw new InvalidDataException($"{source}: '{name}' is [{string.Join(", ", t.Shape)}]; expected batch {batchLong} first");
            CheckSize(t, source);
            CheckFinite(t, source);
        }
        var strangers = byName.Keys.Where(n => !expected.Contains(n)).Order(StringComparer.Ordinal).ToList();
        if (strangers.Count > 0)
            throw new InvalidDataException($"{source}: holds tensors the package's contract does not name: {string.Join(", ", strangers.Take(5))}{(strangers.Count > 5 ? ", ..." : "")}");

        var state = runner.CreateState(batch);
        try
        {
            for (int i = 0; i < state.Contract.Count; i++)
            {
                state.Current[i].Dispose();
                state.Current[i] = FromBytes(byName[state.Contract[i].Input]);
            }
            for (int r = 0; r < batch; r++) state.Mask[r].AddRange(ids.Slice((int)(r * length), (int)length).ToArray());
            foreach (var (_, decoderInput) in runner.Package.EncoderFeeds)
                state.EncoderOutputs[decoderInput] = FromBytes(byName[EncoderPrefix + decoderInput]);
            return state;
        }
        catch
        {
            state.Dispose();
            throw;
        }
    }

    /// <summary>The tensor's bytes match its shape, with the product computed without overflow and within the budget.</summary>
    private static void CheckSize(NamedTensor t, string source)
    {
        long elements = 1;
        try
        {
            foreach (long d in t.Shape) elements = d >= 0 ? checked(elements * d) : throw new OverflowException();
            if (elements > InputBudgets.TensorElements) throw new OverflowException();
            long bytes = checked(elements * ElementSize(t.Type));
            if (bytes != t.Data.LongLength)
                throw new InvalidDataException($"{source}: '{t.Name}' has {t.Data.LongLength} bytes for {t.Type} [{string.Join(", ", t.Shape)}], which needs {bytes}");
        }
        catch (OverflowException)
        {
            throw new InvalidDataException($"{source}: '{t.Name}' has shape [{string.Join(", ", t.Shape)}], over the {InputBudgets.TensorElements:N0}-element budget");
        }
    }

    private static int ElementSize(TensorElementType type) => type switch
    {
        TensorElementType.Float or TensorElementType.Int32 => 4,
        TensorElementType.Float16 or TensorElementType.BFloat16 => 2,
        TensorElementType.Int64 => 8,
        _ => throw new NotSupportedException($"state tensors of type {type} are not supported"),
    };

    private static void CheckFinite(NamedTensor t, string source)
    {
        long bad = NonFinite.FirstIndex((int)t.Type, t.Data);
        if (bad >= 0)
            throw new InvalidDataException($"{source}: '{t.Name}' holds {NonFinite.Describe((int)t.Type, t.Data, bad)} at element {bad}; a saved state is always finite");
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
