using System.Diagnostics;
using DeltaSync.Core.Capture;
using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Diagnostics;
using DeltaSync.Core.Model;
using DeltaSync.Core.State;
using NodaTime;

namespace DeltaSync.Core.Pipeline;

/// <summary>
/// The initial load a destination makes itself (<see cref="IDestination.TryBulkLoadAsync"/>): offered when the pass
/// would snapshot the table from the start and nothing between source and destination rewrites rows — one source, no
/// key mapping, no soft deletes, a capture whose snapshot is a plain copy (timestamp, polling, or version with a sequence_field). The destination decides the rest (empty table, matching types) and commits rows, ledger and checkpoint in
/// one transaction, fenced by the lease's epoch like a batch; otherwise the pipeline loads the table as always.
/// </summary>
public sealed partial class TablePipeline
{
    /// <summary>A chunked bulk load commits every this many batches' worth of rows (so an interrupted load resumes there).</summary>
    private const int BulkChunkBatches = 10;

    private bool MayBulkLoad(Position position, bool reconcile, ConflictSession? conflicts, SoftDeletes? softDeletes) =>
        position.IsNone
        && !reconcile
        && conflicts is null
        && softDeletes is null
        && _plan.KeyMap.Count == 0
        && (_plan.Method is CdcMethod.Timestamp or CdcMethod.Polling || (_plan.Method == CdcMethod.Version && _plan.VersionField is null));

    // After a bulk load the ledger holds the source's row digests. A timestamp or sequence cursor re-reads only what
    // changed (and its lookback), so computing digests for those rows costs nothing worth noticing. Polling compares
    // every row on every pass: over such a ledger its passes read only keys and the source's digests, and whole rows
    // only where they differ (PostgreSQL), which is cheaper than reading and hashing every row. Per-row versions
    // (version_field) compare versions first and would have to read every row's digest too, so they load through the
    // pipeline, with the engine's own row hash.

