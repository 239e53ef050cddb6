using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Recur.Tests.Checkpoints;

/// <summary>
/// Writes files in torch.save's zip layout without torch: a small pickle writer that emits the opcodes
/// Python's pickler (protocol 2) produces for a state dict, and the zip around it. The structure follows
/// torch/serialization.py (_save): {archive}/data.pkl, {archive}/byteorder, {archive}/data/{key}, with
/// tensors pickled as torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
/// OrderedDict()) and storages as persistent ids ('storage', torch.FloatStorage, key, 'cpu', numel).
/// Generated in the tests, so no binary fixture is committed and malformed variants are one edit away.
/// </summary>
public static class TorchSaveFiles
{
    /// <summary>A tensor to save: storage bytes, its torch storage type, and the view into it.</summary>
    public sealed record Tensor(string Name, string StorageType, long[] Shape, byte[] Storage, long[]? Stride = null, long Offset = 0, string? Key = null, bool AsParameter = false);

    // Values the writer knows how to pickle besides None, bool, int, float, str and tuples (object?[]).
    public sealed record Global(string Module, string Name, bool Stacked = false);
    public sealed record Call(object Callable, object?[] Args);
    public sealed record Persistent(object?[] Id);
    public sealed record OrderedDict(IReadOnlyList<KeyValuePair<object, object?>> Items);
    public sealed record PyList(IReadOnlyList<object?> Items);
    /// <summary>Opcode bytes written as they are, for malformed pickles.</summary>
    public sealed record Raw(byte[] Bytes);

    public static readonly Global RebuildTensorV2 = new("torch._utils", "_rebuild_tensor_v2");

    public static int ElementSize(string storageType) => storageType switch
    {
        "DoubleStorage" or "LongStorage" => 8,
        "FloatStorage" or "IntStorage" => 4,
        "HalfStorage" or "BFloat16Storage" or "ShortStorage" => 2,
        _ => 1,
    };

    public static string StorageTypeOf(string safetensorsDType) => safetensorsDType switch
    {
        "F32" => "FloatStorage", "F16" => "HalfStorage", "BF16" => "BFloat16Storage", "F64" => "DoubleStorage",
        "I64" => "LongStorage", "I32" => "IntStorage", "I8" => "CharStorage", "U8" => "ByteStorage", "BOOL" => "BoolStorage",
        _ => throw new ArgumentException(safetensorsDType),
    };

