using Microsoft.ML.OnnxRuntime;
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
/// Drives any package from its recur.json: prefill and decode go through the same decoder graph, feeding each
/// present.* output back as the matching past_key_values.* input. Knows no architecture.
/// Calls go through one IOBinding: state inputs are bound to the state's current buffers and fixed-size state
/// outputs to its spare buffers, so ONNX Runtime writes the next state in place (<see cref="ModelState"/>).
/// </summary>
public sealed class ModelRunner : IDisposable
{
    private readonly LoadedSession decoder;
    private readonly LoadedSession? encoder;
    private readonly OrtIoBinding binding;
    private readonly RunOptions runOptions = new();
    // Scalars fed as logits_to_keep when the decoder has it: 0 for Forward, 1 for ForwardLast.
    private readonly OrtValue? keepAll, keepLast;
    // False only to measure what the binding saves: every output is then allocated by ORT on each call.
    private readonly bool reuseBuffers;

    private ModelRunner(ModelPackage package, LoadedSession decoder, LoadedSession? encoder, bool reuseBuffers)
    {
        Package = package;
        this.decoder = decoder;
        this.encoder = encoder;
        this.reuseBuffers = reuseBuffers;
        var session = decoder.Session;
        var inputs = session.InputMetadata;
        string graph = package.GraphPath("decoder");
        if (!inputs.ContainsKey(Contract.InputIds)) throw new InvalidDataException($"{graph}: the decoder has no '{Contract.InputIds}' input");
        foreach (var s in package.State)
        {
            if (!inputs.ContainsKey(s.Input)) throw new InvalidDataException($"{graph}: recur.json names state input '{s.Input}' that the graph does not have");
            if (!session.OutputMetadata.ContainsKey(s.Output)) throw new InvalidDataException($"{graph}: recur.json names state output '{s.Output}' that the graph does not have");
            // recur.json's shape must be one the graph accepts, or ONNX Runtime would refuse the first call.
            var dims = inputs[s.Input].Dimensions;
            if (dims.Length != s.Shape.Count || s.Shape.Select((d, i) => d is long n && dims[i] > 0 && n != dims[i]).Any(bad => bad))
                throw new InvalidDataException(
                    $"{package.Directory}/{PackageManifest.FileName}: state '{s.Input}' has shape [{string.Join(", ", s.Shape)}], but the graph's input is [{string.Join(", ", dims.Select(d => d > 0 ? d.ToString(System.Globalization.CultureInfo.InvariantCulture) : "?"))}]");
        }
        foreach (var (_, decoderInput) in package.EncoderFeeds)
            if (!inputs.ContainsKey(decoderInput)) throw new InvalidDataException($"{graph}: encoder feed '{decoderInput}' is not a decoder input");
        AcceptsAttentionMask = inputs.ContainsKey(Contract.AttentionMask);
        // ORT lists an input that has a default initializer among the overridable initializers, not the inputs.
        if (session.OverridableInitializerMetadata.ContainsKey(Contract.LogitsToKeep))
        {
            keepAll = OrtValue.FromArray(new long[] { 0 }, []);
            keepLast = OrtValue.FromArray(new long[] { 1 }, []);
        }
        if (!session.OutputMetadata.TryGetValue(Contract.Logits, out var logits))
            throw new InvalidDataException($"{graph}: the decoder has no '{Contract.Logits}' output");
        VocabSize = logits.Dimensions.Length == 3 && logits.Dimensions[^1] > 0 ? logits.Dimensions[^1] : 0;
        binding = session.CreateIoBinding();
    }

    public ModelPackage Package { get; }
    public InferenceSession Decoder => decoder.Session;
    public InferenceSession? Encoder => encoder?.Session;
    public bool AcceptsAttentionMask { get; }
    public int VocabSize { get; }
    /// <summary>The provider the decoder runs on ("cpu" after a fallback).</summary>
    public string ExecutionProvider => decoder.ExecutionProvider;
    public IReadOnlyList<string> Warnings => decoder.Warnings;

    public static ModelRunner Open(string packagePath, SessionConfig? config = null) => Open(packagePath, config, reuseBuffers: true);

