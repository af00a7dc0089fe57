using DeltaSync.Core.Connectors;
using NodaTime;

namespace DeltaSync.Core.Pipeline;

/// <summary>Progress of one table during a run, for progress bars and logs.</summary>
public sealed record TableProgress(string Table, string Phase, long RecordsProcessed, long Inserted, long Updated, long Deleted, long Unchanged, bool Done)
{
    /// <summary>The source whose stream of <see cref="Table"/> this is (with several sources, a table name can be read by more than one).</summary>
    public string? Source { get; init; }
}

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
    /// <summary>
    /// How the destination loaded the table in this pass when it did so itself (<see cref="IDestination.TryBulkLoadAsync"/>,
    /// e.g. <c>binary_copy</c>); null when the rows went through the pipeline.
    /// </summary>
    public string? InitialLoad { get; init; }

    /// <summary>
    /// The pass was cut short by the run's stop request (Ctrl+C, SIGTERM) before it finished, with nothing failed: its
    /// status is partial, and the next run continues from its last checkpoint.
    /// </summary>
    public bool Stopped { get; init; }

    /// <summary>Conflicts this table's changes met at the destination (multi-source tables).</summary>
    public long ConflictsDetected { get; init; }

    /// <summary>What a reconciliation in this pass compared, fetched and repaired; null when none ran.</summary>
    public Capture.ReconciliationStats? Reconciliation { get; init; }

    /// <summary>For timestamp CDC: NULL, DST-resolved and future timestamps met by the run; null for other methods.</summary>
    public TimestampCounts? Timestamps { get; init; }

    /// <summary>The event-time watermark after the run: the high-water mark (never past the source's clock) minus the tolerance window.</summary>
    public Instant? Watermark { get; init; }

    /// <summary>What this run noticed about time and deletes (late and out-of-order records, soft and cascaded deletes…).</summary>
    public TimeAndDeleteCounts Counts { get; init; } = new();

    /// <summary>Records that arrived after the watermark had passed their event time (at most <see cref="TimeAndDeleteCounts.LateListed"/>).</summary>
    public IReadOnlyList<Reporting.LateArrivalReport> LateArrivals { get; init; } = [];
}

/// <summary>Per-table counts of the late-data and delete handling of one run.</summary>
public sealed class TimeAndDeleteCounts
{
    /// <summary>At most this many late records are listed per table in the report (all are counted).</summary>
    public const int LateListed = 1000;

    /// <summary>Records older than the newest already seen but within the tolerance window: applied in place.</summary>
    public long OutOfOrder { get; set; }

    /// <summary>Records older than the watermark (later than the tolerance): re-processed against the ledger and listed.</summary>
    public long Late { get; set; }

    /// <summary>Changed rows whose timestamp went back below what was applied for them: applied.</summary>
    public long Backdated { get; set; }

    /// <summary>Rows marked deleted by the table's <c>soft_delete</c> field, carried as deletes.</summary>
    public long SoftDeleted { get; set; }

    /// <summary>Deletes older than the record's last applied update: the update stood.</summary>
    public long DelayedDeletesIgnored { get; set; }

    /// <summary>Re-inserts older than the record's delete: the record stayed deleted.</summary>
    public long RevivalsRefused { get; set; }

    /// <summary>Rows whose version or sequence value went down: handled by content hash.</summary>
    public long VersionResets { get; set; }

    /// <summary>Rows of child tables deleted at the destination by a cascade from this table's deletes.</summary>
    public long ChildRowsDeleted { get; set; }

    /// <summary>Rows of child tables whose foreign key was set to NULL by this table's deletes.</summary>
    public long ChildRowsNulled { get; set; }
}
