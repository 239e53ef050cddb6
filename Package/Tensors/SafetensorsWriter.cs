using System.Runtime.InteropServices;
using System.Text.Json;
using Recur.Package.Files;

namespace Recur.Package.Tensors;

/// <summary>Writes float32 / int64 tensors as a safetensors file (for `recur logits` outputs and tests).</summary>
public static class SafetensorsWriter
{
    public sealed record Tensor(string Name, string DType, long[] Shape, byte[] Data)
    {
        public static Tensor Float32(string name, long[] shape, ReadOnlySpan<float> values) =>
            new(name, "F32", shape, MemoryMarshal.AsBytes(values).ToArray());
        public static Tensor Int64(string name, long[] shape, ReadOnlySpan<long> values) =>
            new(name, "I64", shape, MemoryMarshal.AsBytes(values).ToArray());
    }

    /// <summary>Writes atomically (<see cref="AtomicFile"/>); <paramref name="what"/> names the file's role in messages.</summary>
    public static void Write(string path, IEnumerable<Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null, string what = "output")
    {
        var list = tensors.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
        var header = new Dictionary<string, object>();
        if (metadata is { Count: > 0 }) header["__metadata__"] = metadata;
        long offset = 0;
        foreach (var t in list)
        {
            header[t.Name] = new { dtype = t.DType, shape = t.Shape, data_offsets = new[] { offset, offset + t.Data.LongLength } };
            offset += t.Data.LongLength;
        }
        byte[] json = JsonSerializer.SerializeToUtf8Bytes(header);
        int pad = (8 - json.Length % 8) % 8; // keeps the data 8-byte aligned, as the format recommends
        AtomicFile.Write(path, what, file =>
        {
            file.Write(BitConverter.GetBytes((ulong)(json.Length + pad)));
            file.Write(json);
            for (int i = 0; i < pad; i++) file.WriteByte((byte)' ');
            foreach (var t in list) file.Write(t.Data);
        });
    }
}
