using Microsoft.Extensions.Logging;

namespace DeltaSync.Core.Diagnostics;

/// <summary>Source-generated, structured log messages of the engine.</summary>
public static partial class Log
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "Run {RunId} started: {TableCount} table(s), source {Source}, destination {Destination}")]
    public static partial void RunStarted(ILogger logger, string runId, int tableCount, string source, string destination);

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "Run {RunId} finished {Status} in {Seconds:F2}s")]
    public static partial void RunFinished(ILogger logger, string runId, string status, double seconds);

    [LoggerMessage(EventId = 110, Level = LogLevel.Information, Message = "Table {Table}: starting {Method} capture from {Position} (checkpoint version {Version})")]
    public static partial void TableStarted(ILogger logger, string table, string method, string position, long version);

    [LoggerMessage(EventId = 111, Level = LogLevel.Debug, Message = "Table {Table}: batch committed, {Inserted} inserted, {Updated} updated, {Deleted} deleted, {Skipped} unchanged, checkpoint version {Version}")]
    public static partial void BatchCommitted(ILogger logger, string table, long inserted, long updated, long deleted, int skipped, long version);

    [LoggerMessage(EventId = 112, Level = LogLevel.Information, Message = "Table {Table}: {Status}, {Processed} processed, {Inserted} inserted, {Updated} updated, {Deleted} deleted")]
    public static partial void TableFinished(ILogger logger, string table, string status, long processed, long inserted, long updated, long deleted);

    [LoggerMessage(EventId = 115, Level = LogLevel.Information, Message = "Table {Table}: time waiting for capture {Capture:F2}s, ledger {Resolve:F2}s, waiting for the table's lock {Lock:F2}s, conflict merge {Merge:F2}s, destination (merge included) {Apply:F2}s, state saves {Save:F2}s")]
    public static partial void TableTimings(ILogger logger, string table, double capture, double resolve, double @lock, double merge, double apply, double save);

    [LoggerMessage(EventId = 133, Level = LogLevel.Information, Message = "Table {Table}: conflict path: {Fast} record(s) merged on the fast path, {Full} with their stored bases")]
    public static partial void MergePaths(ILogger logger, string table, long fast, long full);

    [LoggerMessage(EventId = 117, Level = LogLevel.Information, Message = "Table {Table}: initial load by {How}: {Rows} rows in {Seconds:0.000} s (copy {CopySeconds:0.000} s, ledger {LedgerSeconds:0.000} s), checkpoint version {Version}")]
    public static partial void BulkLoaded(ILogger logger, string table, string how, long rows, double seconds, double copySeconds, double ledgerSeconds, long version);

    [LoggerMessage(EventId = 118, Level = LogLevel.Debug, Message = "Table {Table}: no bulk load ({Reason}); rows go through the pipeline")]
    public static partial void BulkLoadSkipped(ILogger logger, string table, string reason);

    [LoggerMessage(EventId = 119, Level = LogLevel.Information, Message = "Table {Table}: stopped on request before the pass finished; the next run continues from checkpoint version {Version}")]
    public static partial void TableStopped(ILogger logger, string table, long version);

    [LoggerMessage(EventId = 113, Level = LogLevel.Error, Message = "Table {Table} failed ({ErrorClass}): {Reason}")]
    public static partial void TableFailed(ILogger logger, string table, string errorClass, string reason);

    [LoggerMessage(EventId = 114, Level = LogLevel.Warning, Message = "Table {Table}: {Warning}")]
    public static partial void TableWarning(ILogger logger, string table, string warning);

    [LoggerMessage(EventId = 120, Level = LogLevel.Warning, Message = "Table {Table}: record {RecordId} sent to the dead-letter queue: {Reason}")]
    public static partial void DeadLettered(ILogger logger, string table, string recordId, string reason);

    [LoggerMessage(EventId = 130, Level = LogLevel.Warning, Message = "Sync {Sync} run {RunId}: {Detected} conflict(s), {PendingReview} waiting for manual review ({Reason}); webhook {Webhook}")]
    public static partial void ConflictsNeedAttention(ILogger logger, string sync, string runId, int detected, int pendingReview, string reason, string webhook);

    [LoggerMessage(EventId = 131, Level = LogLevel.Warning, Message = "Sync {Sync} run {RunId}: the conflict webhook {Webhook} was not delivered after {Attempts} attempt(s): {Error}")]
    public static partial void ConflictWebhookFailed(ILogger logger, string sync, string runId, string webhook, int attempts, string error);

    [LoggerMessage(EventId = 132, Level = LogLevel.Debug, Message = "Sync {Sync} run {RunId}: conflict webhook {Webhook} attempt {Attempt} failed ({Error}); trying again in {DelayMs} ms")]
    public static partial void ConflictWebhookRetry(ILogger logger, string sync, string runId, string webhook, int attempt, string error, double delayMs);
}
