using System.IO.Compression;
using System.Text;
using Recur.Graphs.Weights;
using static Recur.Package.Tensors.NameSuggestions;
using Recur.Package.Files;

namespace Recur.Export.Checkpoints;

/// <summary>
/// One PyTorch checkpoint in the zip format torch.save writes since 1.6 (pytorch_model.bin, *.pth, *.pt):
/// <code>
/// {archive}/data.pkl      the state dict, pickled (protocol 2); tensors refer to storages by persistent id
///                         ('storage', torch.FloatStorage, key, location, numel)
/// {archive}/data/{key}    each storage's raw little-endian bytes, stored uncompressed
/// {archive}/byteorder     "little" or "big" (absent in files from before torch 1.12: little)
/// </code>
/// The pickle runs in <see cref="PyTorchPickle"/>, which loads nothing but tensors, so opening an
/// untrusted file executes nothing. Everything the pickle says is checked when the file is opened
/// (storages exist and are large enough for every view into them); tensor bytes are read from the
/// zip on demand. Thread-safe: reads are serialised on the one file handle.
/// </summary>
public sealed class PyTorchFile : ITensorSource, IDisposable
{
    // A state dict's pickle is a few bytes per tensor; 1 GiB is far beyond any real one.
    private const long MaxPickleBytes = Recur.Package.Files.InputBudgets.PickleBytes;
    private const int ChunkElements = 1 << 22;

    private readonly ZipArchive archive;
    private readonly Dictionary<string, (PickledTensor Tensor, ZipArchiveEntry Entry)> tensors;
    private readonly IReadOnlyCollection<string> names;
    private readonly Lock gate = new();
    private bool disposed;

    private PyTorchFile(string path, ZipArchive archive, Dictionary<string, (PickledTensor, ZipArchiveEntry)> tensors)
    {
        FilePath = path;
        this.archive = archive;
        this.tensors = tensors;
        names = Array.AsReadOnly(tensors.Keys.Order(StringComparer.Ordinal).ToArray());
    }

    /// <summary>The full path of the file.</summary>
    public string FilePath { get; }

    /// <summary>Tensor names in ordinal order.</summary>
    public IReadOnlyCollection<string> Names => names;

