using System.Runtime.InteropServices;
using System.Text;

namespace Recur.Runtime.Ort;

/// <summary>
/// NUL-terminated UTF-8 copies of some strings and an array of pointers to them, in one native block
/// (what ORT's <c>const char* const*</c> parameters take). Dispose frees the block.
/// </summary>
internal unsafe ref struct Utf8StringArray
{
    private void* _block;

    public Utf8StringArray(ReadOnlySpan<string> values) => _block = Build(values);

    /// <summary>One native block: the pointer array, then the NUL-terminated UTF-8 strings. Free with NativeMemory.Free.</summary>
    internal static void* Build(ReadOnlySpan<string> values)
    {
        nuint pointerBytes = (nuint)(values.Length * sizeof(byte*));
        nuint textBytes = 0;
        foreach (var value in values)
        {
            ArgumentNullException.ThrowIfNull(value);
            if (value.Contains('\0'))
            {
                throw new ArgumentException($"\"{value.Replace("\0", "\\0")}\" contains a NUL character, which ONNX Runtime cannot take");
            }
            textBytes += (nuint)Encoding.UTF8.GetByteCount(value) + 1;
        }

        void* block = NativeMemory.Alloc(pointerBytes + textBytes + 1);
        var pointers = (byte**)block;
        byte* cursor = (byte*)block + pointerBytes;
        byte* end = cursor + textBytes;
        for (int i = 0; i < values.Length; i++)
        {
            int length = Encoding.UTF8.GetBytes(values[i], new Span<byte>(cursor, checked((int)(end - cursor))));
            cursor[length] = 0;
            pointers[i] = cursor;
            cursor += length + 1;
        }
        return block;
    }

    public readonly byte** Pointers => (byte**)_block;

    public void Dispose()
    {
        NativeMemory.Free(_block);
        _block = null;
    }
}

/// <summary>
/// Input and output names encoded once for many runs with the same names (a decode loop), so a run
/// passes ready pointers instead of encoding every state name again. Dispose frees the native copies.
/// </summary>
public sealed unsafe class RunNames : IDisposable
{
    private void* _inputs;
    private void* _outputs;

    public RunNames(IReadOnlyList<string> inputNames, IReadOnlyList<string> outputNames)
    {
        InputArray = inputNames.ToArray();
        OutputArray = outputNames.ToArray();
        _inputs = Utf8StringArray.Build(InputArray);
        _outputs = Utf8StringArray.Build(OutputArray);
    }

    public IReadOnlyList<string> InputNames => InputArray;
    public IReadOnlyList<string> OutputNames => OutputArray;
    internal string[] InputArray { get; }
    internal string[] OutputArray { get; }

    internal byte** InputPointers => _inputs != null ? (byte**)_inputs : throw new ObjectDisposedException(nameof(RunNames));
    internal byte** OutputPointers => _outputs != null ? (byte**)_outputs : throw new ObjectDisposedException(nameof(RunNames));

    public void Dispose()
    {
        NativeMemory.Free(_inputs);
        NativeMemory.Free(_outputs);
        _inputs = null;
        _outputs = null;
    }
}