    /// <summary>The row-major strides of a shape.</summary>
    public static long[] Contiguous(long[] shape)
    {
        var stride = new long[shape.Length];
        long acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            stride[i] = acc;
            acc *= shape[i];
        }
        return stride;
    }

    /// <summary>The state dict as torch.save pickles it: an OrderedDict of rebuilt tensors.</summary>
    public static object StateDict(IEnumerable<Tensor> tensors)
    {
        var items = new List<KeyValuePair<object, object?>>();
        var keys = new Dictionary<byte[], string>(ReferenceEqualityComparer.Instance);
        foreach (var t in tensors)
        {
            string key = t.Key ?? (keys.TryGetValue(t.Storage, out var k) ? k : keys[t.Storage] = keys.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
            var storage = new Persistent(["storage", new Global("torch", t.StorageType), key, "cpu", (long)(t.Storage.Length / ElementSize(t.StorageType))]);
            object tensor = new Call(RebuildTensorV2,
                [storage, t.Offset, Tuple(t.Shape), Tuple(t.Stride ?? Contiguous(t.Shape)), false, new OrderedDict([])]);
            if (t.AsParameter) tensor = new Call(new Global("torch._utils", "_rebuild_parameter"), [tensor, true, new OrderedDict([])]);
            items.Add(new(t.Name, tensor));
        }
        return new OrderedDict(items);
    }

    /// <summary>Each distinct storage once, keyed as <see cref="StateDict"/> keys them.</summary>
    public static List<(string Key, byte[] Data)> Storages(IEnumerable<Tensor> tensors)
    {
        var result = new List<(string, byte[])>();
        var seen = new HashSet<byte[]>(ReferenceEqualityComparer.Instance);
        foreach (var t in tensors)
            if (seen.Add(t.Storage)) result.Add((t.Key ?? (seen.Count - 1).ToString(System.Globalization.CultureInfo.InvariantCulture), t.Storage));
        return result;
    }

    /// <summary>A well-formed torch.save file of these tensors.</summary>
    public static void Write(string path, IReadOnlyList<Tensor> tensors, string archive = "archive", CompressionLevel compression = CompressionLevel.NoCompression) =>
        WriteZip(path, Pickle(StateDict(tensors)), Storages(tensors), archive, compression: compression);

    /// <summary>The zip around a pickle; byteOrder null leaves the record out (files before torch 1.12).</summary>
    public static void WriteZip(string path, byte[] pickle, IEnumerable<(string Key, byte[] Data)> storages, string archive = "archive",
        string? byteOrder = "little", CompressionLevel compression = CompressionLevel.NoCompression)
    {
        using var file = File.Create(path);
        using var zip = new ZipArchive(file, ZipArchiveMode.Create);
        void Record(string name, byte[] bytes)
        {
            using var stream = zip.CreateEntry($"{archive}/{name}", compression).Open();
            stream.Write(bytes);
        }
        Record("data.pkl", pickle);
        if (byteOrder is not null) Record("byteorder", Encoding.ASCII.GetBytes(byteOrder));
        foreach (var (key, data) in storages) Record($"data/{key}", data);
        Record("version", "3\n"u8.ToArray());
    }

    /// <summary>Pickles a value with protocol 2 opcodes, memoizing globals as Python does (BINPUT, then BINGET on reuse).</summary>
    public static byte[] Pickle(object? value)
    {
        var writer = new PickleWriter();
        writer.Op(0x80).Op(2); // PROTO 2
        writer.Value(value);
        writer.Op((byte)'.'); // STOP
        return writer.ToArray();
    }

    private static object?[] Tuple(long[] values) => values.Select(v => (object?)v).ToArray();

    private sealed class PickleWriter
    {
        private readonly MemoryStream output = new();
        private readonly Dictionary<Global, int> memo = [];
        private int nextMemo;

        public byte[] ToArray() => output.ToArray();

        public PickleWriter Op(byte op)
        {
            output.WriteByte(op);
            return this;
        }

        public void Value(object? value)
        {
            switch (value)
            {
                case null: Op((byte)'N'); break;
                case bool b: Op(b ? (byte)0x88 : (byte)0x89); break;
                case int i: Int(i); break;
                case long l: Int(l); break;
                case double d:
                    Op((byte)'G');
                    Span<byte> bits = stackalloc byte[8];
                    BinaryPrimitives.WriteDoubleBigEndian(bits, d);
                    output.Write(bits);
                    break;
                case string s:
                    var utf8 = Encoding.UTF8.GetBytes(s);
                    if (utf8.Length < 256) Op(0x8C).Op((byte)utf8.Length); // SHORT_BINUNICODE
                    else { Op((byte)'X'); UInt32((uint)utf8.Length); }
                    output.Write(utf8);
                    Put();
                    break;
                case object?[] tuple: Tuple(tuple); break;
                case Raw raw: output.Write(raw.Bytes); break;
                case Global g: GlobalRef(g); break;
                case Call call:
                    Value(call.Callable);
                    Tuple(call.Args);
                    Op((byte)'R');
                    Put();
                    break;
                case Persistent p:
                    Tuple(p.Id);
                    Op((byte)'Q'); // BINPERSID
                    break;
                case OrderedDict dict:
                    GlobalRef(new Global("collections", "OrderedDict"));
                    Op((byte)')').Op((byte)'R');
                    Put();
                    if (dict.Items.Count == 0) break;
                    Op((byte)'(');
                    foreach (var (k, v) in dict.Items)
                    {
                        Value(k);
                        Value(v);
                    }
                    Op((byte)'u'); // SETITEMS
                    break;
                case PyList list:
                    Op((byte)']');
                    Put();
                    if (list.Items.Count == 0) break;
                    Op((byte)'(');
                    foreach (var item in list.Items) Value(item);
                    Op((byte)'e'); // APPENDS
                    break;
                default: throw new ArgumentException($"cannot pickle {value.GetType()}");
            }
        }

        private void Tuple(object?[] items)
        {
            if (items.Length == 0)
            {
                Op((byte)')');
                return;
            }
            if (items.Length > 3) Op((byte)'(');
            foreach (var item in items) Value(item);
            Op((byte)(items.Length switch { 1 => 0x85, 2 => 0x86, 3 => 0x87, _ => 't' }));
            Put();
        }

        private void GlobalRef(Global g)
        {
            if (memo.TryGetValue(g, out int slot))
            {
                Op((byte)'h').Op((byte)slot); // BINGET
                return;
            }
            if (g.Stacked)
            {
                Value(g.Module);
                Value(g.Name);
                Op(0x93); // STACK_GLOBAL
            }
            else
            {
                Op((byte)'c');
                output.Write(Encoding.UTF8.GetBytes($"{g.Module}\n{g.Name}\n"));
            }
            if (nextMemo < 256) memo[g] = nextMemo;
            Put();
        }

        private void Put()
        {
            if (nextMemo < 256) Op((byte)'q').Op((byte)nextMemo); // BINPUT
            else { Op((byte)'r'); UInt32((uint)nextMemo); }      // LONG_BINPUT
            nextMemo++;
        }

        private void Int(long v)
        {
            if (v is >= 0 and < 256) Op((byte)'K').Op((byte)v);
            else if (v is >= 0 and < 65536) { Op((byte)'M'); output.WriteByte((byte)v); output.WriteByte((byte)(v >> 8)); }
            else if (v is >= int.MinValue and <= int.MaxValue) { Op((byte)'J'); Span<byte> b = stackalloc byte[4]; BinaryPrimitives.WriteInt32LittleEndian(b, (int)v); output.Write(b); }
            else { Op(0x8A).Op(8); Span<byte> b = stackalloc byte[8]; BinaryPrimitives.WriteInt64LittleEndian(b, v); output.Write(b); }
        }

        private void UInt32(uint v)
        {
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(b, v);
            output.Write(b);
        }
    }
}
