using System.Diagnostics;

namespace DeltaSync.Postgres.Tests.Recovery;

/// <summary>How a run of the built <c>deltasync</c> ended.</summary>
internal sealed record CliResult(int ExitCode, string StandardOutput, string StandardError)
{
    public override string ToString() => $"exit code {ExitCode}\n--- stdout ---\n{StandardOutput}\n--- stderr ---\n{StandardError}";
}

/// <summary>
/// Runs the <c>deltasync</c> built beside the tests as a separate process, with output redirected as in a script or
/// CI job: the command is tested end to end, exit code and plain-text output included.
/// </summary>
internal static class Cli
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);

    public static async Task<CliResult> RunAsync(params string[] arguments)
    {
        var cli = Path.Combine(AppContext.BaseDirectory, "deltasync.dll");
        Assert.True(File.Exists(cli), $"the CLI was not built beside the tests: {cli}");
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetTempPath(),
        };
        start.ArgumentList.Add(cli);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start " + start.FileName);
        using var timeout = new CancellationTokenSource(Timeout);
        var output = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var error = process.StandardError.ReadToEndAsync(timeout.Token);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"deltasync {string.Join(' ', arguments)} did not finish within {Timeout}");
        }

        return new CliResult(process.ExitCode, await output, await error);
    }
}
