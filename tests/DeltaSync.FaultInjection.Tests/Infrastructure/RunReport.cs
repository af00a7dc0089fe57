using System.Text.Json;

namespace DeltaSync.FaultInjection.Tests.Infrastructure;

/// <summary>The parts of a run's report (README, "The sync report") that trials check.</summary>
internal sealed record RunReport(
    string Status,
    long Inserted,
    long Updated,
    long Deleted,
    IReadOnlyList<string> Warnings,
    IReadOnlyList<ReportedError> Errors)
{
    public long Writes => Inserted + Updated + Deleted;

    /// <summary>The report at <paramref name="path"/>, or null when the run wrote none.</summary>
    public static RunReport? TryRead(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        using var json = JsonDocument.Parse(File.ReadAllText(path));
        var root = json.RootElement;
        var statistics = root.GetProperty("statistics");
        return new RunReport(
            root.GetProperty("metadata").GetProperty("status").GetString() ?? "",
            statistics.GetProperty("records_inserted").GetInt64(),
            statistics.GetProperty("records_updated").GetInt64(),
            statistics.GetProperty("records_deleted").GetInt64(),
            root.GetProperty("warnings").EnumerateArray().Select(w => w.GetString() ?? "").ToList(),
            root.GetProperty("errors").EnumerateArray().Select(e => new ReportedError(
                e.GetProperty("table").GetString() ?? "",
                e.GetProperty("error_class").GetString() ?? "",
                e.GetProperty("message").GetString() ?? "")).ToList());
    }

    public bool Warns(string fragment) => Warnings.Any(w => w.Contains(fragment, StringComparison.OrdinalIgnoreCase));

    public override string ToString() =>
        $"{Status}: +{Inserted} ~{Updated} -{Deleted}; warnings [{string.Join(" / ", Warnings)}]; errors [{string.Join(" / ", Errors.Select(e => $"{e.Table} {e.ErrorClass}: {e.Message}"))}]";
}

internal sealed record ReportedError(string Table, string ErrorClass, string Message);
