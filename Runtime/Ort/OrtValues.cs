using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace Recur.Runtime.Ort;

/// <summary>The few tensor conveniences the runtime and its tests use, over Microsoft's OrtValue.</summary>
public static class OrtValues
{
    extension(OrtValue value)
    {
        /// <summary>A tensor over <paramref name="data"/> (pinned for the value's lifetime, no copy).</summary>
        public static OrtValue FromArray<T>(T[] data, long[] shape) where T : unmanaged =>
            OrtValue.CreateTensorValueFromMemory(data, shape);

        /// <summary>An uninitialised tensor in ORT's CPU memory.</summary>
        public static OrtValue Allocate(TensorElementType type, long[] shape) =>
            OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, type, shape);

        public long[] Shape => value.GetTensorTypeAndShape().Shape;

        public TensorElementType ElementType => value.GetTensorTypeAndShape().ElementDataType;

        /// <summary>The elements in place; <typeparamref name="T"/> must be the tensor's type (Float16 for float16).</summary>
        public Span<T> AsSpan<T>() where T : unmanaged => value.GetTensorMutableDataAsSpan<T>();

        public Span<byte> AsBytes() => value.GetTensorMutableRawData();
    }
}