    /// <returns>
    /// Whether the destination loaded the whole table (the pass is complete). When it loaded only part of it (a chunked
    /// load stopped by a chunk it could not copy), <paramref name="state"/>'s position is where the pipeline continues.
    /// </returns>
    private async Task<bool> TryBulkLoadAsync(
        RunState state,
        CaptureRequest request,
        string method,
        string fingerprint,
        CheckpointCounters totals,
        LateArrivals lateness,
        TableLease? lease,
        IProgress<TableProgress>? progress,
        CancellationToken stop)
    {
        var services = _services;
        Instant? futureLimit = _plan.Method == CdcMethod.Timestamp
            ? await SourceNowAsync(state, stop).ConfigureAwait(false) + services.Config.Cdc.Timestamp.MaxFutureSkew
            : null;
        var before = state.Version;
        var watch = Stopwatch.StartNew();
        // The last chunk committed and saved to the state store (a chunked load), and what it had copied by then.
        (BulkLoadStats Stats, Checkpoint Committed)? saved = null;
        var bulk = new BulkLoadRequest(
            request,
            stats =>
            {
                var highWaterMark = Newest(state.HighWaterMark, stats.HighWaterMark);
                return new Checkpoint(
                    _plan.Stream,
                    _plan.Table,
                    before + stats.Commits,
                    stats.Position,
                    method,
                    highWaterMark,
                    lateness.WatermarkAfter(highWaterMark) ?? state.Watermark,
                    fingerprint,
                    totals.Add(stats.Rows, stats.Rows, 0, 0, 0),
                    lease?.Hold.Epoch ?? 0,
                    services.RunId,
                    services.Clock.GetCurrentInstant());
            })
        {
            FutureLimit = futureLimit,
            ChunkRows = (long)services.Config.Sync.BatchSize * BulkChunkBatches,
            ChunkCommitted = async (stats, committed, cancellationToken) =>
            {
                // Committed with the data already; the store's copy may fail and be recovered from the destination.
                await services.History.AppendAsync(committed, lease?.Hold, CancellationToken.None).ConfigureAwait(false);
                state.Version = committed.Version;
                state.Position = committed.Position;
                saved = (stats, committed);
                progress?.Report(state.Progress(_plan, "snapshot", done: false) with { RecordsProcessed = state.Processed + stats.Rows, Inserted = state.Inserted + stats.Rows });
                if (lease is not null)
                {
                    await lease.RenewIfDueAsync(cancellationToken).ConfigureAwait(false);
                }
            },
        };

        BulkLoadOutcome outcome;
        try
        {
            outcome = await services.Destination.TryBulkLoadAsync(services.Source, bulk, stop).ConfigureAwait(false);
        }
        catch (SyncException e) when (e.ErrorClass == ErrorClass.Permanent)
        {
            // A row the destination refuses (a constraint of its own) fails its chunk, which rolled back: the pipeline
            // loads the rest (from the last committed chunk, if any) and isolates that row in the dead-letter queue.
            state.Warnings.Add($"The bulk load of '{_plan.Table}' was refused by the destination ({e.Message}); {(saved is null ? "the table was" : "the rest of the table was")} loaded through the pipeline instead");
            Log.BulkLoadSkipped(services.Logger, _plan.Table, e.Message);
            if (saved is { } partial)
            {
                Account(state, partial.Stats, partial.Committed, watch.Elapsed);
            }

            return false;
        }
        catch (Exception) when (saved is { } partial)
        {
            // Stopped (Ctrl+C, a newer lease, the server) after some chunks committed: they count in this run's report.
            Account(state, partial.Stats, partial.Committed, watch.Elapsed);
            throw;
        }

        if (outcome.Stats is not { } stats || outcome.Committed is not { } committed)
        {
            Log.BulkLoadSkipped(services.Logger, _plan.Table, outcome.NotApplicable ?? "not applicable");
            return false;
        }

        Account(state, stats, committed, watch.Elapsed);
        if (saved?.Committed.Version != committed.Version)
        {
            // Committed with the data already; the store's copy may fail and be recovered from the destination next run.
            watch.Restart();
            await services.History.AppendAsync(committed, lease?.Hold, CancellationToken.None).ConfigureAwait(false);
            state.Timings.Save += watch.Elapsed;
        }

        if (!outcome.Complete)
        {
            Log.BulkLoadSkipped(services.Logger, _plan.Table, $"after {stats.Rows} rows: {outcome.NotApplicable}");
            return false;
        }

        progress?.Report(state.Progress(_plan, "snapshot", done: false));
        Log.TableTimings(services.Logger, _plan.Table, state.Timings.Capture.TotalSeconds, state.Timings.Resolve.TotalSeconds, state.Timings.Lock.TotalSeconds, state.Timings.Merge.TotalSeconds, state.Timings.Apply.TotalSeconds, state.Timings.Save.TotalSeconds);
        AddTimestampWarnings(state, stats.NullCursorRows);
        return true;
    }

    /// <summary>What a bulk load copied, in the run's counts, state and metrics.</summary>
    private void Account(RunState state, BulkLoadStats stats, Checkpoint committed, TimeSpan elapsed)
    {
        state.Timings.Apply += elapsed;
        state.InitialLoad = stats.Method;
        state.Version = committed.Version;
        state.Position = committed.Position;
        state.HighWaterMark = committed.HighWaterMark;
        state.Watermark = committed.Watermark;
        state.Processed += stats.Rows;
        state.Inserted += stats.Rows;
        state.Timestamps.CreatedAtFallback += stats.CreatedAtFallbackRows;
        state.Timestamps.Future += stats.FutureRows;
        state.Timestamps.DstGap += stats.DstGapRows;
        state.Timestamps.DstOverlap += stats.DstOverlapRows;
        state.Timestamps.NewestFuture = Newest(state.Timestamps.NewestFuture, stats.NewestFuture);
        state.Timestamps.RowHash = stats.NullCursorRows;
        var table = new KeyValuePair<string, object?>("table", _plan.Table);
        SyncMetrics.RecordsRead.Add(stats.Rows, table);
        SyncMetrics.RecordsApplied.Add(stats.Rows, table);
        SyncMetrics.BatchApplyLatency.Record(elapsed.TotalMilliseconds, table);
        Log.BulkLoaded(_services.Logger, _plan.Table, stats.Method, stats.Rows, elapsed.TotalSeconds, stats.CopyTime.TotalSeconds, stats.LedgerTime.TotalSeconds, committed.Version);
    }

    private static Instant? Newest(Instant? a, Instant? b) => a is null ? b : b is null ? a : Instant.Max(a.Value, b.Value);
}
