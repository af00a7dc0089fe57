using System.Diagnostics;
using System.Globalization;

namespace DeltaSync.FaultInjection.Tests.Infrastructure;

/// <summary>A small tmpfs mounted on a folder (root on Linux), to run a state store out of space; unmounted on dispose.</summary>
internal sealed class Tmpfs : IDisposable
{
    private Tmpfs(string folder)
    {
        Folder = folder;
    }

    public string Folder { get; }

    /// <summary>Mounts a tmpfs of <paramref name="kilobytes"/> KiB on <paramref name="folder"/> (created when missing).</summary>
    public static Tmpfs Mount(string folder, int kilobytes)
    {
        Directory.CreateDirectory(folder);
        var (code, output) = Run("mount", "-t", "tmpfs", "-o", string.Create(CultureInfo.InvariantCulture, $"size={kilobytes}k,mode=0755"), "tmpfs", folder);
        if (code != 0)
        {
            throw new InvalidOperationException($"mount -t tmpfs on {folder} failed (exit {code}): {output.Trim()}");
        }

        return new Tmpfs(folder);
    }

    /// <summary>Null when a tmpfs can be mounted here; otherwise why not.</summary>
    public static string? WhyNotMountable()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "mounting a tmpfs needs Linux";
        }

        var probe = Directory.CreateTempSubdirectory("deltasync-tmpfs-probe-").FullName;
        try
        {
            using var mounted = Mount(probe, 64);
            return null;
        }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            return e.Message + " (run as root, as CI does)";
        }
        finally
        {
            try
            {
                Directory.Delete(probe);
            }
            catch (IOException)
            {
                // Still mounted after a failed unmount: leave it to the system's temp cleaning.
            }
        }
    }

    /// <summary>Fills the file system: one file grown until the device has no space left. Returns its path.</summary>
    public string Fill()
    {
        var path = Path.Combine(Folder, "filler.bin");
        var block = new byte[4096];
        using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.None);
        try
        {
            while (true)
            {
                file.Write(block);
            }
        }
        catch (IOException)
        {
            // ENOSPC: full.
        }

        return path;
    }

    public void Dispose()
    {
        var (code, _) = Run("umount", Folder);
        if (code != 0)
        {
            Run("umount", "-l", Folder); // a process still has a file open there: detach now, free when it closes
        }
    }

    private static (int Code, string Output) Run(string command, params string[] arguments)
    {
        var start = new ProcessStartInfo(command) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output);
    }
}

/// <summary>
/// A fact that needs to mount a tmpfs: skipped, with the reason, where mounting is not permitted — except on CI
/// (<c>CI=true</c>), where it runs and fails, so the trial cannot silently disappear there.
/// </summary>
internal sealed class TmpfsFactAttribute : FactAttribute
{
    private static readonly Lazy<string?> Reason = new(Tmpfs.WhyNotMountable);

    public TmpfsFactAttribute()
    {
        if (!FaultSettings.InCi && Reason.Value is { } reason)
        {
            Skip = "cannot mount a tmpfs here: " + reason;
        }
    }
}
