using System.Runtime.InteropServices;

namespace Recur.Runtime.Ort;

// One SafeHandle per ONNX Runtime object type: the release function runs exactly once, also when
// an owner is finalised instead of disposed, and DangerousAddRef keeps a handle alive during a call.
// A handle only exists after the library loaded, so OrtLibrary.Api is always bound when they release.

internal abstract class OrtHandle : SafeHandle
{
    protected OrtHandle(nint handle)
        : base(invalidHandleValue: 0, ownsHandle: true) => SetHandle(handle);

    public sealed override bool IsInvalid => handle == 0;
}

/// <summary>Created once per process and never released (see <see cref="OrtLibrary"/>).</summary>
internal sealed class OrtEnvHandle : OrtHandle
{
    internal OrtEnvHandle(nint handle)
        : base(handle)
    {
    }
    protected override unsafe bool ReleaseHandle()
    {
        OrtLibrary.Api.ReleaseEnv(handle);
        return true;
    }
}

internal sealed class OrtSessionOptionsHandle : OrtHandle
{
    internal OrtSessionOptionsHandle(nint handle)
        : base(handle)
    {
    }
    protected override unsafe bool ReleaseHandle()
    {
        OrtLibrary.Api.ReleaseSessionOptions(handle);
        return true;
    }
}

internal sealed class OrtSessionHandle : OrtHandle
{
    internal OrtSessionHandle(nint handle)
        : base(handle)
    {
    }
    protected override unsafe bool ReleaseHandle()
    {
        OrtLibrary.Api.ReleaseSession(handle);
        return true;
    }
}

internal sealed class OrtMemoryInfoHandle : OrtHandle
{
    internal OrtMemoryInfoHandle(nint handle)
        : base(handle)
    {
    }
    protected override unsafe bool ReleaseHandle()
    {
        OrtLibrary.Api.ReleaseMemoryInfo(handle);
        return true;
    }
}

internal sealed class OrtTypeInfoHandle : OrtHandle
{
    internal OrtTypeInfoHandle(nint handle)
        : base(handle)
    {
    }
    protected override unsafe bool ReleaseHandle()
    {
        OrtLibrary.Api.ReleaseTypeInfo(handle);
        return true;
    }
}

internal sealed class OrtTensorTypeAndShapeInfoHandle : OrtHandle
{
    internal OrtTensorTypeAndShapeInfoHandle(nint handle)
        : base(handle)
    {
    }
    protected override unsafe bool ReleaseHandle()
    {
        OrtLibrary.Api.ReleaseTensorTypeAndShapeInfo(handle);
        return true;
    }
}

internal sealed class OrtModelMetadataHandle : OrtHandle
{
    internal OrtModelMetadataHandle(nint handle)
        : base(handle)
    {
    }
    protected override unsafe bool ReleaseHandle()
    {
        OrtLibrary.Api.ReleaseModelMetadata(handle);
        return true;
    }
}

internal sealed class OrtCUDAProviderOptionsHandle : OrtHandle
{
    internal OrtCUDAProviderOptionsHandle(nint handle)
        : base(handle)
    {
    }
    protected override unsafe bool ReleaseHandle()
    {
        OrtLibrary.Api.ReleaseCUDAProviderOptions(handle);
        return true;
    }
}

internal sealed class OrtIoBindingHandle : OrtHandle
{
    internal OrtIoBindingHandle(nint handle)
        : base(handle)
    {
    }
    protected override unsafe bool ReleaseHandle()
    {
        OrtLibrary.Api.ReleaseIoBinding(handle);
        return true;
    }
}

/// <summary>
/// An OrtValue, plus the pin on the managed array under it when ORT only borrows that memory:
/// the pin is freed after the value, so ORT never sees the array move.
/// </summary>
internal sealed class OrtValueHandle : OrtHandle
{
    private GCHandle _pin;

    internal OrtValueHandle(nint handle, GCHandle pin = default)
        : base(handle) => _pin = pin;

    protected override unsafe bool ReleaseHandle()
    {
        OrtLibrary.Api.ReleaseValue(handle);
        if (_pin.IsAllocated)
        {
            _pin.Free();
        }
        return true;
    }
}
