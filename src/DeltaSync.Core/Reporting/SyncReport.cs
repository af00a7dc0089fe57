using System.Text.Json;
using System.Text.Json.Serialization;

namespace DeltaSync.Core.Reporting;

/// <summary>The spec's "Sync Status Report", written for every run.</summary>
public sealed record SyncReport(
    [property: JsonPropertyName("metadata")] ReportMetadata Metadata,
    [property: JsonPropertyName("statistics")] ReportStatistics Statistics,
    [property: JsonPropertyName("tables")] IReadOnlyList<TableReport> Tables,
    [property: JsonPropertyName("conflicts")] IReadOnlyList<ConflictReport> Conflicts,
    [property: JsonPropertyName("late_arriving_data")] IReadOnlyList<LateArrivalReport> LateArrivingData,
    [property: JsonPropertyName("checkpoint")] ReportCheckpoint Checkpoint,
    [property: JsonPropertyName("errors")] IReadOnlyList<ReportError> Errors,
    [property: JsonPropertyName("warnings")] IReadOnlyList<string> Warnings)
{
    /// <summary>
    /// The report's JSON settings. Its types' metadata is source-generated (<see cref="ReportJsonContext"/>): building it by
    /// reflection cost every run about 0.08 s of start-up; other types still resolve by reflection.
    /// </summary>
    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        TypeInfoResolver = System.Text.Json.Serialization.Metadata.JsonTypeInfoResolver.Combine(ReportJsonContext.Default, new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver()),
    };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>The process exit code for this report: 0 completed, 3 partial, 1 failed.</summary>
    public int ExitCode => Metadata.Status switch
    {
        "completed" => 0,
        "partial" => 3,
        _ => 1,
    };
}

public sealed record ReportMetadata(
    [property: JsonPropertyName("sync_id")] string SyncId,
    [property: JsonPropertyName("source")] string Source,
    [property: JsonPropertyName("destination")] string Destination,
    [property: JsonPropertyName("started_at")] string StartedAt,
    [property: JsonPropertyName("completed_at")] string CompletedAt,
    [property: JsonPropertyName("duration_seconds")] double DurationSeconds,
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("sync_name")] string SyncName,
    [property: JsonPropertyName("mode")] string Mode);

public sealed record ReportStatistics(
    [property: JsonPropertyName("records_processed")] long RecordsProcessed,
    [property: JsonPropertyName("records_inserted")] long RecordsInserted,
    [property: JsonPropertyName("records_updated")] long RecordsUpdated,
    [property: JsonPropertyName("records_deleted")] long RecordsDeleted,
    [property: JsonPropertyName("conflicts_detected")] long ConflictsDetected,
    [property: JsonPropertyName("conflicts_resolved")] long ConflictsResolved,
    [property: JsonPropertyName("errors")] long Errors,
    [property: JsonPropertyName("records_unchanged")] long RecordsUnchanged,
    [property: JsonPropertyName("records_dead_lettered")] long RecordsDeadLettered);

