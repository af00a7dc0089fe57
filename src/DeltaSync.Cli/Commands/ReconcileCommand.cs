using System.ComponentModel;
using System.Globalization;
using DeltaSync.Cli.Output;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.Reporting;
using NodaTime;
using Spectre.Console.Cli;

namespace DeltaSync.Cli.Commands;

/// <summary><c>deltasync reconcile</c>.</summary>
public sealed class ReconcileSettings : TableSettings
{
    [CommandOption("--report <FILE>")]
    [Description("Write the sync report here (default: reports/ beside the state).")]
    public string? Report { get; init; }
}

/// <summary>
/// Reconciles the selected tables with the destination now, whatever their cdc_method: key-range digests on both
/// sides, bisecting only the ranges that differ, and the repairs (including hard deletes a timestamp or version cursor
/// cannot see) applied through the ledger. Positions do not move.
/// </summary>
public sealed class ReconcileCommand : AsyncCommand<ReconcileSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, ReconcileSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var config = CliHost.LoadConfig(settings.Config);
        using var logging = CliHost.Logging(settings.Verbose);
        var engine = new SyncEngine(config, CliHost.Connectors(), SystemClock.Instance, logging.CreateLogger("DeltaSync"));
        var tables = engine.SelectTables(settings.Tables).Select(p => p.Label(config.Sync.IsMultiSource)).ToList();
        var progress = new RunProgress(settings.Json, config.Sync.IsMultiSource);
        var options = new RunOptions(settings.Tables, FullRefresh: false, settings.Report) { Reconcile = true };
        var outcome = await progress.ShowAsync(tables, () => engine.RunOnceAsync(options, progress, cancellationToken)).ConfigureAwait(false);
        if (settings.Json)
        {
            Console.Out.WriteLine(outcome.Report.ToJson());
            return outcome.Report.ExitCode;
        }

        Terminal.Table(
            ["table", "ranges compared", "ranges differing", "rows fetched", "bytes fetched", "rows upserted", "rows deleted"],
            outcome.Report.Tables.Select(t => Row(t.Table, t.Reconciliation)));
        ReportSummary.Print(outcome.Report, outcome.ReportPath);
        return outcome.Report.ExitCode;
    }

    private static string[] Row(string table, ReconciliationReport? r) => r is null
        ? [table, "-", "-", "-", "-", "-", "-"]
        : [table, N(r.RangesCompared), N(r.RangesDiffering), N(r.RowsFetched), N(r.BytesFetched), N(r.RowsUpserted), N(r.RowsDeleted)];

    private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
}
