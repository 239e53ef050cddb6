using System.Buffers.Binary;
using System.Text;
using Recur.Package.Files;
using Recur.Graphs.Weights;

namespace Recur.Export.Checkpoints;

/// <summary>A storage as torch.save references it: ('storage', torch.FloatStorage, key, location, numel).</summary>
internal sealed record PickledStorage(string TypeName, TensorDType? DType, string Key, string Location, long Numel);

/// <summary>A tensor view into a storage, as torch._utils._rebuild_tensor_v2 would build it (offset and strides in elements).</summary>
internal sealed record PickledTensor(PickledStorage Storage, long Offset, long[] Shape, long[] Stride);

/// <summary>
/// A restricted unpickler for the data.pkl of a torch.save checkpoint: a small stack machine over the
/// binary opcodes (protocols 2-4) that builds plain values (None, bool, int, float, str, tuple, list,
/// dict) and the few objects a state dict is made of. Globals are checked against an allow-list the
/// moment they are named, so a pickle that names anything else (os.system, builtins.eval, ...) is
/// refused before any later opcode is looked at; nothing is ever imported or called.
/// </summary>
internal sealed class PyTorchPickle
{
    /// <summary>What each allowed global stands for; storages by their pickle type name.</summary>
    private enum Callable { OrderedDict, RebuildTensorV2, RebuildTensor, RebuildParameter, RebuildParameterWithState, Device, StorageType }

    private sealed record Global(string Module, string Name, Callable Kind)
    {
        public string FullName => $"{Module}.{Name}";
    }

    private static readonly Dictionary<string, Callable> AllowedFunctions = new(StringComparer.Ordinal)
    {
        ["collections.OrderedDict"] = Callable.OrderedDict,
        ["torch._utils._rebuild_tensor_v2"] = Callable.RebuildTensorV2,
        ["torch._utils._rebuild_tensor"] = Callable.RebuildTensor,
        ["torch._utils._rebuild_parameter"] = Callable.RebuildParameter,
        ["torch._utils._rebuild_parameter_with_state"] = Callable.RebuildParameterWithState,
        ["torch.device"] = Callable.Device,
    };

    /// <summary>torch's pickled storage types and the element type they hold; int16 is known but not readable (no TensorDType).</summary>
    internal static readonly Dictionary<string, TensorDType?> StorageTypes = new(StringComparer.Ordinal)
    {
        ["FloatStorage"] = TensorDType.Float32, ["HalfStorage"] = TensorDType.Float16, ["BFloat16Storage"] = TensorDType.BFloat16,
        ["DoubleStorage"] = TensorDType.Float64, ["LongStorage"] = TensorDType.Int64, ["IntStorage"] = TensorDType.Int32,
        ["ShortStorage"] = null, ["CharStorage"] = TensorDType.Int8, ["ByteStorage"] = TensorDType.UInt8, ["BoolStorage"] = TensorDType.Bool,
    };

    private static string AllowedList => string.Join(", ", AllowedFunctions.Keys.Concat(StorageTypes.Keys.Select(s => "torch." + s)));

    /// <summary>A dict or OrderedDict: insertion-ordered, last write wins, as in Python.</summary>
    internal sealed class Dict
    {
        private readonly Dictionary<object, int> index = new();
        private readonly List<KeyValuePair<object, object?>> items = [];

        public IReadOnlyList<KeyValuePair<object, object?>> Items => items;

        public void Set(object key, object? value)
        {
            if (index.TryGetValue(key, out int at)) items[at] = new(key, value);
            else
            {
                index[key] = items.Count;
                items.Add(new(key, value));
            }
        }
    }

    /// <summary>Python's None as a dict key (a .NET dictionary takes no null keys).</summary>
    private sealed class NoneKey
    {
        public static readonly NoneKey Instance = new();
        public override string ToString() => "None";
    }

    private readonly string origin;
    private readonly byte[] data;
    private readonly Func<object?[], object> persistentLoad;
    private readonly List<object?> stack = [];
    private readonly List<int> marks = [];
    private readonly Dictionary<long, object?> memo = [];
    private int position;
    private long spent;

