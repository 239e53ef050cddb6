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

    public Utf8StringArray(ReadOnlySpan<string> values)
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

        _block = NativeMemory.Alloc(pointerBytes + textBytes + 1);
        var pointers = (byte**)_block;
        byte* cursor = (byte*)_block + pointerBytes;
        byte* end = cursor + textBytes;
        for (int i = 0; i < values.Length; i++)
        {
            int length = Encoding.UTF8.GetBytes(values[i], new Span<byte>(cursor, checked((int)(end - cursor))));
            cursor[length] = 0;
            pointers[i] = cursor;
            cursor += length + 1;
        }
    }

    public readonly byte** Pointers => (byte**)_block;

    public void Dispose()
    {
        NativeMemory.Free(_block);
        _block = null;
    }
}
