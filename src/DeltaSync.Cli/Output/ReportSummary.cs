using DeltaSync.Core.Reporting;

namespace DeltaSync.Cli.Output;

/// <summary>Prints a run's report for people: per-table counts, errors, warnings and where the full report is.</summary>
internal static class ReportSummary
{
    public static void Print(SyncReport report, string reportPath)
    {
        var m = report.Metadata;
        Terminal.Table(
            ["table", "method", "status", "processed", "inserted", "updated", "deleted", "unchanged", "dead-lettered", "checkpoint"],
            report.Tables.Select(t => new[]
            {
                t.Table, t.CdcMethod, t.Status, t.RecordsProcessed.ToString("N0", System.Globalization.CultureInfo.InvariantCulture),
                t.RecordsInserted.ToString("N0", System.Globalization.CultureInfo.InvariantCulture), t.RecordsUpdated.ToString("N0", System.Globalization.CultureInfo.InvariantCulture),
                t.RecordsDeleted.ToString("N0", System.Globalization.CultureInfo.InvariantCulture), t.RecordsUnchanged.ToString("N0", System.Globalization.CultureInfo.InvariantCulture),
                t.RecordsDeadLettered.ToString("N0", System.Globalization.CultureInfo.InvariantCulture), "v" + t.CheckpointVersion.ToString(System.Globalization.CultureInfo.InvariantCulture),
            }));
        foreach (var error in report.Errors.Take(20))
        {
            Terminal.Line($"error: {error.Table}{(error.RecordId is null ? "" : " record " + error.RecordId)}: {error.Message}");
        }

        if (report.Errors.Count > 20)
        {
            Terminal.Line($"… and {report.Errors.Count - 20} more errors (see the report)");
        }

        foreach (var warning in report.Warnings)
        {
            Terminal.Line("note: " + warning);
        }

        Terminal.Line($"{m.Status}: {report.Statistics.RecordsInserted:N0} inserted, {report.Statistics.RecordsUpdated:N0} updated, {report.Statistics.RecordsDeleted:N0} deleted in {m.DurationSeconds:0.###}s (run {m.SyncId})");
        Terminal.Line($"report: {reportPath}");
    }
}
