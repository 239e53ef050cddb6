using System.Runtime.InteropServices;

namespace Recur.Runtime.Ort;

/// <summary>
/// A tensor in CPU memory that ONNX Runtime reads or writes: either a managed array lent to ORT
/// (<see cref="FromArray{T}"/>, pinned until disposal) or a buffer ORT owns (<see cref="Allocate"/>, or a Run output).
/// Numeric and bool tensors only.
/// </summary>
public sealed unsafe class OrtValue : IDisposable
{
    private readonly OrtValueHandle _handle;
    private Layout? _layout;

    internal OrtValue(OrtValueHandle handle) => _handle = handle;

    /// <summary>
    /// Wraps <paramref name="data"/> without copying. The array stays pinned until this value is disposed
    /// (or finalised), so ORT may read and write it across any number of runs.
    /// </summary>
    public static OrtValue FromArray<T>(T[] data, ReadOnlySpan<long> shape)
        where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(data);
        var type = TensorElementTypes.Of<T>();
        long count = ElementCountOf(shape);
        if (count != data.LongLength)
        {
            throw new ArgumentException(
                $"shape {FormatShape(shape)} holds {count} elements but the {typeof(T).Name} array has {data.LongLength}",
                nameof(shape));
        }

        var api = OrtLibrary.Api;
        var memoryInfo = OrtLibrary.CpuMemoryInfo;
        var pin = GCHandle.Alloc(data, GCHandleType.Pinned);
        try
        {
            nint value;
            fixed (long* dims = shape)
            {
                api.Check(api.CreateTensorWithDataAsOrtValue(
                    memoryInfo.DangerousGetHandle(), (void*)pin.AddrOfPinnedObject(), (nuint)(count * sizeof(T)),
                    dims, (nuint)shape.Length, (int)type, &value));
            }
            return new OrtValue(new OrtValueHandle(value, pin)) { _layout = new Layout(type, shape.ToArray(), count) };
        }
        catch
        {
            pin.Free();
            throw;
        }
    }

    /// <summary>A tensor in a buffer owned by ORT's CPU allocator, filled with zeros.</summary>
    public static OrtValue Allocate(TensorElementType type, ReadOnlySpan<long> shape)
    {
        int elementSize = TensorElementTypes.SizeOf(type);
        long count = ElementCountOf(shape);
        var api = OrtLibrary.Api;
        nint value;
        fixed (long* dims = shape)
        {
            api.Check(api.CreateTensorAsOrtValue(OrtLibrary.DefaultAllocator, dims, (nuint)shape.Length, (int)type, &value));
        }
        var tensor = new OrtValue(new OrtValueHandle(value)) { _layout = new Layout(type, shape.ToArray(), count) };
        // ORT hands out uninitialised memory; state buffers rely on starting at zero.
        NativeMemory.Clear(tensor.DataPointer, (nuint)(count * elementSize));
        return tensor;
    }

    public TensorElementType ElementType => GetLayout().ElementType;

    /// <summary>A copy of the dimensions; empty for a scalar.</summary>
    public long[] Shape => (long[])GetLayout().Shape.Clone();

    public long ElementCount => GetLayout().ElementCount;

    /// <summary>
    /// The tensor's memory, valid until this value is disposed. T must match <see cref="ElementType"/>
    /// (ushort is also accepted for Float16 and BFloat16, as raw bits).
    /// </summary>
    public Span<T> AsSpan<T>()
        where T : unmanaged
    {
        var layout = GetLayout();
        if (!TensorElementTypes.CanView<T>(layout.ElementType))
        {
            throw new InvalidOperationException(
                $"this tensor holds {layout.ElementType} elements; it cannot be viewed as {typeof(T).Name}");
        }
        if (layout.ElementCount > int.MaxValue)
        {
            throw new InvalidOperationException(
                $"this tensor has {layout.ElementCount} elements, more than a span can address");
        }
        return new Span<T>(DataPointer, (int)layout.ElementCount);
    }

    /// <summary>The tensor's memory as raw bytes, whatever its element type (for saving and restoring).</summary>
    public Span<byte> AsBytes()
    {
        var layout = GetLayout();
        long bytes = layout.ElementCount * TensorElementTypes.SizeOf(layout.ElementType);
        if (bytes > int.MaxValue)
            throw new InvalidOperationException($"this tensor has {bytes} bytes, more than a span can address");
        return new Span<byte>(DataPointer, (int)bytes);
    }

    public void Dispose() => _handle.Dispose();

    /// <summary>The native handle, for calls that pass this value to ORT (Run, IO binding).</summary>
    internal OrtValueHandle Handle
    {
        get
        {
            ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
            return _handle;
        }
    }

    internal void* DataPointer
    {
        get
        {
            var api = OrtLibrary.Api;
            void* data;
            api.Check(api.GetTensorMutableData(Handle.DangerousGetHandle(), &data));
            return data;
        }
    }

    // Read lazily: a Run output that is not a tensor can still be returned and disposed.
    private Layout GetLayout()
    {
        if (_layout is { } layout)
        {
            ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
            return layout;
        }
        return _layout = ReadLayout();
    }

    private Layout ReadLayout()
    {
        var api = OrtLibrary.Api;
        nint value = Handle.DangerousGetHandle();
        int onnxType;
        api.Check(api.GetValueType(value, &onnxType));
        if (onnxType != OrtApi.OnnxTypeTensor)
        {
            throw new NotSupportedException($"this value is not a tensor (ONNXType {onnxType}); Recur handles tensors only");
        }
        nint info;
        api.Check(api.GetTensorTypeAndShape(value, &info));
        using var infoHandle = new OrtTensorTypeAndShapeInfoHandle(info);
        int elementType;
        api.Check(api.GetTensorElementType(info, &elementType));
        nuint rank;
        api.Check(api.GetDimensionsCount(info, &rank));
        var shape = new long[(int)rank];
        fixed (long* dims = shape)
        {
            api.Check(api.GetDimensions(info, dims, rank));
        }
        nuint count;
        api.Check(api.GetTensorShapeElementCount(info, &count));
        return new Layout((TensorElementType)elementType, shape, checked((long)count));
    }

    private static long ElementCountOf(ReadOnlySpan<long> shape)
    {
        long count = 1;
        foreach (long dim in shape)
        {
            if (dim < 0)
            {
                throw new ArgumentException($"shape {FormatShape(shape)} has a negative dimension", nameof(shape));
            }
            count = checked(count * dim);
        }
        return count;
    }

    internal static string FormatShape(ReadOnlySpan<long> shape) => $"[{string.Join(", ", shape.ToArray())}]";

    private sealed record Layout(TensorElementType ElementType, long[] Shape, long ElementCount);
}
