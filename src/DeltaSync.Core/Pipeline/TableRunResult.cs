using DeltaSync.Core.Connectors;
using NodaTime;

namespace DeltaSync.Core.Pipeline;

/// <summary>Progress of one table during a run, for progress bars and logs.</summary>
public sealed record TableProgress(string Table, string Phase, long RecordsProcessed, long Inserted, long Updated, long Deleted, long Unchanged, bool Done);

/// <summary>How one table's run ended.</summary>
public enum TableStatus
{
    Completed,
    Partial,
    Failed,
}

/// <summary>The outcome of one table in one run; the report is built from these.</summary>
public sealed record TableRunResult(
    TablePlan Plan,
    TableStatus Status,
    long RecordsProcessed,
    long Inserted,
    long Updated,
    long Deleted,
    long Unchanged,
    long DeadLettered,
    Instant? HighWaterMark,
    string Position,
    long CheckpointVersion,
    long? ResumedFromVersion,
    Instant StartedAt,
    Instant CompletedAt,
    IReadOnlyList<string> ProcessedRecordIds,
    IReadOnlyList<string> Warnings,
    IReadOnlyList<Reporting.ReportError> Errors,
    string? Error)
{
    /// <summary>What a reconciliation in this pass compared, fetched and repaired; null when none ran.</summary>
    public Capture.ReconciliationStats? Reconciliation { get; init; }
}
