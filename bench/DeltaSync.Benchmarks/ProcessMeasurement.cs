using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace DeltaSync.Benchmarks;

/// <summary>One child process, timed from start to exit, with the largest peak RSS (VmHWM) seen while it ran.</summary>
public sealed record ProcessMeasurement(int ExitCode, TimeSpan Elapsed, long PeakRssBytes, string Output)
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(5);

    /// <summary>
    /// Runs the process to completion. VmHWM is the kernel's own high-water mark, so a sample taken just before exit
    /// already covers every earlier peak; polling only has to be frequent enough not to miss the last stretch.
    /// </summary>
    public static async Task<ProcessMeasurement> RunAsync(string fileName, IReadOnlyList<string> arguments, string workingDirectory)
    {
        var start = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        var output = new StringBuilder();
        var watch = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {fileName}");
        process.OutputDataReceived += (_, e) => Append(output, e.Data);
        process.ErrorDataReceived += (_, e) => Append(output, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var exited = process.WaitForExitAsync();
        var statusPath = $"/proc/{process.Id}/status";
        long peak = 0;
        while (!exited.IsCompleted)
        {
            peak = Math.Max(peak, ReadPeakRss(statusPath));
            await Task.WhenAny(exited, Task.Delay(PollInterval)).ConfigureAwait(false);
        }

        watch.Stop();
        await exited.ConfigureAwait(false);
        lock (output)
        {
            return new ProcessMeasurement(process.ExitCode, watch.Elapsed, peak, output.ToString());
        }
    }

    /// <summary>VmHWM in bytes; 0 once the process is gone (or became a zombie, whose status has no memory lines).</summary>
    private static long ReadPeakRss(string statusPath)
    {
        try
        {
            foreach (var line in File.ReadLines(statusPath))
            {
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    var kilobytes = line["VmHWM:".Length..].Trim().Split(' ')[0];
                    return long.Parse(kilobytes, CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return 0;
    }

    private static void Append(StringBuilder output, string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (output)
        {
            output.AppendLine(line);
        }
    }
}
