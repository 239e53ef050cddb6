using System.Runtime.InteropServices;
using System.Text;

namespace Recur.Package.Files;

/// <summary>
/// Swaps two paths in one step (Linux renameat2 with RENAME_EXCHANGE), so a folder replaced by another is never
/// missing, not even for an instant between two renames. Where the call or the file system lacks it, the caller
/// falls back to two renames.
/// </summary>
public static unsafe class AtomicExchange
{
    private const int AtFdCwd = -100;
    private const uint RenameExchange = 2;
    private static readonly delegate* unmanaged<int, byte*, int, byte*, uint, int> RenameAt2 = Find();

    /// <summary>True when <paramref name="first"/> and <paramref name="second"/> (both existing) have been swapped.</summary>
    public static bool TrySwap(string first, string second)
    {
        if (RenameAt2 == null) return false;
        byte[] a = Encoding.UTF8.GetBytes(first + "\0"), b = Encoding.UTF8.GetBytes(second + "\0");
        fixed (byte* pa = a)
        fixed (byte* pb = b)
            return RenameAt2(AtFdCwd, pa, AtFdCwd, pb, RenameExchange) == 0;
    }

    private static delegate* unmanaged<int, byte*, int, byte*, uint, int> Find()
    {
        if (!OperatingSystem.IsLinux()) return null;
        // glibc has exported renameat2 since 2.28; an older or different libc simply takes the fallback.
        if (!NativeLibrary.TryLoad("libc.so.6", out var libc) || !NativeLibrary.TryGetExport(libc, "renameat2", out var export)) return null;
        return (delegate* unmanaged<int, byte*, int, byte*, uint, int>)export;
    }
}
