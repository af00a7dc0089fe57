using DeltaSync.Core.Reporting;

namespace DeltaSync.Cli.Output;

/// <summary>Prints a run's report for people: per-table counts, errors, warnings and where the full report is.</summary>
internal static class ReportSummary
{
    public static void Print(SyncReport report, string reportPath)
    {
        var m = report.Metadata;
        // Several sources: each stream is a source's table, so the source leads the row (and conflicts follow it).
        var multiSource = report.Tables.Any(t => t.Source is not null);
        string[] headers = ["table", "method", "status", "processed", "inserted", "updated", "deleted", "unchanged", "dead-lettered", "checkpoint"];
        Terminal.Table(
            multiSource ? ["source", .. headers, "conflicts"] : headers,
            report.Tables.Select(t =>
            {
                string[] row =
                [
                    t.Table, t.CdcMethod, t.Status, Count(t.RecordsProcessed), Count(t.RecordsInserted), Count(t.RecordsUpdated),
                    Count(t.RecordsDeleted), Count(t.RecordsUnchanged), Count(t.RecordsDeadLettered),
                    "v" + t.CheckpointVersion.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ];
                return multiSource ? [t.Source ?? "", .. row, Count(t.ConflictsDetected ?? 0)] : row;
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

    private static string Count(long value) => value.ToString("N0", System.Globalization.CultureInfo.InvariantCulture);
}