public sealed record TableReport(
    [property: JsonPropertyName("table")] string Table,
    [property: JsonPropertyName("records_processed")] long RecordsProcessed,
    [property: JsonPropertyName("records_inserted")] long RecordsInserted,
    [property: JsonPropertyName("records_updated")] long RecordsUpdated,
    [property: JsonPropertyName("records_deleted")] long RecordsDeleted,
    [property: JsonPropertyName("last_sync_timestamp")] string? LastSyncTimestamp,
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("cdc_method")] string CdcMethod,
    [property: JsonPropertyName("records_unchanged")] long RecordsUnchanged,
    [property: JsonPropertyName("records_dead_lettered")] long RecordsDeadLettered,
    [property: JsonPropertyName("high_water_mark")] string? HighWaterMark,
    [property: JsonPropertyName("position")] string Position,
    [property: JsonPropertyName("checkpoint_version")] long CheckpointVersion,
    [property: JsonPropertyName("resumed_from_version")] long? ResumedFromVersion,
    [property: JsonPropertyName("duration_seconds")] double DurationSeconds,
    [property: JsonPropertyName("error")] string? Error)
{
    /// <summary>The event-time watermark: the high-water mark minus the tolerance window (never past the source's clock).</summary>
    [JsonPropertyName("watermark")]
    public string? Watermark { get; init; }

    /// <summary>Records that arrived out of order within the tolerance window.</summary>
    [JsonPropertyName("records_out_of_order")]
    public long RecordsOutOfOrder { get; init; }

    /// <summary>Records that arrived later than the tolerance window (listed in <c>late_arriving_data</c>).</summary>
    [JsonPropertyName("records_late")]
    public long RecordsLate { get; init; }

    /// <summary>Changed records whose timestamp went back below the applied version's.</summary>
    [JsonPropertyName("records_backdated")]
    public long RecordsBackdated { get; init; }

    /// <summary>Rows carried as deletes because their <c>soft_delete</c> field marks them deleted.</summary>
    [JsonPropertyName("records_soft_deleted")]
    public long RecordsSoftDeleted { get; init; }

    /// <summary>Deletes older than the record's last applied update, ignored.</summary>
    [JsonPropertyName("delayed_deletes_ignored")]
    public long DelayedDeletesIgnored { get; init; }

    /// <summary>Re-inserts older than the record's delete, not revived.</summary>
    [JsonPropertyName("revivals_refused")]
    public long RevivalsRefused { get; init; }

    /// <summary>Records whose version or sequence went down (a reset), compared by content.</summary>
    [JsonPropertyName("version_resets")]
    public long VersionResets { get; init; }

    /// <summary>Child-table rows deleted at the destination by this table's deletes (<c>sync.relationships</c>).</summary>
    [JsonPropertyName("child_rows_deleted")]
    public long ChildRowsDeleted { get; init; }

    /// <summary>Child-table rows whose foreign key was set to NULL by this table's deletes.</summary>
    [JsonPropertyName("child_rows_set_null")]
    public long ChildRowsSetNull { get; init; }

    /// <summary>Timestamp CDC: rows with NULL updated_at, by how their changes were found (absent for other methods).</summary>
    [JsonPropertyName("null_timestamps")]
    public NullTimestampsReport? NullTimestamps { get; init; }

    /// <summary>Timestamp CDC: zone-less timestamps that fell in a DST gap or overlap of the source zone.</summary>
    [JsonPropertyName("dst_resolved")]
    public DstResolvedReport? DstResolved { get; init; }

    /// <summary>Timestamp CDC: rows stamped more than <c>max_future_skew</c> ahead of the source's clock (applied).</summary>
    [JsonPropertyName("records_future_timestamp")]
    public long? RecordsFutureTimestamp { get; init; }

    /// <summary>
    /// How the destination loaded the table itself in this run (<c>binary_copy</c>: PostgreSQL → PostgreSQL raw binary
    /// COPY pass-through; <c>sqlite_insert_select</c>: SQLite → SQLite copy over an attached source file); absent when the
    /// rows went through the pipeline.
    /// </summary>
    [JsonPropertyName("initial_load")]
    public string? InitialLoad { get; init; }

    /// <summary>What a reconciliation of the table compared, fetched and repaired in this run (absent when none ran).</summary>
    [JsonPropertyName("reconciliation")]
    public ReconciliationReport? Reconciliation { get; init; }

    /// <summary>The source this table's changes came from (only with several sources, <c>sync.sources</c>).</summary>
    [JsonPropertyName("source")]
    public string? Source { get; init; }

    /// <summary>Conflicts this table's changes met at the destination in the run (absent when none).</summary>
    [JsonPropertyName("conflicts_detected")]
    public long? ConflictsDetected { get; init; }
}