    internal static ModelRunner Open(string packagePath, SessionConfig? config, bool reuseBuffers)
    {
        var package = ModelPackage.Open(packagePath);
        var decoder = SessionFactory.Open(package.GraphPath("decoder"), config);
        LoadedSession? encoder = null;
        try
        {
            if (package.IsEncoderDecoder) encoder = SessionFactory.Open(package.GraphPath("encoder"), config);
            return new ModelRunner(package, decoder, encoder, reuseBuffers);
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
        var session = Encoder ?? throw new InvalidOperationException($"{Package.Directory}: this package has no encoder");
        CheckIds(ids, state.Batch, length);
        if (!attentionMask.IsEmpty && attentionMask.Length != ids.Length)
            throw new ArgumentException($"encoder attention mask has {attentionMask.Length} entries for {state.Batch} x {length} tokens");
        var names = new List<string> { Contract.InputIds };
        var values = new List<OrtValue> { OrtValue.FromArray(ids.ToArray(), [state.Batch, length]) };
        try
        {
            if (session.InputMetadata.ContainsKey(Contract.AttentionMask))
            {
                var maskValues = attentionMask.IsEmpty ? Enumerable.Repeat(1L, state.Batch * length).ToArray() : attentionMask.ToArray();
                names.Add(Contract.AttentionMask);
                values.Add(OrtValue.FromArray(maskValues, [state.Batch, length]));
            }
            string[] outputs = Package.EncoderFeeds.Select(f => f.EncoderOutput).ToArray();
            // The results are kept in the state (which disposes them), so the collection itself is not disposed.
            var results = session.Run(runOptions, names, values, outputs);
            foreach (var old in state.EncoderOutputs.Values) old.Dispose();
            state.EncoderOutputs.Clear();
            for (int i = 0; i < outputs.Length; i++) state.EncoderOutputs[Package.EncoderFeeds[i].DecoderInput] = results[i];
        }
        finally
        {
            foreach (var v in values) v.Dispose();
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
    /// As <see cref="Forward"/>, but returns only each row's last position, [batch, 1, vocab]: what the next token
    /// needs. The logits live in the state's reused buffer: they are valid until the next call on that state.
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
        foreach (var s in Package.State)
            if (s.Capacity is long capacity && state.Length + length > capacity)
                throw new InvalidOperationException(
                    $"{s.Input}: the cache holds {capacity} positions, and {state.Length} + {length} were asked (convert with a larger --kv-cache-length)");

        var inputs = new List<OrtValue>(2);
        try
        {
            binding.ClearBoundInputs();
            binding.ClearBoundOutputs();
            inputs.Add(OrtValue.FromArray(ids.ToArray(), [batch, length]));
            binding.BindInput(Contract.InputIds, inputs[^1]);
            if (keepAll is not null) binding.BindInput(Contract.LogitsToKeep, lastOnly ? keepLast! : keepAll);
            if (AcceptsAttentionMask)
            {
                long total = state.Length + length;
                var mask = new long[batch * total];
                for (int r = 0; r < batch; r++)
                {
                    state.Mask[r].CopyTo(mask, (int)(r * total));
                    for (int t = 0; t < length; t++)
                        mask[r * total + state.Length + t] = attentionMask.IsEmpty ? 1 : attentionMask[r * length + t];
                }
                inputs.Add(OrtValue.FromArray(mask, [batch, total]));
                binding.BindInput(Contract.AttentionMask, inputs[^1]);
            }
            foreach (var (_, decoderInput) in Package.EncoderFeeds) binding.BindInput(decoderInput, state.EncoderOutputs[decoderInput]);
            for (int i = 0; i < Package.State.Count; i++) binding.BindInput(Package.State[i].Input, state.Current[i]);

            // Outputs in this order: logits, then every state. Preallocated where the shape is known ahead.
            bool logitsInPlace = reuseBuffers && lastOnly && keepAll is not null && VocabSize > 0;
            var lastLogits = logitsInPlace ? state.LastLogits(VocabSize) : default;
            if (logitsInPlace) binding.BindOutput(Contract.Logits, lastLogits.Value);
            else binding.BindOutputToDevice(Contract.Logits, OrtMemoryInfo.DefaultInstance);
            for (int i = 0; i < Package.State.Count; i++)
            {
                if (Package.State[i].InPlaceAxis is not null) binding.BindOutput(Package.State[i].Output, state.Current[i]);
                else if (reuseBuffers && state.Spare[i] is { } spare) binding.BindOutput(Package.State[i].Output, spare);
                else binding.BindOutputToDevice(Package.State[i].Output, OrtMemoryInfo.DefaultInstance);
            }

            Decoder.RunWithBinding(runOptions, binding);
            var produced = binding.GetOutputValues();

            Logits logits;
            if (logitsInPlace) logits = new Logits(lastLogits.Data, batch, 1, VocabSize);
            else logits = CopyLogits(produced[0], lastOnly);
            produced[0].Dispose();
            for (int i = 0; i < Package.State.Count; i++)
            {
                var previous = state.Current[i];
                if (Package.State[i].InPlaceAxis is not null) produced[i + 1].Dispose(); // written into Current itself
                else if (reuseBuffers && state.Spare[i] is { } spare)
                {
                    produced[i + 1].Dispose(); // a second handle on the spare buffer ORT wrote into
                    state.Current[i] = spare;
                    state.Spare[i] = previous;
                }
                else
                {
                    state.Current[i] = produced[i + 1];
                    previous.Dispose();
                }
            }
            for (int r = 0; r < batch; r++)
                for (int t = 0; t < length; t++)
                    state.Mask[r].Add(attentionMask.IsEmpty ? 1 : attentionMask[r * length + t]);
            return logits;
        }
        finally
        {
            foreach (var v in inputs) v.Dispose();
        }
    }

    private static Logits CopyLogits(OrtValue value, bool lastOnly)
    {
        var shape = value.Shape;
        int rows = (int)shape[0], positions = (int)shape[1], vocab = (int)shape[2];
        ReadOnlySpan<float> all = value.AsSpan<float>();
        if (!lastOnly) return new Logits(all.ToArray(), rows, positions, vocab);
        var last = new float[rows * vocab];
        for (int r = 0; r < rows; r++)
            all.Slice(((r * positions) + positions - 1) * vocab, vocab).CopyTo(last.AsSpan(r * vocab));
        return new Logits(last, rows, 1, vocab);
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
        binding.Dispose();
        runOptions.Dispose();
        keepAll?.Dispose();
        keepLast?.Dispose();
        decoder.Dispose();
        encoder?.Dispose();
    }
}
