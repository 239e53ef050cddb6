namespace Recur.Runtime.Tokenizers;

/// <summary>
/// GPT-2's reversible map from the 256 byte values to printable characters: printable Latin-1
/// bytes stand for themselves, the other 68 take U+0100 onwards in byte order (so a space is 'Ġ').
/// Byte-level BPE vocabularies are written in these characters.
/// </summary>
internal static class ByteLevelAlphabet
{
    private static readonly char[] ByteToCharTable = BuildByteToChar();
    private static readonly short[] CharToByteTable = BuildCharToByte();

    public static char ByteToChar(byte value) => ByteToCharTable[value];

    /// <summary>The byte a character stands for, or -1 when it is not in the alphabet.</summary>
    public static int CharToByte(char c) => c < CharToByteTable.Length ? CharToByteTable[c] : -1;

    private static char[] BuildByteToChar()
    {
        var table = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is (>= '!' and <= '~') or (>= 0xA1 and <= 0xAC) or (>= 0xAE and <= 0xFF);
            table[b] = printable ? (char)b : (char)next++;
        }
        return table;
    }

    private static short[] BuildCharToByte()
    {
        var table = new short[256 + 68];
        Array.Fill(table, (short)-1);
        for (var b = 0; b < 256; b++)
            table[ByteToCharTable[b]] = (short)b;
        return table;
    }
}