/// <summary>Rows whose updated_at was NULL: ordered by created_at instead, or compared with the ledger by row hash.</summary>
public sealed record NullTimestampsReport(
    [property: JsonPropertyName("created_at_fallback")] long CreatedAtFallback,
    [property: JsonPropertyName("row_hash")] long RowHash);

/// <summary>Zone-less timestamps resolved by the DST rule: a gap shifts forward by its length, an overlap takes the earlier offset.</summary>
public sealed record DstResolvedReport(
    [property: JsonPropertyName("gap")] long Gap,
    [property: JsonPropertyName("overlap")] long Overlap);

/// <summary>A table's reconciliation figures in the report.</summary>
public sealed record ReconciliationReport(
    [property: JsonPropertyName("ranges_compared")] long RangesCompared,
    [property: JsonPropertyName("ranges_differing")] long RangesDiffering,
    [property: JsonPropertyName("rows_fetched")] long RowsFetched,
    [property: JsonPropertyName("bytes_fetched")] long BytesFetched,
    [property: JsonPropertyName("rows_upserted")] long RowsUpserted,
    [property: JsonPropertyName("rows_deleted")] long RowsDeleted)
{
    public static ReconciliationReport From(Capture.ReconciliationStats stats)
    {
        ArgumentNullException.ThrowIfNull(stats);
        return new(stats.RangesCompared, stats.RangesDiffering, stats.RowsFetched, stats.BytesFetched, stats.RowsUpserted, stats.RowsDeleted);
    }
}

public sealed record ConflictReport(
    [property: JsonPropertyName("record_id")] string RecordId,
    [property: JsonPropertyName("conflict_type")] string ConflictType,
    [property: JsonPropertyName("fields")] IReadOnlyList<string> Fields,
    [property: JsonPropertyName("source_values")] IReadOnlyDictionary<string, IReadOnlyDictionary<string, object?>> SourceValues,
    [property: JsonPropertyName("resolution")] string Resolution,
    [property: JsonPropertyName("resolved_value")] IReadOnlyDictionary<string, object?> ResolvedValue,
    [property: JsonPropertyName("resolved_at"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? ResolvedAt);

public sealed record LateArrivalReport(
    [property: JsonPropertyName("record_id")] string RecordId,
    [property: JsonPropertyName("expected_timestamp")] string ExpectedTimestamp,
    [property: JsonPropertyName("actual_timestamp")] string ActualTimestamp,
    [property: JsonPropertyName("delay_seconds")] double DelaySeconds,
    [property: JsonPropertyName("handled")] bool Handled)
{
    /// <summary>The table the record belongs to.</summary>
    [JsonPropertyName("table")]
    public string? Table { get; init; }
}

public sealed record ReportCheckpoint(
    [property: JsonPropertyName("last_sync_timestamp")] string LastSyncTimestamp,
    [property: JsonPropertyName("processed_record_ids")] IReadOnlyList<string> ProcessedRecordIds,
    [property: JsonPropertyName("processed_record_ids_total")] long ProcessedRecordIdsTotal,
    [property: JsonPropertyName("processed_record_ids_truncated")] bool ProcessedRecordIdsTruncated,
    [property: JsonPropertyName("high_water_mark")] string? HighWaterMark,
    [property: JsonPropertyName("state_version")] string StateVersion);

/// <summary>One error of a run: a failed table or a dead-lettered record.</summary>
public sealed record ReportError(
    [property: JsonPropertyName("table")] string Table,
    [property: JsonPropertyName("error_class")] string ErrorClass,
    [property: JsonPropertyName("message")] string Message,
    [property: JsonPropertyName("record_id")] string? RecordId = null);

/// <summary>Source-generated JSON metadata for the report (see <see cref="SyncReport.JsonOptions"/>).</summary>
[JsonSerializable(typeof(SyncReport))]
internal sealed partial class ReportJsonContext : JsonSerializerContext;
