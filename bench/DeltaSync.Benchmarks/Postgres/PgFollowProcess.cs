using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace DeltaSync.Benchmarks.Postgres;

/// <summary>
/// <c>deltasync run --config FILE --follow</c> as a child process that keeps running while the benchmark
/// writes at the source. Its output is collected (and written to a log file when it stops); stopping sends SIGTERM, so
/// the CLI finishes the batch in flight and releases its replication slot as it does for Ctrl+C or a service manager.
/// (Not SIGINT: a benchmark started in the background of a non-interactive shell passes SIGINT on ignored, and .NET
/// keeps an inherited ignore.)
/// </summary>
public sealed class PgFollowProcess : IAsyncDisposable
{
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(30);

    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly string _logPath;
    private readonly TaskCompletionSource _idle = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private PgFollowProcess(Process process, string logPath)
    {
        _process = process;
        _logPath = logPath;
    }

    /// <summary>The process id of the CLI.</summary>
    public int Pid => _process.Id;

    /// <summary>Starts the CLI; <paramref name="logPath"/> receives its output when it is disposed.</summary>
    public static PgFollowProcess Start(DeltaSyncCli cli, string configPath, string logPath)
    {
        ArgumentNullException.ThrowIfNull(cli);
        var start = new ProcessStartInfo(cli.Program)
        {
            WorkingDirectory = Path.GetDirectoryName(configPath)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in cli.Arguments("run", "--config", configPath, "--follow", "-v"))
        {
            start.ArgumentList.Add(argument);
        }

        var process = new Process { StartInfo = start };
        var follow = new PgFollowProcess(process, logPath);
        process.OutputDataReceived += (_, e) => follow.Append(e.Data);
        process.ErrorDataReceived += (_, e) => follow.Append(e.Data);
        if (!process.Start())
        {
            throw new InvalidOperationException($"could not start {cli.Program}");
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return follow;
    }

    /// <summary>
    /// Completes at the first pass that found nothing to write (the CLI's "no changes" line): the slot and the
    /// destination are set up, the source has been read to its end, and the process is idling at its poll interval.
    /// </summary>
    public async Task WaitUntilIdleAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var exited = _process.WaitForExitAsync(cancellationToken);
        var finished = await Task.WhenAny(_idle.Task, exited, Task.Delay(timeout, cancellationToken)).ConfigureAwait(false);
        if (finished == _idle.Task)
        {
            return;
        }

        cancellationToken.ThrowIfCancellationRequested();
        var reason = _process.HasExited ? $"exited with code {_process.ExitCode}" : $"found no idle pass within {timeout.TotalSeconds:0} s";
        throw new TimeoutException($"deltasync run --follow {reason}; output:\n{Output()}");
    }

    /// <summary>SIGTERM, then up to 30 s for the process to end (else it is killed); the output goes to the log file.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                // Only the process this class started, by its id.
                using (var signal = Process.Start("kill", ["-TERM", _process.Id.ToString(CultureInfo.InvariantCulture)]))
                {
                    await signal.WaitForExitAsync().ConfigureAwait(false);
                }

                using var timeout = new CancellationTokenSource(StopTimeout);
                try
                {
                    await _process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    Console.Error.WriteLine($"# deltasync run --follow (pid {_process.Id}) did not stop within {StopTimeout.TotalSeconds:0} s after SIGTERM; killed");
                    _process.Kill(entireProcessTree: true);
                    await _process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
                }
            }

            await File.WriteAllTextAsync(_logPath, Output()).ConfigureAwait(false);
        }
        finally
        {
            _process.Dispose();
        }
    }

    private string Output()
    {
        lock (_output)
        {
            return _output.ToString();
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }

        if (line.Contains(": no changes (", StringComparison.Ordinal))
        {
            _idle.TrySetResult();
        }
    }
}
