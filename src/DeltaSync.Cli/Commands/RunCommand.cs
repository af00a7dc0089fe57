using System.ComponentModel;
using System.Runtime.InteropServices;
using DeltaSync.Cli.Output;
using DeltaSync.Core.Pipeline;
using NodaTime;
using Spectre.Console.Cli;

namespace DeltaSync.Cli.Commands;

/// <summary><c>deltasync run</c>.</summary>
public sealed class RunSettings : TableSettings
{
    [CommandOption("--once")]
    [Description("Make one pass and exit (the default).")]
    public bool Once { get; init; }

    [CommandOption("--follow")]
    [Description("Keep running, syncing on sync.frequency; Ctrl+C stops after the batch in flight.")]
    public bool Follow { get; init; }

    [CommandOption("--report <FILE>")]
    [Description("Write the sync report here (default: reports/ beside the state).")]
    public string? Report { get; init; }

    [CommandOption("--full-refresh")]
    [Description("Re-read every table from the start; unchanged rows are not rewritten.")]
    public bool FullRefresh { get; init; }
}

/// <summary>Syncs the configured tables once, or continuously with <c>--follow</c>.</summary>
public sealed class RunCommand : AsyncCommand<RunSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, RunSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (settings.Once && settings.Follow)
        {
            throw new UsageException("--once and --follow cannot be used together");
        }

        var config = CliHost.LoadConfig(settings.Config);
        using var logging = CliHost.Logging(settings.Verbose);
        var engine = new SyncEngine(config, CliHost.Connectors(), SystemClock.Instance, logging.CreateLogger("DeltaSync"));
        var options = new RunOptions(settings.Tables, settings.FullRefresh, settings.Report);
        var tables = engine.SelectTables(settings.Tables).Select(p => p.Label(config.Sync.IsMultiSource)).ToList();
        using var stop = new CancellationTokenSource();

        // Ctrl+C (SIGINT) and SIGTERM (service managers, containers) stop after the batch in flight; a second signal
        // is left to the runtime and ends the process at once.
        void OnSignal(PosixSignalContext signal)
        {
            if (!stop.IsCancellationRequested)
            {
                signal.Cancel = true;
                Console.Error.WriteLine($"{signal.Signal}: stopping after the batch in flight… (again to abort)");
                stop.Cancel();
            }
        }

        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using var registration = cancellationToken.Register(stop.Cancel);
        var progress = new RunProgress(settings.Json, config.Sync.IsMultiSource);
        if (!settings.Follow)
        {
            var outcome = await progress.ShowAsync(tables, () => engine.RunOnceAsync(options, progress, stop.Token)).ConfigureAwait(false);
            Print(outcome, settings.Json);
            return outcome.Report.ExitCode;
        }

        var worst = ExitCodes.Completed;
        await engine.FollowAsync(
            options with { ReportPath = null },
            progress,
            outcome =>
            {
                PrintPass(outcome, settings.Json);
                // A pass cut short by the stop signal is how --follow ends, not a partial result.
                if (!outcome.OnlyStopped)
                {
                    worst = Math.Max(worst, outcome.Report.ExitCode == ExitCodes.Failed ? ExitCodes.Partial : outcome.Report.ExitCode);
                }
                return Task.CompletedTask;
            },
            stop.Token).ConfigureAwait(false);
        return worst;
    }

    /// <summary>In follow mode a pass that wrote nothing and found nothing new is one line, not a table.</summary>
    private static void PrintPass(RunOutcome outcome, bool json)
    {
        var s = outcome.Report.Statistics;
        if (!json && s.RecordsInserted + s.RecordsUpdated + s.RecordsDeleted + s.Errors == 0)
        {
            Console.Out.WriteLine($"{outcome.Report.Metadata.CompletedAt} {outcome.Report.Metadata.SyncId}: no changes ({s.RecordsProcessed} re-read, all already applied)");
            return;
        }

        Print(outcome, json);
    }

    private static void Print(RunOutcome outcome, bool json)
    {
        if (json)
        {
            Console.Out.WriteLine(outcome.Report.ToJson());
        }
        else
        {
            ReportSummary.Print(outcome.Report, outcome.ReportPath);
        }
    }
}
