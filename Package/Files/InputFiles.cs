using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Recur.Package.Files;

/// <summary>An input or output path Recur refuses to touch: not a regular file, over a budget, not UTF-8.</summary>
public sealed class FileRefusedException(string message) : IOException(message);

/// <summary>
/// The checks every reader makes before it opens a file: it must be a regular file (a named pipe would block
/// forever, a device would never end) and within its budget; text must be UTF-8. Errors name the file.
/// </summary>
public static partial class InputFiles
{
    /// <summary>What a path is, from stat(2) (symbolic links followed).</summary>
    public enum Kind { Missing, Regular, Directory, Other }

    public static Kind KindOf(string path)
    {
        if (OperatingSystem.IsWindows())
            return File.Exists(path) ? Kind.Regular : Directory.Exists(path) ? Kind.Directory : Kind.Missing;
        // The runtime's own portable stat (System.Native, which every .NET on Unix ships): its FileStatus starts
        // with Flags then Mode, whose S_IFMT bits give the type. The buffer is larger than the struct has ever been.
        Span<byte> status = stackalloc byte[512];
        try
        {
            unsafe
            {
                fixed (byte* buffer = status)
                    if (Stat(path, buffer) != 0) return Kind.Missing;
            }
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            // Without it, the one thing .NET tells apart: a folder. Pipes and devices then pass as files.
            return File.Exists(path) ? Kind.Regular : Directory.Exists(path) ? Kind.Directory : Kind.Missing;
        }
        int mode = BitConverter.ToInt32(status[4..8]) & 0xF000;
        return mode switch { 0x8000 => Kind.Regular, 0x4000 => Kind.Directory, _ => Kind.Other };
    }

    [LibraryImport("libSystem.Native", EntryPoint = "SystemNative_Stat", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int Stat(string path, byte* output);

    /// <summary>
    /// The absolute path with every symbolic link along it resolved; the part that does not exist yet is kept as
    /// written. Two paths name the same place exactly when their real paths are equal.
    /// </summary>
    public static string RealPath(string path) => RealPath(path, depth: 0);

    private static string RealPath(string path, int depth)
    {
        // Linux stops at 40 links too (ELOOP); a cycle ends here instead of going round.
        if (depth > 40) throw new FileRefusedException($"{path}: too many levels of symbolic links");
        string full = Path.GetFullPath(path);
        string current = Path.GetPathRoot(full)!;
        var parts = full[current.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0; i < parts.Length; i++)
        {
            string next = Path.Combine(current, parts[i]);
            var info = new FileInfo(next);
            if (info.LinkTarget is string link)
                next = RealPath(Path.IsPathRooted(link) ? link : Path.Combine(current, link), depth + 1);
            if (!Path.Exists(next)) return Path.Combine([next, .. parts[(i + 1)..]]);
            current = next;
        }
        return current;
    }

    /// <summary>Throws unless <paramref name="path"/> is a regular file; <paramref name="what"/> says which input it is ("config.json", "--load-state").</summary>
    public static void RequireRegular(string path, string what)
    {
        switch (KindOf(path))
        {
            case Kind.Regular: return;
            case Kind.Missing: throw new FileNotFoundException($"{what} {path}: no such file", path);
            case Kind.Directory: throw new FileRefusedException($"{what} {path}: is a folder, expected a regular file");
            default: throw new FileRefusedException($"{what} {path}: is not a regular file (a pipe, socket or device); expected a regular file");
        }
    }

    /// <summary>Throws unless the regular file's size is within <paramref name="budget"/> bytes.</summary>
    public static long RequireWithin(string path, string what, long budget)
    {
        RequireRegular(path, what);
        long length = new FileInfo(path).Length;
        if (length > budget)
            throw new FileRefusedException($"{what} {path}: is {length:N0} bytes, over the {budget:N0}-byte budget for this input");
        return length;
    }

    /// <summary>A regular file's bytes, within a budget.</summary>
    public static byte[] ReadBytes(string path, string what, long budget)
    {
        RequireWithin(path, what, budget);
        return File.ReadAllBytes(path);
    }

    /// <summary>A UTF-8 text file within a budget; a leading byte order mark is kept as U+FEFF, invalid UTF-8 is refused.</summary>
    public static string ReadText(string path, string what, long budget = InputBudgets.TextBytes)
    {
        byte[] bytes = ReadBytes(path, what, budget);
        try
        {
            return new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidDataException($"{what} {path}: not UTF-8 (invalid byte 0x{bytes[e.Index]:X2} at offset {e.Index})");
        }
    }

    /// <summary>A JSON file within <see cref="InputBudgets.JsonBytes"/>, parsed; malformed JSON and invalid UTF-8 name the file.</summary>
    public static JsonDocument ReadJson(string path, string what, JsonDocumentOptions options = default)
    {
        byte[] bytes = ReadBytes(path, what, InputBudgets.JsonBytes);
        return ParseJson(bytes, $"{what} {path}", options);
    }

    /// <summary>JSON bytes from <paramref name="source"/> (a file, or a file and the field that held them).</summary>
    public static JsonDocument ParseJson(ReadOnlyMemory<byte> bytes, string source, JsonDocumentOptions options = default)
    {
        if (!System.Text.Unicode.Utf8.IsValid(bytes.Span))
            throw new InvalidDataException($"{source}: is not valid UTF-8 text, so not JSON");
        // Two values for one key are an error, not "the last one wins": a hand-edited file means one of them.
        options.AllowDuplicateProperties = false;
        try
        {
            return JsonDocument.Parse(bytes, options);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{source}: is not valid JSON ({e.Message.ReplaceLineEndings(" ")})");
        }
    }
}