    private PyTorchPickle(string origin, byte[] data, Func<object?[], object> persistentLoad)
    {
        this.origin = origin;
        this.data = data;
        this.persistentLoad = persistentLoad;
    }

    /// <summary>
    /// Runs the pickle and returns its value. <paramref name="persistentLoad"/> turns a persistent id
    /// tuple into an object (a <see cref="PickledStorage"/>); <paramref name="origin"/> names the pickle in errors.
    /// </summary>
    public static object? Load(string origin, byte[] data, Func<object?[], object> persistentLoad) =>
        new PyTorchPickle(origin, data, persistentLoad).Run();

    /// <summary>A short description of a value's Python type for messages.</summary>
    public static string TypeName(object? value) => value switch
    {
        null => "None",
        bool => "bool",
        long or System.Numerics.BigInteger => "int",
        double => "float",
        string => "str",
        byte[] => "bytes",
        object?[] => "tuple",
        List<object?> => "list",
        Dict => "dict",
        PickledTensor => "tensor",
        PickledStorage => "storage",
        Global g => g.FullName,
        _ => value.GetType().Name,
    };

    private object? Run()
    {
        while (true)
        {
            int at = position;
            byte op = ReadByte();
            switch (op)
            {
                case 0x80: ReadByte(); break;                                  // PROTO n: the version is implied by the opcodes
                case 0x95: ReadBytes(8); break;                                // FRAME length: framing is only a read-ahead hint
                case 0x2E:                                                     // STOP
                    if (stack.Count != 1 || marks.Count != 0) throw Bad(at, $"STOP with {stack.Count} values and {marks.Count} marks on the stack, expected one value");
                    return stack[0];
                case 0x28: Spend(at); marks.Add(stack.Count); break;           // MARK
                case 0x30: Pop(at); break;                                     // POP
                case 0x31: PopMark(at); break;                                 // POP_MARK
                case 0x32: Push(Peek(at)); break;                              // DUP
                case 0x4E: Push(null); break;                                  // NONE
                case 0x88: Push(true); break;                                  // NEWTRUE
                case 0x89: Push(false); break;                                 // NEWFALSE
                case 0x4A: Push((long)BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4))); break;  // BININT
                case 0x4B: Push((long)ReadByte()); break;                                            // BININT1
                case 0x4D: Push((long)BinaryPrimitives.ReadUInt16LittleEndian(ReadBytes(2))); break; // BININT2
                case 0x8A: Push(ReadLong(at, ReadByte())); break;                                    // LONG1
                case 0x8B: Push(ReadLong(at, ReadLength(at, 4))); break;                             // LONG4
                case 0x47: Push(BinaryPrimitives.ReadDoubleBigEndian(ReadBytes(8))); break;          // BINFLOAT (big-endian, as pickle writes it)
                case 0x58: Push(ReadUtf8(at, ReadLength(at, 4))); break;                             // BINUNICODE
                case 0x8C: Push(ReadUtf8(at, ReadByte())); break;                                    // SHORT_BINUNICODE
                case 0x8D: Push(ReadUtf8(at, ReadLength(at, 8))); break;                             // BINUNICODE8
                case 0x54: Push(Encoding.Latin1.GetString(ReadBytes(ReadLength(at, 4)))); break;     // BINSTRING (Python 2 str)
                case 0x55: Push(Encoding.Latin1.GetString(ReadBytes(ReadByte()))); break;            // SHORT_BINSTRING
                case 0x42: Push(ReadBytes(ReadLength(at, 4)).ToArray()); break;                      // BINBYTES
                case 0x43: Push(ReadBytes(ReadByte()).ToArray()); break;                             // SHORT_BINBYTES
                case 0x8E: Push(ReadBytes(ReadLength(at, 8)).ToArray()); break;                      // BINBYTES8
                case 0x7D: Push(new Dict()); break;                            // EMPTY_DICT
                case 0x5D: Push(new List<object?>()); break;                   // EMPTY_LIST
                case 0x29: Push(Array.Empty<object?>()); break;                // EMPTY_TUPLE
                case 0x85: Push(PopN(at, 1)); break;                           // TUPLE1
                case 0x86: Push(PopN(at, 2)); break;                           // TUPLE2
                case 0x87: Push(PopN(at, 3)); break;                           // TUPLE3
                case 0x74: Push(PopMark(at).ToArray()); break;                 // TUPLE
                case 0x6C: Push(PopMark(at)); break;                           // LIST
                case 0x64: Push(ToDict(at, PopMark(at))); break;               // DICT
                case 0x71: Memo(ReadByte(), at); break;                        // BINPUT
                case 0x72: Memo(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4)), at); break; // LONG_BINPUT
                case 0x94: Memo(memo.Count, at); break;                        // MEMOIZE
                case 0x68: Push(Recall(ReadByte(), at)); break;                // BINGET
                case 0x6A: Push(Recall(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4)), at)); break; // LONG_BINGET
                case 0x73:                                                     // SETITEM
                {
                    var value = Pop(at);
                    var key = Pop(at);
                    SetItems(at, Peek(at), [key, value]);
                    break;
                }
                case 0x75: { var pairs = PopMark(at); SetItems(at, Peek(at), pairs); break; }           // SETITEMS
                case 0x61: { var item = Pop(at); Append(at, Peek(at), [item]); break; }                 // APPEND
                case 0x65: { var items = PopMark(at); Append(at, Peek(at), items); break; }             // APPENDS
                case 0x63: Push(Resolve(at, ReadLine(at), ReadLine(at))); break;                        // GLOBAL "module\nname\n"
                case 0x93:                                                     // STACK_GLOBAL
                {
                    var name = Pop(at);
                    var module = Pop(at);
                    if (module is not string m || name is not string n) throw Bad(at, $"STACK_GLOBAL needs two str, found {TypeName(module)} and {TypeName(name)}");
                    Push(Resolve(at, m, n));
                    break;
                }
                case 0x52:                                                     // REDUCE
                {
                    var args = Pop(at);
                    var callable = Pop(at);
                    if (args is not object?[] tuple) throw Bad(at, $"REDUCE arguments are a {TypeName(args)}, expected a tuple");
                    Push(Call(at, callable, tuple));
                    break;
                }
                case 0x62: Build(at, Pop(at), Peek(at)); break;                // BUILD
                case 0x51:                                                     // BINPERSID
                {
                    var pid = Pop(at);
                    if (pid is not object?[] tuple) throw Bad(at, $"persistent id is a {TypeName(pid)}, expected a tuple ('storage', type, key, location, numel)");
                    Push(persistentLoad(tuple));
                    break;
                }
                case 0x69:                                                     // INST "module\nname\n": instantiates a class
                {
                    var global = Resolve(at, ReadLine(at), ReadLine(at));
                    throw Bad(at, $"INST of {global.FullName}: a state dict never instantiates classes this way");
                }
                default:
                    throw Bad(at, $"opcode 0x{op:x2} ('{(op is >= 0x20 and < 0x7F ? (char)op : '?')}') is not one a torch.save state dict uses"
                        + " (protocol 0/1 text opcodes, NEWOBJ, EXT and the like are not read)");
            }
        }
    }

    /// <summary>Checks a global against the allow-list; this is where a malicious pickle stops.</summary>
    private Global Resolve(int at, string module, string name)
    {
        string full = $"{module}.{name}";
        if (AllowedFunctions.TryGetValue(full, out var kind)) return new Global(module, name, kind);
        if (module == "torch" && StorageTypes.ContainsKey(name)) return new Global(module, name, Callable.StorageType);
        if (module == "torch" && name.EndsWith("Storage", StringComparison.Ordinal))
            throw new NotSupportedException($"{origin}: storage type torch.{name} (byte {at}) is not supported; tensors must be one of {string.Join(", ", StorageTypes.Keys)}");
        throw new InvalidDataException(
            $"{origin}: refused global {full} (byte {at}): a PyTorch state dict needs only tensors and their storages, so nothing else is loaded (allowed: {AllowedList})");
    }

    private object Call(int at, object? callable, object?[] args)
    {
        if (callable is not Global g) throw Bad(at, $"REDUCE calls a {TypeName(callable)}, not a global");
        switch (g.Kind)
        {
            case Callable.OrderedDict:
                var dict = new Dict();
                if (args.Length == 0) return dict;
                if (args is [List<object?> pairs]) // OrderedDict([(k, v), ...])
                {
                    foreach (var pair in pairs)
                        if (pair is object?[] { Length: 2 } kv) dict.Set(Key(at, kv[0]), kv[1]);
                        else throw Bad(at, $"OrderedDict item is a {TypeName(pair)}, expected a (key, value) tuple");
                    return dict;
                }
                throw Bad(at, $"OrderedDict called with {args.Length} arguments ({string.Join(", ", args.Select(TypeName))})");
            case Callable.RebuildTensorV2 when args.Length is 6 or 7: // (storage, offset, size, stride, requires_grad, backward_hooks[, metadata])
            case Callable.RebuildTensor when args.Length == 4:          // (storage, offset, size, stride)
                return Tensor(at, g, args);
            case Callable.RebuildParameter when args.Length == 3:              // (data, requires_grad, backward_hooks): the flags do not matter here
            case Callable.RebuildParameterWithState when args.Length == 4:     // (..., state): Python attributes of the parameter, ignored
                return args[0] is PickledTensor t ? t : throw Bad(at, $"{g.FullName} wraps a {TypeName(args[0])}, expected a tensor");
            case Callable.Device when args is [string] or [string, long]:
                return args[0]!; // a device is only ever a location tag here
            case Callable.StorageType:
                throw Bad(at, $"{g.FullName} is called; storages only appear in persistent ids");
            default:
                throw Bad(at, $"{g.FullName} called with {args.Length} arguments ({string.Join(", ", args.Select(TypeName))})");
        }
    }

    private PickledTensor Tensor(int at, Global g, object?[] args)
    {
        if (args[0] is not PickledStorage storage) throw Bad(at, $"{g.FullName}: first argument is a {TypeName(args[0])}, expected a storage");
        if (args[1] is not long offset) throw Bad(at, $"{g.FullName}: storage offset is a {TypeName(args[1])}, expected an int");
        var shape = Longs(at, g, "size", args[2]);
        var stride = Longs(at, g, "stride", args[3]);
        return new PickledTensor(storage, offset, shape, stride);
    }

    private long[] Longs(int at, Global g, string what, object? value)
    {
        if (value is object?[] tuple && tuple.All(v => v is long)) return tuple.Select(v => (long)v!).ToArray();
        throw Bad(at, $"{g.FullName}: {what} is a {TypeName(value)}, expected a tuple of ints");
    }

    private void Build(int at, object? state, object? target)
    {
        switch (target)
        {
            case Dict: return;          // an OrderedDict's attributes, e.g. the state dict's _metadata (module versions)
            case PickledTensor: return; // a tensor's Python attributes
            default: throw Bad(at, $"BUILD on a {TypeName(target)} (state {TypeName(state)}); only dicts and tensors take state here");
        }
    }

    private void SetItems(int at, object? target, List<object?> pairs)
    {
        if (target is not Dict dict) throw Bad(at, $"SETITEM(S) on a {TypeName(target)}, expected a dict");
        if (pairs.Count % 2 != 0) throw Bad(at, $"SETITEMS with {pairs.Count} values, expected key/value pairs");
        for (int i = 0; i < pairs.Count; i += 2) dict.Set(Key(at, pairs[i]), pairs[i + 1]);
    }

    private void Append(int at, object? target, List<object?> items)
    {
        if (target is not List<object?> list) throw Bad(at, $"APPEND(S) on a {TypeName(target)}, expected a list");
        list.AddRange(items);
    }

    private Dict ToDict(int at, List<object?> pairs)
    {
        var dict = new Dict();
        SetItems(at, dict, pairs);
        return dict;
    }

    private object Key(int at, object? key) => key switch
    {
        null => NoneKey.Instance,
        string or long or bool or double => key,
        _ => throw Bad(at, $"a dict key is a {TypeName(key)}; state dict keys are strings"),
    };

    private void Memo(long index, int at)
    {
        Spend(at);
        memo[index] = Peek(at);
    }

    private object? Recall(long index, int at) =>
        memo.TryGetValue(index, out var value) ? value : throw Bad(at, $"memo slot {index} is read before it is written");

    private void Push(object? value)
    {
        Spend(position);
        stack.Add(value);
    }

    /// <summary>
    /// The memory budget: every value pushed, memoized or marked counts against <see cref="InputBudgets.PickleObjects"/>, so a
    /// small compressed data.pkl of a million DUPs cannot grow the stack or memo until the process dies.
    /// </summary>
    private void Spend(int at)
    {
        if (++spent > InputBudgets.PickleObjects)
            throw Bad(at, $"the pickle builds more than {InputBudgets.PickleObjects:N0} values, over the unpickler's memory budget; a state dict needs far fewer");
    }

    private object? Peek(int at)
    {
        int floor = marks.Count > 0 ? marks[^1] : 0;
        if (stack.Count <= floor) throw Bad(at, "the stack is empty");
        return stack[^1];
    }

    private object? Pop(int at)
    {
        var value = Peek(at);
        stack.RemoveAt(stack.Count - 1);
        return value;
    }

    private object?[] PopN(int at, int n)
    {
        int floor = marks.Count > 0 ? marks[^1] : 0;
        if (stack.Count - floor < n) throw Bad(at, $"a {n}-tuple needs {n} values, the stack holds {stack.Count - floor}");
        var items = stack.GetRange(stack.Count - n, n).ToArray();
        stack.RemoveRange(stack.Count - n, n);
        return items;
    }

    private List<object?> PopMark(int at)
    {
        if (marks.Count == 0) throw Bad(at, "an opcode needs a MARK, but none is set");
        int mark = marks[^1];
        marks.RemoveAt(marks.Count - 1);
        var items = stack.GetRange(mark, stack.Count - mark);
        stack.RemoveRange(mark, stack.Count - mark);
        return items;
    }

    private byte ReadByte()
    {
        if (position >= data.Length) throw Bad(position, "the pickle ends without STOP (truncated?)");
        return data[position++];
    }

    private ReadOnlySpan<byte> ReadBytes(long count)
    {
        if (count < 0 || count > data.Length - position)
            throw Bad(position, $"a {count}-byte field runs past the end of the pickle ({data.Length} bytes; truncated?)");
        var span = data.AsSpan(position, (int)count);
        position += (int)count;
        return span;
    }

    private long ReadLength(int at, int width)
    {
        var bytes = ReadBytes(width);
        long length = width == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(bytes) : BinaryPrimitives.ReadInt64LittleEndian(bytes);
        if (length < 0 || length > data.Length - position)
            throw Bad(at, $"a length of {length} runs past the end of the pickle ({data.Length} bytes; truncated?)");
        return length;
    }

    /// <summary>LONG1/LONG4: little-endian two's complement; values beyond 64 bits are refused (no tensor needs them).</summary>
    private long ReadLong(int at, long length)
    {
        var bytes = ReadBytes(length);
        if (bytes.Length == 0) return 0;
        if (bytes.Length > 8) throw new NotSupportedException($"{origin}: an integer of {bytes.Length} bytes at byte {at} does not fit in 64 bits");
        long value = bytes[^1] >= 0x80 ? -1 : 0; // sign-extend
        for (int i = bytes.Length - 1; i >= 0; i--) value = (value << 8) | bytes[i];
        return value;
    }

    private string ReadUtf8(int at, long length)
    {
        var bytes = ReadBytes(length);
        if (!System.Text.Unicode.Utf8.IsValid(bytes)) throw Bad(at, "a string is not valid UTF-8");
        return Encoding.UTF8.GetString(bytes);
    }

    private string ReadLine(int at)
    {
        int end = Array.IndexOf(data, (byte)'\n', position);
        if (end < 0) throw Bad(at, "GLOBAL name has no terminating newline (truncated?)");
        var text = Encoding.UTF8.GetString(data, position, end - position);
        position = end + 1;
        return text;
    }

    private InvalidDataException Bad(int at, string what) => new($"{origin}: byte {at}: {what}; the file is damaged or not a torch.save state dict");
}
