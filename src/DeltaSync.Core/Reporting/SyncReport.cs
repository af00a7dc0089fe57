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
    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
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
    /// <summary>What a reconciliation of the table compared, fetched and repaired in this run (absent when none ran).</summary>
    [JsonPropertyName("reconciliation")]
    public ReconciliationReport? Reconciliation { get; init; }
}

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
    [property: JsonPropertyName("resolved_at")] string? ResolvedAt);

public sealed record LateArrivalReport(
    [property: JsonPropertyName("record_id")] string RecordId,
    [property: JsonPropertyName("expected_timestamp")] string ExpectedTimestamp,
    [property: JsonPropertyName("actual_timestamp")] string ActualTimestamp,
    [property: JsonPropertyName("delay_seconds")] double DelaySeconds,
    [property: JsonPropertyName("handled")] bool Handled);

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