    /// <summary>Opens and checks a file; InvalidDataException for a malformed or refused file, NotSupportedException for a valid one Recur cannot read.</summary>
    public static PyTorchFile Open(string path)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("PyTorch checkpoints are read on little-endian hosts only");
        string full = Path.GetFullPath(path);
        if (InputFiles.KindOf(full) is not InputFiles.Kind.Missing) InputFiles.RequireRegular(full, "PyTorch checkpoint");
        FileStream stream;
        try
        {
            stream = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16, FileOptions.RandomAccess);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new FileNotFoundException($"PyTorch checkpoint {full} does not exist", full, e);
        }

        try
        {
            CheckMagic(full, stream);
            ZipArchive archive;
            try
            {
                archive = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: false);
            }
            catch (InvalidDataException e)
            {
                throw new InvalidDataException($"{full}: not a readable zip archive ({e.Message.TrimEnd('.')}); truncated or damaged (interrupted download?)", e);
            }
            try
            {
                return new PyTorchFile(full, archive, ReadStateDict(full, archive));
            }
            catch
            {
                archive.Dispose();
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
        ObjectDisposedException.ThrowIf(disposed, this);
        if (tensors.TryGetValue(name, out var t))
        {
            entry = new TensorEntry(name, t.Tensor.Storage.DType!.Value, (long[])t.Tensor.Shape.Clone());
            return true;
        }
        entry = null!; // the interface's out parameter is not annotated; callers check the return value
        return false;
    }

    public float[] ReadFloat32(string name)
    {
        var (tensor, entry) = Find(name);
        var dtype = tensor.Storage.DType!.Value;
        long count = ElementCount(tensor.Shape);
        if (count > Array.MaxLength)
            throw new NotSupportedException($"{FilePath}: tensor {Quote(name)} has {count} elements, more than a .NET array holds ({Array.MaxLength})");
        var result = GC.AllocateUninitializedArray<float>((int)count);
        int size = TensorDTypes.SizeOf(dtype);
        if (!IsContiguous(tensor))
        {
            SafetensorsDTypes.ToFloat32(dtype, Gather(name, tensor, entry), result);
            return result;
        }
        var buffer = new byte[(int)Math.Min(count, ChunkElements) * size];
        lock (gate)
        {
            using var stream = OpenAt(entry, tensor.Offset * size);
            for (long done = 0; done < count; done += ChunkElements)
            {
                int n = (int)Math.Min(ChunkElements, count - done);
                ReadExactly(stream, buffer.AsSpan(0, n * size), name);
                SafetensorsDTypes.ToFloat32(dtype, buffer.AsSpan(0, n * size), result.AsSpan((int)done, n));
            }
        }
        return result;
    }

    public void ReadRaw(string name, Span<byte> destination)
    {
        var (tensor, entry) = Find(name);
        int size = TensorDTypes.SizeOf(tensor.Storage.DType!.Value);
        long bytes = ElementCount(tensor.Shape) * size;
        if (destination.Length != bytes)
            throw new ArgumentException(
                $"{FilePath}: tensor {Quote(name)} ({SafetensorsDTypes.NameOf(tensor.Storage.DType!.Value)} [{string.Join(", ", tensor.Shape)}]) has {bytes} bytes, but the destination holds {destination.Length}",
                nameof(destination));
        if (!IsContiguous(tensor))
        {
            Gather(name, tensor, entry).CopyTo(destination);
            return;
        }
        lock (gate)
        {
            using var stream = OpenAt(entry, tensor.Offset * size);
            ReadExactly(stream, destination, name);
        }
    }

    public string Describe(string name)
    {
        Find(name);
        return Path.GetFileName(FilePath);
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        lock (gate) archive.Dispose();
    }

    private (PickledTensor Tensor, ZipArchiveEntry Entry) Find(string name)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (tensors.TryGetValue(name, out var t)) return t;
        throw new KeyNotFoundException($"tensor {Quote(name)} is not in {FilePath}; {ClosestText(name, names)}");
    }

    /// <summary>Zip ("PK"), or the pre-1.6 format, which starts with a pickled magic number instead.</summary>
    private static void CheckMagic(string path, FileStream stream)
    {
        Span<byte> head = stackalloc byte[4];
        int read = RandomAccess.Read(stream.SafeFileHandle, head, 0);
        if (read == 0) throw new InvalidDataException($"{path}: the file is empty (0 bytes; interrupted download?)");
        if (read == 4 && head[0] == (byte)'P' && head[1] == (byte)'K') return;
        if (head[0] == 0x80)
            throw new NotSupportedException(
                $"{path} is in PyTorch's legacy format (torch.save before 1.6, or _use_new_zipfile_serialization=False), which Recur does not read; re-save it with a current torch (torch.save(torch.load(f), f)) or as safetensors");
        throw new InvalidDataException(
            $"{path}: not a PyTorch checkpoint: it starts with bytes {Convert.ToHexString(head[..read])}, expected a zip archive (\"PK\")");
    }

    private static Dictionary<string, (PickledTensor, ZipArchiveEntry)> ReadStateDict(string path, ZipArchive archive)
    {
        var pickles = archive.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1).ToList();
        if (pickles.Count != 1)
            throw new InvalidDataException(pickles.Count == 0
                ? $"{path}: the zip has no {{archive}}/data.pkl, so it is not a torch.save checkpoint (entries: {string.Join(", ", archive.Entries.Take(5).Select(e => e.FullName))}{(archive.Entries.Count > 5 ? ", ..." : "")})"
                : $"{path}: the zip holds {pickles.Count} data.pkl records ({string.Join(", ", pickles.Select(e => e.FullName))}); expected one archive");
        string prefix = pickles[0].FullName[..^"data.pkl".Length];
        if (archive.GetEntry(prefix + "constants.pkl") is not null || archive.GetEntry(prefix + "code/") is not null
            || archive.Entries.Any(e => e.FullName.StartsWith(prefix + "code/", StringComparison.Ordinal)))
            throw new NotSupportedException($"{path} is a TorchScript archive (torch.jit.save), not a state dict; save model.state_dict() with torch.save, or as safetensors");
        CheckByteOrder(path, archive.GetEntry(prefix + "byteorder"));

        string origin = $"{path} ({pickles[0].FullName})";
        var pickle = ReadWhole(path, pickles[0], MaxPickleBytes);
        var storages = new Dictionary<string, PickledStorage>(StringComparer.Ordinal);
        var root = PyTorchPickle.Load(origin, pickle, pid => Storage(origin, pid, storages));
        if (root is not PyTorchPickle.Dict dict)
            throw new InvalidDataException($"{origin}: the pickle holds a {PyTorchPickle.TypeName(root)}, expected a state dict (tensor name -> tensor)");

        long fileLength = new FileInfo(path).Length;
        var result = new Dictionary<string, (PickledTensor, ZipArchiveEntry)>(StringComparer.Ordinal);
        foreach (var (key, value) in dict.Items)
        {
            if (key is not string name)
                throw new InvalidDataException($"{origin}: the state dict has a key {key} ({PyTorchPickle.TypeName(key)}), expected tensor names (str)");
            if (value is not PickledTensor tensor)
                throw new InvalidDataException(
                    $"{origin}: {Quote(name)} is a {PyTorchPickle.TypeName(value)}, not a tensor; expected a state dict (tensor name -> tensor), e.g. torch.save(model.state_dict(), f), not a training checkpoint");
            if (tensor.Storage.DType is null)
                throw new NotSupportedException(
                    $"{origin}: tensor {Quote(name)} is a torch.{tensor.Storage.TypeName} tensor (int16), which Recur does not read");
            var entry = archive.GetEntry($"{prefix}data/{tensor.Storage.Key}")
                ?? throw new InvalidDataException(
                    $"{path}: tensor {Quote(name)} uses storage {Quote(tensor.Storage.Key)}, but the zip has no {prefix}data/{tensor.Storage.Key} record (damaged or incompletely written?)");
            if (entry.CompressedLength > fileLength)
                throw new InvalidDataException($"{path}: record {entry.FullName} claims {entry.CompressedLength} bytes, but the file has only {fileLength} (truncated?)");
            CheckView(origin, name, tensor, entry);
            result.Add(name, (tensor, entry));
        }
        return result;
    }

    /// <summary>The persistent id of a storage; the same key must always name the same storage.</summary>
    private static PickledStorage Storage(string origin, object?[] pid, Dictionary<string, PickledStorage> seen)
    {
        if (pid is not ["storage", var type, string key, string location, long numel])
            throw new InvalidDataException(
                $"{origin}: persistent id ({string.Join(", ", pid.Select(PyTorchPickle.TypeName))}) is not ('storage', type, key, location, numel)");
        // The type is a global the unpickler has already allowed; its text form is "torch.FloatStorage".
        string typeName = PyTorchPickle.TypeName(type);
        if (!typeName.StartsWith("torch.", StringComparison.Ordinal) || !PyTorchPickle.StorageTypes.TryGetValue(typeName["torch.".Length..], out var dtype))
            throw new InvalidDataException($"{origin}: storage {Quote(key)} has type {typeName}, expected a torch storage type");
        if (numel < 0) throw new InvalidDataException($"{origin}: storage {Quote(key)} has {numel} elements");
        var storage = new PickledStorage(typeName["torch.".Length..], dtype, key, location, numel);
        if (seen.TryGetValue(key, out var earlier))
        {
            if (earlier != storage)
                throw new InvalidDataException($"{origin}: storage {Quote(key)} is described twice differently ({earlier.TypeName}[{earlier.Numel}] and {storage.TypeName}[{storage.Numel}])");
            return earlier;
        }
        seen.Add(key, storage);
        return storage;
    }

    /// <summary>The storage record holds its numel elements, and every element of the view lies inside it.</summary>
    private static void CheckView(string origin, string name, PickledTensor tensor, ZipArchiveEntry entry)
    {
        var (storage, offset, shape, stride) = (tensor.Storage, tensor.Offset, tensor.Shape, tensor.Stride);
        int size = TensorDTypes.SizeOf(storage.DType!.Value);
        string view = $"tensor {Quote(name)} ({storage.TypeName} view: shape [{string.Join(", ", shape)}], stride [{string.Join(", ", stride)}], offset {offset})";
        try
        {
            long needed = checked(storage.Numel * size);
            if (entry.Length < needed)
                throw new InvalidDataException($"{origin}: storage {entry.FullName} holds {entry.Length} bytes, but its {storage.Numel} {storage.TypeName} elements need {needed} (truncated?)");
            if (stride.Length != shape.Length || shape.Any(d => d < 0) || stride.Any(s => s < 0) || offset < 0)
                throw new InvalidDataException($"{origin}: {view} is not a valid view (negative sizes or a stride per dimension missing)");
            if (ElementCount(shape) == 0) return;
            long last = offset;
            for (int i = 0; i < shape.Length; i++) last = checked(last + (shape[i] - 1) * stride[i]);
            if (last >= storage.Numel)
                throw new InvalidDataException($"{origin}: {view} reaches element {last}, but storage {Quote(storage.Key)} has only {storage.Numel}");
        }
        catch (OverflowException)
        {
            throw new InvalidDataException($"{origin}: {view} overflows 64-bit offsets");
        }
    }

    private static void CheckByteOrder(string path, ZipArchiveEntry? entry)
    {
        if (entry is null) return; // written only since torch 1.12; earlier files are little-endian
        string order = Encoding.ASCII.GetString(ReadWhole(path, entry, 16));
        if (order == "little") return;
        if (order == "big")
            throw new NotSupportedException($"{path} was saved on a big-endian machine ({entry.FullName} says \"big\"), which Recur does not read; re-save it on a little-endian machine or as safetensors");
        throw new InvalidDataException($"{path}: {entry.FullName} says \"{order}\", expected \"little\" or \"big\"");
    }

    private static byte[] ReadWhole(string path, ZipArchiveEntry entry, long limit)
    {
        if (entry.Length > limit) throw new InvalidDataException($"{path}: {entry.FullName} is {entry.Length} bytes, more than the {limit} it can sensibly be");
        var bytes = new byte[entry.Length];
        try
        {
            using var stream = entry.Open();
            stream.ReadExactly(bytes);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or IOException)
        {
            throw new InvalidDataException($"{path}: cannot read {entry.FullName} ({e.Message.TrimEnd('.')}); truncated or damaged?", e);
        }
        return bytes;
    }

    private static long ElementCount(long[] shape) => shape.Aggregate(1L, (a, d) => a * d);

    /// <summary>Row-major with no gaps; a dimension of size 1 may carry any stride.</summary>
    private static bool IsContiguous(PickledTensor tensor)
    {
        if (ElementCount(tensor.Shape) == 0) return true;
        long expected = 1;
        for (int i = tensor.Shape.Length - 1; i >= 0; i--)
        {
            if (tensor.Shape[i] != 1 && tensor.Stride[i] != expected) return false;
            expected *= tensor.Shape[i];
        }
        return true;
    }

    /// <summary>Copies a strided view element by element into a new row-major buffer (rare: transposed or sliced tensors).</summary>
    private byte[] Gather(string name, PickledTensor tensor, ZipArchiveEntry entry)
    {
        int size = TensorDTypes.SizeOf(tensor.Storage.DType!.Value);
        long count = ElementCount(tensor.Shape);
        long last = tensor.Offset;
        for (int i = 0; i < tensor.Shape.Length; i++) last += (tensor.Shape[i] - 1) * tensor.Stride[i];
        long spanBytes = (last - tensor.Offset + 1) * size;
        if (spanBytes > Array.MaxLength || count * size > Array.MaxLength)
            throw new NotSupportedException($"{FilePath}: tensor {Quote(name)} is a strided view spanning {spanBytes} bytes, more than Recur gathers in one array");
        var span = new byte[spanBytes];
        lock (gate)
        {
            using var stream = OpenAt(entry, tensor.Offset * size);
            ReadExactly(stream, span, name);
        }
        var result = new byte[count * size];
        var index = new long[tensor.Shape.Length];
        for (long n = 0; n < count; n++)
        {
            long at = 0;
            for (int i = 0; i < index.Length; i++) at += index[i] * tensor.Stride[i];
            span.AsSpan((int)(at * size), size).CopyTo(result.AsSpan((int)(n * size), size));
            for (int i = index.Length - 1; i >= 0 && ++index[i] == tensor.Shape[i]; i--) index[i] = 0;
        }
        return result;
    }

    /// <summary>A read stream positioned at a byte offset of a record (stored records seek; deflated ones are read through).</summary>
    private Stream OpenAt(ZipArchiveEntry entry, long offset)
    {
        Stream stream;
        try
        {
            stream = entry.Open();
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{FilePath}: cannot read {entry.FullName} ({e.Message.TrimEnd('.')}); damaged?", e);
        }
        if (offset == 0) return stream;
        if (stream.CanSeek)
        {
            stream.Seek(offset, SeekOrigin.Begin);
            return stream;
        }
        var skip = new byte[(int)Math.Min(offset, 1 << 20)];
        for (long left = offset; left > 0;)
        {
            int n = stream.Read(skip, 0, (int)Math.Min(left, skip.Length));
            if (n == 0) break; // reported by the read that follows
            left -= n;
        }
        return stream;
    }

    private void ReadExactly(Stream stream, Span<byte> destination, string name)
    {
        try
        {
            stream.ReadExactly(destination);
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException)
        {
            throw new InvalidDataException($"{FilePath}: tensor {Quote(name)}: its storage record ended early or is damaged ({e.Message.TrimEnd('.')})", e);
        }
    }
}
