using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace Recur.Tests.Checkpoints;

/// <summary>A tensor as the test helpers see it: the safetensors dtype name, the shape and the raw bytes.</summary>
public sealed record RawTensor(string Name, string DType, long[] Shape, byte[] Data);

/// <summary>
/// A tiny safetensors writer and an independent reader (System.Text.Json and offsets, nothing of the
/// code under test), for building well-formed and malformed files in tests.
/// </summary>
public static class SafetensorsTestFiles
{
    /// <summary>Writes a well-formed file as the safetensors library does: tensors in order, header padded to 8 bytes.</summary>
    public static void Write(string path, IEnumerable<RawTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        using var json = new MemoryStream();
        using (var writer = new Utf8JsonWriter(json))
        {
            writer.WriteStartObject();
            if (metadata is not null)
            {
                writer.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata) writer.WriteString(key, value);
                writer.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in list)
            {
                writer.WriteStartObject(t.Name);
                writer.WriteString("dtype", t.DType);
                writer.WriteStartArray("shape");
                foreach (long d in t.Shape) writer.WriteNumberValue(d);
                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offset);
                writer.WriteNumberValue(offset + t.Data.Length);
                writer.WriteEndArray();
                writer.WriteEndObject();
                offset += t.Data.Length;
            }
            writer.WriteEndObject();
        }
        var header = json.ToArray().ToList();
        while ((8 + header.Count) % 8 != 0) header.Add((byte)' ');
        WriteRaw(path, [.. header], list.SelectMany(t => t.Data).ToArray());
    }

    /// <summary>Writes an 8-byte length, the given header bytes and the data; for malformed files.</summary>
    public static void WriteRaw(string path, byte[] header, byte[] data) =>
        File.WriteAllBytes(path, [.. Prefix((ulong)header.Length), .. header, .. data]);

    /// <summary>A header given as JSON text followed by dataBytes zero bytes.</summary>
    public static byte[] Bytes(string headerJson, int dataBytes)
    {
        var header = Encoding.UTF8.GetBytes(headerJson);
        return [.. Prefix((ulong)header.Length), .. header, .. new byte[dataBytes]];
    }

    public static byte[] Prefix(ulong headerLength)
    {
        var prefix = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, headerLength);
        return prefix;
    }

    /// <summary>Reads a well-formed file without the code under test.</summary>
    public static List<RawTensor> Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        using var doc = JsonDocument.Parse(bytes.AsMemory(8, (int)n));
        var result = new List<RawTensor>();
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (p.Name == "__metadata__") continue;
            var offsets = p.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            result.Add(new RawTensor(
                p.Name,
                p.Value.GetProperty("dtype").GetString()!,
                p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray(),
                bytes[(int)(8 + n + offsets[0])..(int)(8 + n + offsets[1])]));
        }
        return result;
    }
}

/// <summary>A fresh temporary folder, deleted on dispose.</summary>
public sealed class TempFolder : IDisposable
{
    public TempFolder() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "recur-tests-" + Guid.NewGuid().ToString("N"));

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { } // a file still mapped on some OS; the temp folder is cleaned eventually
    }
}
