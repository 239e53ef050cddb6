using System.Runtime.InteropServices;
using Recur.Cli.Common;
using Recur.Export.Checkpoints;
using Recur.Graphs.Weights;
using Recur.Runtime.Execution;
using Recur.Package.Files;

namespace Recur.Cli.Golden;

/// <summary>
/// One set of inputs of a golden file: <c>input_ids{suffix}</c>, or <c>encoder_input_ids{suffix}</c> and
/// <c>decoder_input_ids{suffix}</c>, whose logits are <c>logits{suffix}</c>.
/// </summary>
internal sealed record InputSet(string Suffix, long[] Ids, int Batch, int Length, long[]? EncoderIds, int EncoderLength)
{
    public string LogitsName => "logits" + Suffix;
}

/// <summary>The golden-case contract: reads input sets and runs them, whole or split in two calls.</summary>
internal static class GoldenInputs
{
    public static IReadOnlyList<InputSet> Read(string path, bool encoderDecoder)
    {
        InputFiles.RequireRegular(path, "input");
        using var file = SafetensorsFile.Open(path);
        var sets = new List<InputSet>();
        string prefix = encoderDecoder ? "decoder_input_ids" : "input_ids";
        foreach (var name in file.Names.Where(n => n.StartsWith(prefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            string suffix = name[prefix.Length..];
            if (suffix.Length > 0 && suffix[0] != '_') continue;
            var (ids, batch, length) = ReadIds(file, name, path);
            if (!encoderDecoder)
            {
                sets.Add(new InputSet(suffix, ids, batch, length, null, 0));
                continue;
            }
            string encoderName = "encoder_input_ids" + suffix;
            if (!file.TryGetEntry(encoderName, out _))
                throw new InvalidDataException($"{path}: has '{name}' but no '{encoderName}' for the encoder");
            var (encIds, encBatch, encLength) = ReadIds(file, encoderName, path);
            if (encBatch != batch) throw new InvalidDataException($"{path}: '{encoderName}' has batch {encBatch} but '{name}' has {batch}");
            sets.Add(new InputSet(suffix, ids, batch, length, encIds, encLength));
        }
        if (sets.Count == 0)
            throw new InvalidDataException($"{path}: no '{prefix}' tensor; a golden input file holds {prefix} int64 [batch, sequence]{(encoderDecoder ? " and encoder_input_ids" : "")}");
        return sets;
    }

    private static (long[] Ids, int Batch, int Length) ReadIds(SafetensorsFile file, string name, string path)
    {
        file.TryGetEntry(name, out var entry);
        if (entry.DType != TensorDType.Int64 || entry.Shape.Length != 2)
            throw new InvalidDataException($"{path}: '{name}' is {entry.DType} [{string.Join(", ", entry.Shape)}]; expected int64 [batch, sequence]");
        // Checked before the casts: a batch of 2^32 + 1 must not wrap to 1.
        long batch = entry.Shape[0], length = entry.Shape[1];
        if (batch is < 1 or > InputBudgets.BatchRows || length is < 1 or > InputBudgets.SequenceTokens || batch * length > InputBudgets.CallTokens)
            throw new InvalidDataException($"{path}: '{name}' is [{batch}, {length}]; expected 1 to {InputBudgets.BatchRows} rows of 1 to {InputBudgets.SequenceTokens:N0} tokens, at most {InputBudgets.CallTokens:N0} in all");
        var ids = new long[entry.ElementCount];
        file.ReadRaw(name, MemoryMarshal.AsBytes(ids.AsSpan()));
        return (ids, (int)batch, (int)length);
    }

    /// <summary>Runs one input set; with <paramref name="split"/> the first positions go in one call and the rest in a second that receives the state.</summary>
    public static Logits Run(ModelRunner runner, InputSet set, int? split)
    {
        using var state = runner.CreateState(set.Batch);
        if (set.EncoderIds is not null) runner.Encode(state, set.EncoderIds, set.EncoderLength);
        if (split is null || split.Value >= set.Length) return runner.Forward(state, set.Ids, set.Length);
        if (split.Value < 1) throw new UsageException($"--split must be at least 1 (got {split.Value})");
        int first = split.Value, second = set.Length - first;
        var a = runner.Forward(state, Columns(set.Ids, set.Batch, set.Length, 0, first), first);
        var b = runner.Forward(state, Columns(set.Ids, set.Batch, set.Length, first, second), second);
        var joined = new float[set.Batch * set.Length * a.Vocab];
        for (int r = 0; r < set.Batch; r++)
        {
            Array.Copy(a.Data, r * first * a.Vocab, joined, r * set.Length * a.Vocab, first * a.Vocab);
            Array.Copy(b.Data, r * second * b.Vocab, joined, (r * set.Length + first) * a.Vocab, second * b.Vocab);
        }
        return new Logits(joined, set.Batch, set.Length, a.Vocab);
    }

    private static long[] Columns(long[] ids, int batch, int length, int start, int count)
    {
        var result = new long[batch * count];
        for (int r = 0; r < batch; r++) Array.Copy(ids, r * length + start, result, r * count, count);
        return result;
    }
}
