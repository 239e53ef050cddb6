using Recur.Package;
using Recur.Runtime.Ort;
using Recur.Runtime.Packages;

namespace Recur.Runtime.Execution;

/// <summary>Logits of one call: [batch, length, vocab] in row-major order.</summary>
public sealed record Logits(float[] Data, int Batch, int Length, int Vocab)
{
    public ReadOnlySpan<float> At(int row, int position) => Data.AsSpan(((row * Length) + position) * Vocab, Vocab);
}

/// <summary>
/// Drives any package from its recur.json: prefill and decode go through the same decoder graph,
/// feeding each present.* output back as the matching past_key_values.* input. Knows no architecture.
/// </summary>
public sealed class ModelRunner : IDisposable
{
    private const string InputIds = Contract.InputIds;
    private const string AttentionMask = Contract.AttentionMask;
    private const string LogitsOutput = Contract.Logits;
    private const string LogitsToKeep = Contract.LogitsToKeep;

    private readonly string[] decoderOutputs;
    // The decoder's input and output names in the order Forward passes them, encoded once for every call.
    private readonly RunNames decoderNames;
    // Scalars fed as logits_to_keep when the decoder has it: 0 for Forward, 1 for ForwardLast.
    private readonly OrtValue? keepAll, keepLast;

    private ModelRunner(ModelPackage package, InferenceSession decoder, InferenceSession? encoder)
    {
        Package = package;
        Decoder = decoder;
        Encoder = encoder;
        var inputs = decoder.Inputs.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        if (!inputs.Contains(InputIds)) throw new InvalidDataException($"{package.GraphPath("decoder")}: the decoder has no '{InputIds}' input");
        foreach (var s in package.State)
            if (!inputs.Contains(s.Input)) throw new InvalidDataException($"{package.GraphPath("decoder")}: recur.json names state input '{s.Input}' that the graph does not have");
        foreach (var (_, decoderInput) in package.EncoderFeeds)
            if (!inputs.Contains(decoderInput)) throw new InvalidDataException($"{package.GraphPath("decoder")}: encoder feed '{decoderInput}' is not a decoder input");
        AcceptsAttentionMask = inputs.Contains(AttentionMask);
        if (decoder.OverridableInitializers.Any(i => i.Name == LogitsToKeep))
        {
            keepAll = OrtValue.FromArray(new long[] { 0 }, []);
            keepLast = OrtValue.FromArray(new long[] { 1 }, []);
        }
        decoderOutputs = [LogitsOutput, .. package.State.Select(s => s.Output)];
        var logits = decoder.Outputs.FirstOrDefault(o => o.Name == LogitsOutput)
            ?? throw new InvalidDataException($"{package.GraphPath("decoder")}: the decoder has no '{LogitsOutput}' output");
        VocabSize = logits.Dims[^1] > 0 ? (int)logits.Dims[^1] : 0;
        var names = new List<string> { InputIds };
        if (keepAll is not null) names.Add(LogitsToKeep);
        if (AcceptsAttentionMask) names.Add(AttentionMask);
        names.AddRange(package.EncoderFeeds.Select(f => f.DecoderInput));
        names.AddRange(package.State.Select(st => st.Input));
        decoderNames = new RunNames(names, decoderOutputs);
    }

    public ModelPackage Package { get; }
    public InferenceSession Decoder { get; }
    public InferenceSession? Encoder { get; }
    public bool AcceptsAttentionMask { get; }
    public int VocabSize { get; }
    public IReadOnlyList<string> Warnings => Decoder.Warnings;

    public static ModelRunner Open(string packagePath, SessionConfig? config = null)
    {
        var package = ModelPackage.Open(packagePath);
        var decoder = InferenceSession.FromFile(package.GraphPath("decoder"), config);
        InferenceSession? encoder = null;
        try
        {
            if (package.IsEncoderDecoder) encoder = InferenceSession.FromFile(package.GraphPath("encoder"), config);
            return new ModelRunner(package, decoder, encoder);
        }
        catch
        {
            decoder.Dispose();
            encoder?.Dispose();
            throw;
        }
    }

