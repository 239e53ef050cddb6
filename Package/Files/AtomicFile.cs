namespace Recur.Package.Files;

/// <summary>
/// Every file Recur writes goes through here: the bytes go to a temporary file in the target's folder, are
/// flushed to disk, and the temporary is renamed over the target, so a reader sees the old file or the whole
/// new one, never a truncated one. Only a regular file or a new path may be replaced (never a device, pipe or
/// folder), and the temporary is removed on every failure.
/// </summary>
public static class AtomicFile
{
    /// <param name="what">The option or role of the file, for messages ("--save-state").</param>
    public static void Write(string path, string what, Action<Stream> write)
    {
        string full = Path.GetFullPath(path);
        RequireWritableTarget(full, what);
        string temp = TemporaryName(full);
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    public static void WriteAllText(string path, string what, string text) =>
        Write(path, what, stream =>
        {
            using var writer = new StreamWriter(stream, new System.Text.UTF8Encoding(false), leaveOpen: true);
            writer.Write(text);
        });

    /// <summary>Refuses a target that exists and is not a regular file, or whose folder does not exist.</summary>
    public static void RequireWritableTarget(string full, string what)
    {
        switch (InputFiles.KindOf(full))
        {
            case InputFiles.Kind.Regular:
            case InputFiles.Kind.Missing:
                break;
            case InputFiles.Kind.Directory:
                throw new FileRefusedException($"{what} {full}: is a folder; give a file path");
            default:
                throw new FileRefusedException($"{what} {full}: is not a regular file (a device, pipe or socket); Recur writes only regular files");
        }
        string? folder = Path.GetDirectoryName(full);
        if (folder is null || !Directory.Exists(folder))
            throw new DirectoryNotFoundException($"{what} {full}: the folder {folder} does not exist");
    }

    /// <summary>A hidden name beside the target, unique to this process and call.</summary>
    public static string TemporaryName(string full) =>
        Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.tmp-{Environment.ProcessId}-{Guid.NewGuid():N}");

    private static void TryDelete(string path)
    {
        try { File.Delete(path); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
