using System.Diagnostics;
using System.Text;
using DeltaSync.Cli.Tests;

namespace DeltaSync.FaultInjection.Tests.Infrastructure;

/// <summary>
/// The built <c>deltasync</c> started as a process that a trial can SIGKILL at a chosen moment, or give environment
/// variables (plain runs go through the CLI tests' <see cref="CliProcess"/>).
/// </summary>
internal sealed class DeltasyncProcess : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);
    private readonly Process _process;
    private readonly Task<string> _output;
    private readonly Task<string> _error;
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    private DeltasyncProcess(Process process)
    {
        _process = process;
        _output = process.StandardOutput.ReadToEndAsync();
        _error = process.StandardError.ReadToEndAsync();
    }

    public TimeSpan Elapsed => _clock.Elapsed;

    public bool HasExited => _process.HasExited;

    public static DeltasyncProcess Start(IReadOnlyDictionary<string, string>? environment, params string[] arguments)
    {
        var cli = Path.Combine(AppContext.BaseDirectory, "deltasync.dll");
        Assert.True(File.Exists(cli), $"the CLI was not built beside the tests: {cli}");
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetTempPath(),
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        start.ArgumentList.Add(cli);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        return new DeltasyncProcess(Process.Start(start) ?? throw new InvalidOperationException("could not start " + start.FileName));
    }

    /// <summary>Runs to the end with extra environment variables.</summary>
    public static async Task<CliResult> RunAsync(IReadOnlyDictionary<string, string>? environment, params string[] arguments)
    {
        using var process = Start(environment, arguments);
        return await process.WaitAsync();
    }

    /// <summary>
    /// SIGKILLs the process <paramref name="delay"/> after it started, unless it exits first. Returns true when it was
    /// killed, false when it had already finished.
    /// </summary>
    public async Task<bool> KillAtAsync(TimeSpan delay)
    {
        var remaining = delay - Elapsed;
        if (remaining > TimeSpan.Zero)
        {
            using var wait = new CancellationTokenSource(remaining);
            try
            {
                await _process.WaitForExitAsync(wait.Token);
                return false;
            }
            catch (OperationCanceledException)
            {
                // The moment has come and the run is still going.
            }
        }

        if (_process.HasExited)
        {
            return false;
        }

        try
        {
            _process.Kill(entireProcessTree: true); // SIGKILL on Unix: no handler runs, nothing is flushed
        }
        catch (InvalidOperationException)
        {
            return false; // exited between the check and the kill
        }

        await _process.WaitForExitAsync();
        return true;
    }

    /// <summary>Waits for the process to end (5 minutes at most) and returns its exit code and output.</summary>
    public async Task<CliResult> WaitAsync()
    {
        using var timeout = new CancellationTokenSource(Timeout);
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            throw new TimeoutException($"deltasync did not finish within {Timeout}");
        }

        return new CliResult(_process.ExitCode, await _output, await _error);
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        _process.Dispose();
    }
}
