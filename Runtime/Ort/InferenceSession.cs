using System.Runtime.InteropServices;

namespace Recur.Runtime.Ort;

/// <summary>
/// A loaded ONNX model. Run may be called from several threads at once (ORT allows it);
/// Dispose must not race with a Run.
/// </summary>
public sealed unsafe class InferenceSession : IDisposable
{
    private readonly OrtSessionHandle _handle;

    private InferenceSession(OrtSessionHandle handle, string executionProvider, IReadOnlyList<string> warnings)
    {
        _handle = handle;
        ExecutionProvider = executionProvider;
        Warnings = warnings.ToArray();
        Inputs = ReadTensorInfos(Port.Input);
        Outputs = ReadTensorInfos(Port.Output);
        OverridableInitializers = ReadTensorInfos(Port.OverridableInitializer);
        Metadata = ReadMetadata().AsReadOnly();
    }

    /// <summary>
    /// Loads a model file. ORT resolves external-data files relative to the model's directory,
    /// so weights saved next to the model load from any working directory.
    /// </summary>
    public static InferenceSession FromFile(string modelPath, SessionConfig? config = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelPath);
        return Create(new ModelSource(Path.GetFullPath(modelPath), 0, 0), config);
    }

    /// <summary>Loads a serialized ModelProto (external data, if any, is looked up from the working directory).</summary>
    public static InferenceSession FromBytes(ReadOnlySpan<byte> model, SessionConfig? config = null)
    {
        fixed (byte* data = model)
        {
            return Create(new ModelSource(null, (nint)data, (nuint)model.Length), config);
        }
    }

    public IReadOnlyList<TensorInfo> Inputs { get; }

    public IReadOnlyList<TensorInfo> Outputs { get; }

    /// <summary>Graph inputs that have a default (an initializer of the same name): a caller may feed them or not.</summary>
    public IReadOnlyList<TensorInfo> OverridableInitializers { get; }

    /// <summary>The provider actually in use, lower-case: the requested one, or "cpu" after a fallback.</summary>
    public string ExecutionProvider { get; }

    /// <summary>What did not go as configured but did not stop the session (a provider fallback).</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>The model's metadata_props.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>
    /// Runs the model. For each output name, a non-null <paramref name="outputs"/> entry is a caller-owned tensor
    /// that ORT writes into (its shape must match); a null entry receives a new tensor that the caller disposes.
    /// </summary>
    public void Run(
        ReadOnlySpan<string> inputNames, ReadOnlySpan<OrtValue> inputs, ReadOnlySpan<string> outputNames, Span<OrtValue?> outputs)
    {
        if (inputNames.Length != inputs.Length)
        {
            throw new ArgumentException($"{inputNames.Length} input names for {inputs.Length} inputs", nameof(inputs));
        }
        if (outputNames.Length != outputs.Length)
        {
            throw new ArgumentException($"{outputNames.Length} output names for {outputs.Length} outputs", nameof(outputs));
        }
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        using var inputNameArray = new Utf8StringArray(inputNames);
        using var outputNameArray = new Utf8StringArray(outputNames);
        RunCore(inputNames, inputNameArray.Pointers, inputs, outputNameArray.Pointers, outputs);
    }

    /// <summary>As the other Run, with names encoded once in <paramref name="names"/> (see <see cref="RunNames"/>).</summary>
    public void Run(RunNames names, ReadOnlySpan<OrtValue> inputs, Span<OrtValue?> outputs)
    {
        if (names.InputNames.Count != inputs.Length)
        {
            throw new ArgumentException($"{names.InputNames.Count} input names for {inputs.Length} inputs", nameof(inputs));
        }
        if (names.OutputNames.Count != outputs.Length)
        {
            throw new ArgumentException($"{names.OutputNames.Count} output names for {outputs.Length} outputs", nameof(outputs));
        }
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        RunCore(names.InputArray, names.InputPointers, inputs, names.OutputPointers, outputs);
    }

    private void RunCore(ReadOnlySpan<string> inputNames, byte** inputNamePointers, ReadOnlySpan<OrtValue> inputs, byte** outputNamePointers, Span<OrtValue?> outputs)
    {
        var inputHandles = new nint[inputs.Length];
        // ORT allocates an output where the entry is 0 and writes into the given value otherwise.
        var outputHandles = new nint[outputs.Length];
        // Every handle is add-ref'd for the call, so a concurrent Dispose cannot free what ORT is using.
        var held = new List<SafeHandle>(inputs.Length + outputs.Length + 1);
        try
        {
            AddRef(_handle, held);
            for (int i = 0; i < inputs.Length; i++)
            {
                var input = inputs[i] ?? throw new ArgumentNullException(nameof(inputs), $"input '{inputNames[i]}' is null");
                inputHandles[i] = AddRef(input.Handle, held);
            }
            for (int i = 0; i < outputs.Length; i++)
            {
                outputHandles[i] = outputs[i] is { } preallocated ? AddRef(preallocated.Handle, held) : 0;
            }

            var api = OrtLibrary.Api;
            fixed (nint* inputValues = inputHandles)
            fixed (nint* outputValues = outputHandles)
            {
                api.Check(api.Run(
                    _handle.DangerousGetHandle(), 0,
                    inputNamePointers, inputValues, (nuint)inputs.Length,
                    outputNamePointers, (nuint)outputs.Length, outputValues));
            }
        }
        finally
        {
            foreach (var handle in held)
            {
                handle.DangerousRelease();
            }
        }

        for (int i = 0; i < outputs.Length; i++)
        {
            outputs[i] ??= new OrtValue(new OrtValueHandle(outputHandles[i]));
        }
    }

    /// <summary>Runs the model; every output is allocated by ORT and owned by the caller.</summary>
    public OrtValue[] Run(ReadOnlySpan<string> inputNames, ReadOnlySpan<OrtValue> inputs, ReadOnlySpan<string> outputNames)
    {
        var outputs = new OrtValue?[outputNames.Length];
        Run(inputNames, inputs, outputNames, outputs);
        return outputs!;
    }

    public void Dispose() => _handle.Dispose();

    /// <summary>The native handle, for IO binding.</summary>
    internal OrtSessionHandle Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
            return _handle;
        }
    }

    private static nint AddRef(SafeHandle handle, List<SafeHandle> held)
    {
        bool added = false;
        handle.DangerousAddRef(ref added);
        held.Add(handle);
        return handle.DangerousGetHandle();
    }

    private static InferenceSession Create(ModelSource source, SessionConfig? config)
    {
        config ??= new SessionConfig();
        Validate(config);
        var env = OrtLibrary.Env;
        var provider = ExecutionProviders.Normalize(config.ExecutionProvider);
        var warnings = new List<string>();
        OrtSessionHandle session;

        var options = CreateOptions(config);
        try
        {
            if (provider != ExecutionProviders.Cpu)
            {
                try
                {
                    ExecutionProviders.Append(options, config.ExecutionProvider, config.DeviceId);
                }
                catch (OrtException e)
                {
                    if (config.ProviderRequired)
                    {
                        throw new OrtException(e.Code, $"execution provider '{provider}' could not be added: {Readable(e.Message)}", e);
                    }
                    warnings.Add(FallbackWarning(provider, e.Message));
                    provider = ExecutionProviders.Cpu;
                    // Start again from clean options rather than trust a half-applied provider.
                    options.Dispose();
                    options = CreateOptions(config);
                }
            }

            try
            {
                session = Open(env, source, options);
            }
            catch (OrtException e) when (provider != ExecutionProviders.Cpu && !config.ProviderRequired)
            {
                // The provider was accepted but could not build this session (no device, say); CPU may still work.
                // A broken model fails again on CPU, and that error is the one thrown.
                warnings.Add(FallbackWarning(provider, e.Message));
                provider = ExecutionProviders.Cpu;
                options.Dispose();
                options = CreateOptions(config);
                session = Open(env, source, options);
            }
        }
        finally
        {
            options.Dispose();
        }

        try
        {
            return new InferenceSession(session, provider, warnings);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private static string FallbackWarning(string provider, string ortMessage) =>
        $"execution provider '{provider}' could not be loaded ({Readable(ortMessage)}); running on CPU";

    /// <summary>
    /// ORT's message on one line, without the "file.cc:123 function [ONNXRuntimeError] : 1 : FAIL : " prefix
    /// that errors thrown inside ORT carry (the exception's inner OrtException keeps the full text).
    /// </summary>
    private static string Readable(string ortMessage)
    {
        const string marker = "[ONNXRuntimeError] : ";
        var text = ortMessage;
        int at = text.IndexOf(marker, StringComparison.Ordinal);
        if (at >= 0)
        {
            // After the marker come "<code number> : <CODE NAME> : <message>".
            var parts = text[(at + marker.Length)..].Split(" : ", 3);
            if (parts.Length == 3)
            {
                text = parts[2];
            }
        }
        return string.Join(' ', text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    private static void Validate(SessionConfig config)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(config.IntraOpThreads, nameof(config.IntraOpThreads));
        ArgumentOutOfRangeException.ThrowIfNegative(config.InterOpThreads, nameof(config.InterOpThreads));
        ArgumentOutOfRangeException.ThrowIfNegative(config.DeviceId, nameof(config.DeviceId));
        if (!Enum.IsDefined(config.Optimization))
        {
            throw new ArgumentOutOfRangeException(
                nameof(config.Optimization), config.Optimization, "expected Disabled, Basic, Extended or All");
        }
    }

    private static OrtSessionOptionsHandle CreateOptions(SessionConfig config)
    {
        var api = OrtLibrary.Api;
        nint raw;
        api.Check(api.CreateSessionOptions(&raw));
        var options = new OrtSessionOptionsHandle(raw);
        try
        {
            api.Check(api.SetSessionGraphOptimizationLevel(raw, (int)config.Optimization));
            if (config.IntraOpThreads > 0)
            {
                api.Check(api.SetIntraOpNumThreads(raw, config.IntraOpThreads));
            }
            if (config.InterOpThreads > 0)
            {
                api.Check(api.SetInterOpNumThreads(raw, config.InterOpThreads));
            }
            nint handle = raw; // lambdas below cannot capture a local whose address was taken
            foreach (var (key, value) in SessionConfig.Defaults.Where(d => !config.ConfigEntries.ContainsKey(d.Key)).Concat(config.ConfigEntries))
            {
                using var entry = new Utf8StringArray([key, value]);
                api.Check(api.AddSessionConfigEntry(raw, entry.Pointers[0], entry.Pointers[1]));
            }
            if (config.ProfilePrefix is not null)
            {
                WithOrtPath(config.ProfilePrefix, path => api.Check(api.EnableProfiling(handle, (void*)path)));
            }
            if (config.OptimizedModelPath is not null)
            {
                WithOrtPath(config.OptimizedModelPath, path => api.Check(api.SetOptimizedModelFilePath(handle, (void*)path)));
            }
            return options;
        }
        catch
        {
            options.Dispose();
            throw;
        }
    }

    /// <summary>Calls <paramref name="use"/> with a path as ORTCHAR_T* (wchar_t on Windows, UTF-8 elsewhere).</summary>
    private static void WithOrtPath(string path, Action<nint> use)
    {
        if (OperatingSystem.IsWindows())
        {
            fixed (char* wide = path)
            {
                use((nint)wide);
            }
            return;
        }
        using var utf8 = new Utf8StringArray([path]);
        use((nint)utf8.Pointers[0]);
    }

    private static OrtSessionHandle Open(OrtEnvHandle env, ModelSource source, OrtSessionOptionsHandle options)
    {
        var api = OrtLibrary.Api;
        nint session;
        if (source.Path is null)
        {
            api.Check(api.CreateSessionFromArray(
                env.DangerousGetHandle(), (void*)source.Data, source.Length, options.DangerousGetHandle(), &session));
        }
        else if (OperatingSystem.IsWindows())
        {
            // ORTCHAR_T is wchar_t on Windows.
            fixed (char* path = source.Path)
            {
                api.Check(api.CreateSession(env.DangerousGetHandle(), path, options.DangerousGetHandle(), &session));
            }
        }
        else
        {
            using var path = new Utf8StringArray([source.Path]);
            api.Check(api.CreateSession(env.DangerousGetHandle(), path.Pointers[0], options.DangerousGetHandle(), &session));
        }
        return new OrtSessionHandle(session);
    }

    private enum Port { Input, Output, OverridableInitializer }

    private TensorInfo[] ReadTensorInfos(Port port)
    {
        var api = OrtLibrary.Api;
        nint session = _handle.DangerousGetHandle();
        nint allocator = OrtLibrary.DefaultAllocator;
        nuint count;
        api.Check(port switch
        {
            Port.Input => api.SessionGetInputCount(session, &count),
            Port.Output => api.SessionGetOutputCount(session, &count),
            _ => api.SessionGetOverridableInitializerCount(session, &count),
        });

        var infos = new TensorInfo[(int)count];
        for (nuint i = 0; i < count; i++)
        {
            byte* rawName;
            api.Check(port switch
            {
                Port.Input => api.SessionGetInputName(session, i, allocator, &rawName),
                Port.Output => api.SessionGetOutputName(session, i, allocator, &rawName),
                _ => api.SessionGetOverridableInitializerName(session, i, allocator, &rawName),
            });
            string name;
            try
            {
                name = Marshal.PtrToStringUTF8((nint)rawName) ?? string.Empty;
            }
            finally
            {
                api.Check(api.AllocatorFree(allocator, rawName));
            }

            nint typeInfo;
            api.Check(port switch
            {
                Port.Input => api.SessionGetInputTypeInfo(session, i, &typeInfo),
                Port.Output => api.SessionGetOutputTypeInfo(session, i, &typeInfo),
                _ => api.SessionGetOverridableInitializerTypeInfo(session, i, &typeInfo),
            });
            using var typeInfoHandle = new OrtTypeInfoHandle(typeInfo);
            nint tensorInfo;
            // Owned by typeInfo; null when the input is a sequence, map or optional.
            api.Check(api.CastTypeInfoToTensorInfo(typeInfo, &tensorInfo));
            infos[(int)i] = tensorInfo == 0
                ? new TensorInfo(name, TensorElementType.Undefined, [], [])
                : ReadTensorInfo(api, name, tensorInfo);
        }
        return infos;
    }

    private static TensorInfo ReadTensorInfo(OrtApi api, string name, nint tensorInfo)
    {
        int elementType;
        api.Check(api.GetTensorElementType(tensorInfo, &elementType));
        nuint rank;
        api.Check(api.GetDimensionsCount(tensorInfo, &rank));
        var dims = new long[(int)rank];
        var symbolic = new string?[(int)rank];
        var symbolicPointers = new nint[(int)rank];
        fixed (long* dimValues = dims)
        fixed (nint* dimNames = symbolicPointers)
        {
            api.Check(api.GetDimensions(tensorInfo, dimValues, rank));
            api.Check(api.GetSymbolicDimensions(tensorInfo, (byte**)dimNames, rank));
        }
        for (int d = 0; d < symbolic.Length; d++)
        {
            // Unnamed dimensions come back as empty strings.
            var dimName = Marshal.PtrToStringUTF8(symbolicPointers[d]);
            symbolic[d] = string.IsNullOrEmpty(dimName) ? null : dimName;
        }
        return new TensorInfo(name, (TensorElementType)elementType, dims, symbolic);
    }

    private Dictionary<string, string> ReadMetadata()
    {
        var api = OrtLibrary.Api;
        nint allocator = OrtLibrary.DefaultAllocator;
        nint metadata;
        api.Check(api.SessionGetModelMetadata(_handle.DangerousGetHandle(), &metadata));
        using var metadataHandle = new OrtModelMetadataHandle(metadata);

        byte** keys;
        long count;
        api.Check(api.ModelMetadataGetCustomMetadataMapKeys(metadata, allocator, &keys, &count));
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (keys == null)
        {
            return result; // No metadata_props: ORT allocates nothing.
        }
        try
        {
            for (long i = 0; i < count; i++)
            {
                byte* value;
                api.Check(api.ModelMetadataLookupCustomMetadataMap(metadata, allocator, keys[i], &value));
                if (value == null)
                {
                    continue;
                }
                try
                {
                    result[Marshal.PtrToStringUTF8((nint)keys[i]) ?? string.Empty] =
                        Marshal.PtrToStringUTF8((nint)value) ?? string.Empty;
                }
                finally
                {
                    api.Check(api.AllocatorFree(allocator, value));
                }
            }
        }
        finally
        {
            for (long i = 0; i < count; i++)
            {
                api.Check(api.AllocatorFree(allocator, keys[i]));
            }
            api.Check(api.AllocatorFree(allocator, keys));
        }
        return result;
    }

    private readonly record struct ModelSource(string? Path, nint Data, nuint Length);
}
