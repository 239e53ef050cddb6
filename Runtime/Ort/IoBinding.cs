namespace Recur.Runtime.Ort;

/// <summary>
/// Inputs and outputs bound to a session once and reused across runs (a decode loop's state buffers),
/// so a step passes no names. ORT keeps its own reference to each bound tensor, but a tensor over a managed
/// array must not be disposed while bound: the binding keeps those values reachable until rebound or disposed.
/// </summary>
internal sealed unsafe class IoBinding : IDisposable
{
    private readonly InferenceSession _session;
    private readonly OrtIoBindingHandle _handle;
    private readonly Dictionary<string, OrtValue> _inputs = new(StringComparer.Ordinal);
    private readonly Dictionary<string, OrtValue> _outputs = new(StringComparer.Ordinal);

    internal IoBinding(InferenceSession session)
    {
        _session = session;
        var api = OrtLibrary.Api;
        nint binding;
        api.Check(api.CreateIoBinding(session.Handle.DangerousGetHandle(), &binding));
        _handle = new OrtIoBindingHandle(binding);
    }

    internal void BindInput(string name, OrtValue value)
    {
        var api = OrtLibrary.Api;
        using var utf8 = new Utf8StringArray([name]);
        api.Check(api.BindInput(Handle, utf8.Pointers[0], value.Handle.DangerousGetHandle()));
        _inputs[name] = value;
    }

    internal void BindOutput(string name, OrtValue value)
    {
        var api = OrtLibrary.Api;
        using var utf8 = new Utf8StringArray([name]);
        api.Check(api.BindOutput(Handle, utf8.Pointers[0], value.Handle.DangerousGetHandle()));
        _outputs[name] = value;
    }

    /// <summary>Lets ORT allocate the output (in CPU memory) on each run; read it with <see cref="GetOutputValues"/>.</summary>
    internal void BindOutputToCpu(string name)
    {
        var api = OrtLibrary.Api;
        using var utf8 = new Utf8StringArray([name]);
        api.Check(api.BindOutputToDevice(Handle, utf8.Pointers[0], OrtLibrary.CpuMemoryInfo.DangerousGetHandle()));
        _outputs.Remove(name);
    }

    internal void Run()
    {
        var api = OrtLibrary.Api;
        api.Check(api.RunWithBinding(_session.Handle.DangerousGetHandle(), 0, Handle));
    }

    /// <summary>New references to every bound output, in binding order; the caller disposes them.</summary>
    internal OrtValue[] GetOutputValues()
    {
        var api = OrtLibrary.Api;
        nint allocator = OrtLibrary.DefaultAllocator;
        nint* values;
        nuint count;
        api.Check(api.GetBoundOutputValues(Handle, allocator, &values, &count));
        if (values == null)
        {
            return [];
        }
        try
        {
            var result = new OrtValue[(int)count];
            for (int i = 0; i < result.Length; i++)
            {
                result[i] = new OrtValue(new OrtValueHandle(values[i]));
            }
            return result;
        }
        finally
        {
            api.Check(api.AllocatorFree(allocator, values));
        }
    }

    internal void ClearBoundInputs()
    {
        OrtLibrary.Api.ClearBoundInputs(Handle);
        _inputs.Clear();
    }

    internal void ClearBoundOutputs()
    {
        OrtLibrary.Api.ClearBoundOutputs(Handle);
        _outputs.Clear();
    }

    public void Dispose()
    {
        _handle.Dispose();
        _inputs.Clear();
        _outputs.Clear();
    }

    private nint Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
            return _handle.DangerousGetHandle();
        }
    }
}
