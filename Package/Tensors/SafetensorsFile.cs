using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using static Recur.Package.Tensors.NameSuggestions;
using Recur.Package.Files;

namespace Recur.Package.Tensors;

/// <summary>
/// One .safetensors file, memory-mapped read-only. Layout: an 8-byte little-endian header length N,
/// N bytes of UTF-8 JSON describing every tensor, then the byte buffer the tensors tile exactly.
/// Everything in the header is checked when the file is opened; reads are then bounds-safe copies
/// out of the mapping. Thread-safe for concurrent reads.
/// </summary>
public sealed unsafe class SafetensorsFile : ITensorSource, IDisposable
{
    private readonly MemoryMappedFile map;
    private readonly MemoryMappedViewAccessor view;
    private readonly byte* buffer; // the first byte after the header
    private readonly SafetensorsHeader header;
    private readonly IReadOnlyCollection<string> names;
    private bool disposed;

    private SafetensorsFile(string path, SafetensorsHeader header, MemoryMappedFile map, MemoryMappedViewAccessor view, long bufferStart)
    {
        FilePath = path;
        this.header = header;
        this.map = map;
        this.view = view;
        byte* start = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref start);
        buffer = start + view.PointerOffset + bufferStart;
        names = Array.AsReadOnly(header.Tensors.Keys.Order(StringComparer.Ordinal).ToArray());
    }

    /// <summary>The full path of the file.</summary>
    public string FilePath { get; }

    /// <summary>The header's "__metadata__" (string to string; empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata => header.Metadata;

    /// <summary>Tensor names in ordinal order.</summary>
    public IReadOnlyCollection<string> Names => names;

    /// <summary>Opens and validates a file; throws InvalidDataException naming the file and the problem if it is malformed.</summary>
    public static SafetensorsFile Open(string path)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("safetensors data is little-endian; Recur reads it only on little-endian hosts");
        string full = Path.GetFullPath(path);
        if (InputFiles.KindOf(full) is not InputFiles.Kind.Missing) InputFiles.RequireRegular(full, "safetensors file");
        FileStream stream;
        try
        {
            stream = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.RandomAccess);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new FileNotFoundException($"safetensors file {full} does not exist", full, e);
        }

        try
        {
            long length = stream.Length;
            if (length == 0)
                throw new InvalidDataException(
                    $"{full}: the file is empty (0 bytes); a safetensors file starts with an 8-byte header length (interrupted download?)");
            if (length < sizeof(ulong))
                throw new InvalidDataException(
                    $"{full}: the file is {length} bytes, shorter than the 8-byte header length a safetensors file starts with (truncated?)");

            Span<byte> prefix = stackalloc byte[sizeof(ulong)];
            ReadExactly(stream, prefix, 0);
            ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
            long available = length - sizeof(ulong);
            if (headerLength > (ulong)available)
                throw new InvalidDataException(
                    $"{full}: header length {headerLength} runs past the end of the file ({length} bytes, so at most {available}); truncated, or not a safetensors file");
            if (headerLength > SafetensorsHeader.MaxBytes)
                throw new InvalidDataException(
                    $"{full}: header length {headerLength} exceeds the {SafetensorsHeader.MaxBytes}-byte safetensors limit; not a safetensors file, or a damaged one");

            var json = new byte[headerLength];
            ReadExactly(stream, json, sizeof(ulong));
            long bufferStart = sizeof(ulong) + (long)headerLength;
            var header = SafetensorsHeader.Parse(full, json, length - bufferStart);

            var map = MemoryMappedFile.CreateFromFile(stream, mapName: null, capacity: 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            try
            {
                var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
                return new SafetensorsFile(full, header, map, view, bufferStart);
            }
            catch
            {
                map.Dispose();
                throw;
            }
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    public bool TryGetEntry(string name, out TensorEntry entry)
    {
        if (header.Tensors.TryGetValue(name, out var slot))
        {
            // A copy, so a caller that edits the shape array cannot corrupt this file's view of it.
            entry = slot.Entry with { Shape = (long[])slot.Entry.Shape.Clone() };
            return true;
        }
        entry = null!; // the interface's out parameter is not annotated; callers check the return value
        return false;
    }

    public float[] ReadFloat32(string name)
    {
        var slot = Slot(name);
        long count = slot.Entry.ElementCount;
        if (count > Array.MaxLength)
            throw new NotSupportedException(
                $"{FilePath}: tensor {Quote(name)} has {count} elements, more than a .NET array holds ({Array.MaxLength})");
        var result = GC.AllocateUninitializedArray<float>((int)count);
        int size = TensorDTypes.SizeOf(slot.Entry.DType);
        // Spans are limited to int.MaxValue bytes, so a tensor above 2 GB converts in chunks.
        int chunk = int.MaxValue / size / 2;
        for (long done = 0; done < count; done += chunk)
        {
            int n = (int)Math.Min(chunk, count - done);
            var source = new ReadOnlySpan<byte>(buffer + slot.Begin + done * size, n * size);
            SafetensorsDTypes.ToFloat32(slot.Entry.DType, source, result.AsSpan((int)done, n));
        }
        return result;
    }

    public void ReadRaw(string name, Span<byte> destination)
    {
        var slot = Slot(name);
        if (destination.Length != slot.Length)
            throw new ArgumentException(
                $"{FilePath}: tensor {Quote(name)} ({SafetensorsDTypes.NameOf(slot.Entry.DType)} [{string.Join(", ", slot.Entry.Shape)}]) has {slot.Length} bytes, but the destination holds {destination.Length}",
                nameof(destination));
        new ReadOnlySpan<byte>(buffer + slot.Begin, destination.Length).CopyTo(destination);
    }

    public string Describe(string name)
    {
        Slot(name);
        return Path.GetFileName(FilePath);
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        view.SafeMemoryMappedViewHandle.ReleasePointer();
        view.Dispose();
        map.Dispose();
    }

    private TensorSlot Slot(string name)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (header.Tensors.TryGetValue(name, out var slot)) return slot;
        throw new KeyNotFoundException($"tensor {Quote(name)} is not in {FilePath}; {ClosestText(name, names)}");
    }

    private static void ReadExactly(FileStream stream, Span<byte> destination, long offset)
    {
        while (!destination.IsEmpty)
        {
            int read = RandomAccess.Read(stream.SafeFileHandle, destination, offset);
            if (read == 0)
                throw new InvalidDataException($"{stream.Name}: the file ended at byte {offset} while reading its header (it changed while being read?)");
            destination = destination[read..];
            offset += read;
        }
    }
}
