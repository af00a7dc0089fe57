using System.Runtime.InteropServices;
using NodaTime;

namespace DeltaSync.Core.State;

/// <summary>
/// Crash-safe file writes for the file state store and state backups: write a hidden temporary file in the final
/// folder, fsync it, move it into place, fsync the folder. A crash leaves either the old file or the new one.
/// </summary>
internal static class DurableFile
{
    /// <summary>Writes <paramref name="bytes"/> to a new hidden file in <paramref name="folder"/> and fsyncs it.</summary>
    public static async Task<string> WriteTempAsync(string folder, byte[] bytes, Instant? modifiedAt, CancellationToken cancellationToken)
    {
        var temp = Path.Combine(folder, $".{Guid.NewGuid():N}.tmp");
        try
        {
            // Unbuffered, so that nothing is written after the modification time is set.
            var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0, FileOptions.None);
            await using (stream.ConfigureAwait(false))
            {
                await stream.WriteAsync(bytes, cancellationToken).ConfigureAwait(false);
                if (modifiedAt is { } instant)
                {
                    File.SetLastWriteTimeUtc(stream.SafeFileHandle, instant.ToDateTimeUtc());
                }

                stream.Flush(flushToDisk: true);
            }

            return temp;
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    /// <summary>Creates a folder and makes its directory entry durable.</summary>
    public static void EnsureDirectory(string folder)
    {
        if (Directory.Exists(folder))
        {
            return;
        }

        var parent = Path.GetDirectoryName(folder);
        if (parent is not null)
        {
            EnsureDirectory(parent);
        }

        Directory.CreateDirectory(folder);
        if (parent is not null)
        {
            NativeFileSystem.FlushDirectory(parent);
        }
    }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/>, atomically replacing any file there.</summary>
    public static async Task ReplaceAsync(string path, byte[] bytes, CancellationToken cancellationToken)
    {
        var folder = Path.GetDirectoryName(path) ?? throw new ArgumentException($"'{path}' has no folder", nameof(path));
        EnsureDirectory(folder);
        var temp = await WriteTempAsync(folder, bytes, null, cancellationToken).ConfigureAwait(false);
        try
        {
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }

        NativeFileSystem.FlushDirectory(folder);
    }
}

/// <summary>The two POSIX calls .NET does not expose: fsync on a directory and an atomic create-if-absent rename.</summary>
internal static class NativeFileSystem
{
    private const int ReadOnly = 0; // O_RDONLY
    private const int EEXIST = 17;
    private const int EINVAL = 22;

    /// <summary>
    /// Makes renames and creations inside <paramref name="folder"/> durable. fsync on a file covers its data, not the
    /// directory entry that names it; without this a power loss can undo a completed move.
    /// </summary>
    public static void FlushDirectory(string folder)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        var fd = Open(folder, ReadOnly);
        if (fd < 0)
        {
            throw new IOException($"cannot open folder '{folder}' to flush it (errno {Marshal.GetLastPInvokeError()})");
        }

        try
        {
            if (FSync(fd) != 0)
            {
                // Some file systems cannot fsync a directory (EINVAL); they order metadata themselves.
                var errno = Marshal.GetLastPInvokeError();
                if (errno != EINVAL)
                {
                    throw new IOException($"cannot flush folder '{folder}' to disk (errno {errno})");
                }
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    /// <summary>
    /// Moves <paramref name="source"/> to <paramref name="destination"/> unless it exists; false when it does.
    /// <see cref="File.Move(string, string, bool)"/> without overwrite checks and then renames, which lets two racing
    /// writers both "win"; link(2) fails atomically with EEXIST instead. The caller removes <paramref name="source"/>.
    /// </summary>
    public static bool TryMoveNoReplace(string source, string destination)
    {
        if (OperatingSystem.IsLinux())
        {
            if (Link(source, destination) == 0)
            {
                return true;
            }

            var errno = Marshal.GetLastPInvokeError();
            if (errno == EEXIST)
            {
                return false;
            }

            // Any other error (a file system without hard links, say) falls back to the portable move below.
        }

        // Atomic on Windows (MoveFileEx without REPLACE_EXISTING); elsewhere a check-then-rename with a small race.
        try
        {
            File.Move(source, destination, overwrite: false);
            return true;
        }
        catch (IOException) when (File.Exists(destination))
        {
            return false;
        }
    }

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static extern int FSync(int fd);

    [DllImport("libc", EntryPoint = "close", SetLastError = true)]
    private static extern int Close(int fd);

    [DllImport("libc", EntryPoint = "link", SetLastError = true)]
    private static extern int Link([MarshalAs(UnmanagedType.LPUTF8Str)] string source, [MarshalAs(UnmanagedType.LPUTF8Str)] string destination);
}
