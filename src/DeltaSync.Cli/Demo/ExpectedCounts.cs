using System.Globalization;
using DeltaSync.Core.Reporting;

namespace DeltaSync.Cli.Demo;

/// <summary>What one table's line of a run report should say: the demo knows, because it made the changes.</summary>
internal sealed record ExpectedCounts(string Table, long Inserted, long Updated, long Deleted)
{
    /// <summary>Run 1 copies every row except those with an unreadable <c>updated_at</c>.</summary>
    public static IReadOnlyList<ExpectedCounts> FullSync(ShopFacts facts) =>
        DemoShop.Tables.Select(t => new ExpectedCounts(t.Name, facts.RowsOf(t.Name) - facts.UnreadableIn(t.Name).Count, 0, 0)).ToList();

    /// <summary>Run 2 writes exactly what the application changed.</summary>
    public static IReadOnlyList<ExpectedCounts> Incremental(IReadOnlyList<TableChanges> changes) =>
        changes.Select(c => new ExpectedCounts(c.Table, c.Inserted, c.Updated, c.Deleted)).ToList();

    /// <summary>True when the report's table line has these counts and the table did not fail.</summary>
    public bool IsMetBy(SyncReport report) =>
        Find(report) is { } t && t.Status != "failed" && t.RecordsInserted == Inserted && t.RecordsUpdated == Updated && t.RecordsDeleted == Deleted;

    /// <summary>"customers: inserted 0 (expected 0), updated 23 (expected 23), deleted 0 (expected 0)".</summary>
    public string Describe(SyncReport report)
    {
        if (Find(report) is not { } t)
        {
            return $"{Table}: missing from the report (expected inserted {N(Inserted)}, updated {N(Updated)}, deleted {N(Deleted)})";
        }

        var line = $"{Table}: inserted {N(t.RecordsInserted)} (expected {N(Inserted)}), updated {N(t.RecordsUpdated)} (expected {N(Updated)}), deleted {N(t.RecordsDeleted)} (expected {N(Deleted)})";
        return t.Status == "failed" ? $"{line}; the table FAILED: {t.Error}" : IsMetBy(report) ? line : line + "  <-- differs";
    }

    private TableReport? Find(SyncReport report) => report.Tables.FirstOrDefault(t => string.Equals(t.Table, Table, StringComparison.OrdinalIgnoreCase));

    private static string N(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
}