    /// <summary>Fresh state for <paramref name="batch"/> rows: every tensor at its contract's initial value.</summary>
    public ModelState CreateState(int batch)
    {
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), batch, "batch must be at least 1");
        return new ModelState(Package.State, batch);
    }

    /// <summary>Encoder-decoder packages: runs the encoder once and keeps what it feeds the decoder in the state.</summary>
    /// <param name="attentionMask">1 = token, 0 = padding, per encoder position; empty means all tokens.</param>
    public void Encode(ModelState state, ReadOnlySpan<long> ids, int length, ReadOnlySpan<long> attentionMask = default)
    {
        if (Encoder is null) throw new InvalidOperationException($"{Package.Directory}: this package has no encoder");
        CheckIds(ids, state.Batch, length);
        if (!attentionMask.IsEmpty && attentionMask.Length != ids.Length)
            throw new ArgumentException($"encoder attention mask has {attentionMask.Length} entries for {state.Batch} x {length} tokens");
        using var input = OrtValue.FromArray(ids.ToArray(), [state.Batch, length]);
        var names = new List<string> { InputIds };
        var values = new List<OrtValue> { input };
        OrtValue? mask = null;
        if (Encoder.Inputs.Any(i => i.Name == AttentionMask))
        {
            var maskValues = attentionMask.IsEmpty ? Enumerable.Repeat(1L, state.Batch * length).ToArray() : attentionMask.ToArray();
            mask = OrtValue.FromArray(maskValues, [state.Batch, length]);
            names.Add(AttentionMask);
            values.Add(mask);
        }
        try
        {
            string[] outputs = Package.EncoderFeeds.Select(f => f.EncoderOutput).ToArray();
            var results = Encoder.Run(names.ToArray(), values.ToArray(), outputs);
            foreach (var old in state.EncoderOutputs.Values) old.Dispose();
            state.EncoderOutputs.Clear();
            for (int i = 0; i < outputs.Length; i++) state.EncoderOutputs[Package.EncoderFeeds[i].DecoderInput] = results[i];
        }
        finally
        {
            mask?.Dispose();
        }
    }

    /// <summary>
    /// Runs <paramref name="length"/> new positions per row through the decoder and advances the state.
    /// <paramref name="attentionMask"/> (1 = token, 0 = padding) covers the new positions; null means all tokens.
    /// Returns the logits of every new position, [batch, length, vocab].
    /// </summary>
    public Logits Forward(ModelState state, ReadOnlySpan<long> ids, int length, ReadOnlySpan<long> attentionMask = default) =>
        Run(state, ids, length, attentionMask, lastOnly: false);

    /// <summary>
    /// As <see cref="Forward"/>, but returns only each row's last position, [batch, 1, vocab]: what the next
    /// token needs, without copying batch x length x vocab floats out of a prefill.
    /// </summary>
    public Logits ForwardLast(ModelState state, ReadOnlySpan<long> ids, int length, ReadOnlySpan<long> attentionMask = default) =>
        Run(state, ids, length, attentionMask, lastOnly: true);

    private Logits Run(ModelState state, ReadOnlySpan<long> ids, int length, ReadOnlySpan<long> attentionMask, bool lastOnly)
    {
        CheckIds(ids, state.Batch, length);
        if (Package.IsEncoderDecoder && state.EncoderOutputs.Count != Package.EncoderFeeds.Count)
            throw new InvalidOperationException("run Encode before the decoder");
        int batch = state.Batch;
        if (!attentionMask.IsEmpty && attentionMask.Length != batch * length)
            throw new ArgumentException($"attention mask has {attentionMask.Length} entries for {batch} x {length} tokens");
        if (!attentionMask.IsEmpty && !AcceptsAttentionMask && attentionMask.IndexOf(0L) >= 0)
            throw new NotSupportedException($"{Package.ModelType} packages take no attention mask: batch rows must have equal length (no padding)");
        for (int r = 0; r < batch; r++)
            for (int t = 0; t < length; t++)
                state.Mask[r].Add(attentionMask.IsEmpty ? 1 : attentionMask[r * length + t]);

        // Same order as decoderNames: ids, logits_to_keep, mask, encoder feeds, states.
        var inputs = new OrtValue[decoderNames.InputNames.Count];
        int n = 0;
        using var idsValue = OrtValue.FromArray(ids.ToArray(), [batch, length]);
        inputs[n++] = idsValue;
        if (keepAll is not null) inputs[n++] = lastOnly ? keepLast! : keepAll;
        OrtValue? maskValue = null;
        try
        {
            if (AcceptsAttentionMask)
            {
                long total = state.Length;
                var mask = new long[batch * total];
                for (int r = 0; r < batch; r++) state.Mask[r].CopyTo(mask, (int)(r * total));
                maskValue = OrtValue.FromArray(mask, [batch, total]);
                inputs[n++] = maskValue;
            }
            foreach (var (_, decoderInput) in Package.EncoderFeeds) inputs[n++] = state.EncoderOutputs[decoderInput];
            for (int i = 0; i < Package.State.Count; i++) inputs[n++] = state.Current[i];

            var outputs = new OrtValue?[decoderOutputs.Length];
            for (int i = 0; i < Package.State.Count; i++) outputs[i + 1] = state.Spare[i];
            Decoder.Run(decoderNames, inputs, outputs);

            using var logitsValue = outputs[0]!;
            var shape = logitsValue.Shape;
            int rows = (int)shape[0], positions = (int)shape[1], vocab = (int)shape[2];
            var all = logitsValue.AsSpan<float>();
            Logits logits;
            if (lastOnly)
            {
                var last = new float[rows * vocab];
                for (int r = 0; r < rows; r++)
                    all.Slice(((r * positions) + positions - 1) * vocab, vocab).CopyTo(last.AsSpan(r * vocab));
                logits = new Logits(last, rows, 1, vocab);
            }
            else logits = new Logits(all.ToArray(), rows, positions, vocab);
            for (int i = 0; i < Package.State.Count; i++)
            {
                var previous = state.Current[i];
                state.Current[i] = outputs[i + 1]!;
                if (state.Spare[i] is not null) state.Spare[i] = previous; // swap the double buffer
                else previous.Dispose();
            }
            return logits;
        }
        finally
        {
            maskValue?.Dispose();
        }
    }

    private void CheckIds(ReadOnlySpan<long> ids, int batch, int length)
    {
        if (length < 1) throw new ArgumentOutOfRangeException(nameof(length), length, "at least one token per call");
        if (ids.Length != batch * length) throw new ArgumentException($"{ids.Length} ids for batch {batch} x length {length}");
        if (VocabSize <= 0) return;
        foreach (long id in ids)
            if (id < 0 || id >= VocabSize)
                throw new ArgumentException($"token id {id} is outside the model's vocabulary (0..{VocabSize - 1})");
    }

    public void Dispose()
    {
        decoderNames.Dispose();
        keepAll?.Dispose();
        keepLast?.Dispose();
        Decoder.Dispose();
        Encoder?.Dispose();
    }
}
