using System.Diagnostics;
using System.Threading.Channels;
using DeltaSync.Core.Capture;
using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Diagnostics;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.Reporting;
using DeltaSync.Core.State;
using Microsoft.Extensions.Logging;
using NodaTime;

namespace DeltaSync.Core.Pipeline;

/// <summary>Everything a table pipeline shares with the rest of a run.</summary>
public sealed record PipelineServices(
    SyncConfig Config,
    ISource Source,
    IDestination Destination,
    CheckpointHistory History,
    IClock Clock,
    ILogger Logger,
    string RunId,
    IReadOnlySet<string> CompletedRunIds,
    BatchApplier Applier)
{
    /// <summary>The run's conflict handling; null when no destination table is written by several sources.</summary>
    public ConflictSession? Conflicts { get; init; }
}

/// <summary>
/// One table's sync: capture → (bounded channel) → resolve against the ledger → apply rows, ledger and checkpoint in
/// one destination transaction → save the checkpoint version to the state store. The channel holds one batch (with
/// the one being read and the one being applied, three per table), so a slow destination slows capture and memory
/// stays at batch size × pipelines: every batch held ahead is copied by each garbage collection while it waits.
/// </summary>
public sealed partial class TablePipeline
{
    private const int ChannelCapacity = 1;
    private const int ProcessedIdsKept = 100;

    private readonly TablePlan _plan;
    private readonly PipelineServices _services;

    public TablePipeline(TablePlan plan, PipelineServices services)
    {
        _plan = plan;
        _services = services;
    }

    /// <summary>
    /// Runs one pass. <paramref name="stop"/> ends the pass cleanly after the batch in flight. With
    /// <paramref name="reconcile"/> the pass is one reconciliation of the table with the destination instead of its
    /// capture method's pass (<c>deltasync reconcile</c>); the position does not move.
    /// </summary>
    public async Task<TableRunResult> RunAsync(bool fullRefresh, IProgress<TableProgress>? progress, CancellationToken stop, bool reconcile = false)
    {
        var state = new RunState(_services.Clock.GetCurrentInstant());
        try
        {
            await RunCoreAsync(state, fullRefresh, reconcile, progress, stop).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // Stopped on request (Ctrl+C, SIGTERM) between batches: nothing failed, and what was committed stays; the
            // pass just did not finish, which the next one continues from the last checkpoint.
            state.Stopped = true;
            state.Warnings.Add($"'{_plan.Table}' was stopped on request before its pass finished; the next run continues from checkpoint version {state.Version}");
            Log.TableStopped(_services.Logger, _plan.Table, state.Version);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            var (errorClass, message) = Describe(e);
            state.Error = message;
            state.Errors.Add(new ReportError(_plan.Table, errorClass.ToString().ToLowerInvariant(), message));
            Log.TableFailed(_services.Logger, _plan.Table, errorClass.ToString(), message);
            _services.Logger.LogDebug(e, "Table {Table} failed", _plan.Table);
        }

        var status = state.Error is not null ? TableStatus.Failed : state.DeadLettered > 0 || state.Stopped ? TableStatus.Partial : TableStatus.Completed;
        progress?.Report(state.Progress(_plan, "done", done: true));
        Log.TableFinished(_services.Logger, _plan.Table, status.ToString().ToLowerInvariant(), state.Processed, state.Inserted, state.Updated, state.Deleted);
        return new TableRunResult(
            _plan,
            status,
            state.Processed,
            state.Inserted,
            state.Updated,
            state.Deleted,
            state.Unchanged,
            state.DeadLettered,
            state.HighWaterMark,
            state.Position.ToString(),
            state.Version,
            state.ResumedFrom,
            state.StartedAt,
            _services.Clock.GetCurrentInstant(),
            state.ProcessedIds,
            state.Warnings,
            state.Errors,
            state.Error)
        {
            Watermark = state.Watermark,
            Counts = state.Counts,
            LateArrivals = state.LateArrivals,
            Timestamps = _plan.Method == CdcMethod.Timestamp ? state.Timestamps.ToCounts() : null,
            Reconciliation = state.Reconciliation,
            ConflictsDetected = state.ConflictsDetected,
            InitialLoad = state.InitialLoad,
            Stopped = state.Stopped,
        };
    }

    private async Task RunCoreAsync(RunState state, bool fullRefresh, bool reconcile, IProgress<TableProgress>? progress, CancellationToken stop)
    {
        // Reading the source's catalog writes nothing, so it need not wait for the lease: both round trips at once.
        var describing = _services.Source.DescribeTableAsync(_plan.ToTableOptions(), stop);
        // One worker per table at a time: the lease (where the state store keeps them) fences every later write.
        TableLease? lease;
        try
        {
            lease = await TableLease.AcquireAsync(_services.History.Store, _plan.Stream, stop).ConfigureAwait(false);
        }
        catch
        {
            // Its outcome no longer matters (the lease's failure is the one to report), but it must not go unobserved.
            await describing.ContinueWith(static _ => { }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
            throw;
        }

        try
        {
            await RunLeasedAsync(state, fullRefresh, reconcile, progress, lease, describing, stop).ConfigureAwait(false);
        }
        finally
        {
            if (lease is not null)
            {
                await lease.ReleaseAsync().ConfigureAwait(false);
            }
        }
    }

    private async Task RunLeasedAsync(RunState state, bool fullRefresh, bool reconcile, IProgress<TableProgress>? progress, TableLease? lease, Task<TableSchema> describing, CancellationToken stop)
    {
        var services = _services;
        var config = services.Config;
        var scope = new LedgerScope(_plan.DestinationTable, _plan.SourceName);
        var schema = await describing.ConfigureAwait(false);
        // Records of several sources meet by primary key: key_map renames this source's key columns to the destination's.
        var conflicts = services.Conflicts is { } session && session.Covers(_plan) ? session : null;
        var destinationSchema = KeyMapping.Rename(schema, _plan.KeyMap);
        var evolution = await services.Destination.PrepareTableAsync(_plan.DestinationTable, destinationSchema, stop).ConfigureAwait(false);
        ReportEvolution(state, evolution);

        var checkpoint = await LoadCheckpointAsync(state, stop).ConfigureAwait(false);
        if (lease is not null && state.CommittedEpoch is { } committedEpoch && await lease.RaiseAboveAsync(committedEpoch, stop).ConfigureAwait(false))
        {
            // The destination committed under an epoch this store never handed out (it lost or restored its state): our
            // lease must rank above it, or every batch would be refused as a stale writer's.
            state.Warnings.Add($"The destination has committed '{_plan.Table}' under lease epoch {committedEpoch}, which the state store did not know (its state was lost or restored); the lease epoch was raised to {lease.Hold.Epoch}");
        }

        // Records already waiting in the dead-letter queue, unchanged, are not queued, logged or counted again on every
        // pass; the report notes that they are still there.
        var queued = (await services.History.Store.ReadDeadLettersAsync(_plan.Stream, int.MaxValue, stop).ConfigureAwait(false))
            .Select(d => (d.RecordId, d.RawRecord)).ToHashSet();
        var stillQueued = 0;
        var method = _plan.Method.ToString().ToLowerInvariant();
        var position = checkpoint?.Position ?? Position.None;
        if (fullRefresh)
        {
            position = Position.None;
            state.Warnings.Add($"Full refresh of '{_plan.Table}': re-read from the start; unchanged rows are recognised by the ledger and not rewritten");
        }
        else if (checkpoint is not null && checkpoint.Method != method)
        {
            position = Position.None;
            state.Warnings.Add($"'{_plan.Table}' changed cdc_method from {checkpoint.Method} to {method}; its position is not comparable, so it was re-snapshotted (the ledger keeps this idempotent)");
        }

        // A changed shape since the checkpoint (columns added or widened now, or by an earlier run that stopped before
        // its first commit) means rows synced earlier may lack values, or may have been refused by the narrower column:
        // one full re-read brings them up to date. The ledger keeps it idempotent; only rows whose content differs are written.
        var schemaChanged = evolution.Evolved || (checkpoint is not null && checkpoint.SchemaFingerprint != schema.Fingerprint());
        if (schemaChanged && !position.IsNone)
        {
            position = Position.None;
            state.Warnings.Add($"The schema of '{_plan.Table}' changed since checkpoint version {checkpoint?.Version}; the table was re-read in full so rows synced earlier get the new columns' values");
        }

        var fingerprint = schema.Fingerprint();
        state.Version = checkpoint?.Version ?? 0;
        state.Position = position;
        state.HighWaterMark = checkpoint?.HighWaterMark;
        var totals = checkpoint?.Totals ?? CheckpointCounters.Zero;
        Log.TableStarted(services.Logger, _plan.Table, method, position.ToString(), state.Version);

        var softDeletes = SoftDeletes.For(_plan, schema);
        // Event time: records older than the watermark the previous run left arrived later than the tolerance window.
        // The watermark never runs ahead of the source's clock (a future timestamp must not make every record late).
        var resuming = checkpoint is not null && !position.IsNone;
        var lateness = new LateArrivals(
            _plan.ToleranceWindow,
            resuming ? checkpoint!.Watermark : null,
            resuming ? checkpoint!.HighWaterMark : null,
            await SourceNowAsync(state, stop).ConfigureAwait(false),
            services.Clock);
        state.Watermark = checkpoint?.Watermark;
        // Reconciliation reads the destination's own digests, once everything the capture yielded before is applied.
        var drain = new DrainSignal();
        // What reads the source's changes: hybrid reads through its base capture.
        var readingMethod = _plan.Method == CdcMethod.Hybrid ? HybridCapture.BaseFor(services.Source, config.Cdc.Hybrid) : _plan.Method;
        var request = new CaptureRequest(_plan, schema, position, config.Sync.BatchSize, services.Destination.Ledger, scope, checkpoint?.HighWaterMark)
        {
            // Only the query-based captures can select a source digest (hybrid's through its base capture); log and
            // trigger capture never ask (and a pass of theirs, e.g. in run --follow, is spared the look-up).
            SourceDigests = readingMethod is CdcMethod.Timestamp or CdcMethod.Version or CdcMethod.Polling
                && await services.Destination.Ledger.HasSourceDigestsAsync(scope, stop).ConfigureAwait(false),
            WaitForApplied = drain.WaitAsync,
            DestinationDigests = async cancellationToken =>
            {
                await drain.WaitAsync(cancellationToken).ConfigureAwait(false);
                return await services.Destination.OpenRangeDigestsAsync(_plan.DestinationTable, destinationSchema, cancellationToken).ConfigureAwait(false);
            },
        };
        if (MayBulkLoad(position, reconcile, conflicts, softDeletes))
        {
            if (await TryBulkLoadAsync(state, request, method, fingerprint, totals, lateness, lease, progress, stop).ConfigureAwait(false))
            {
                return;
            }

            // A chunked load that stopped part-way committed its chunks: the capture continues its snapshot from there.
            if (!state.Position.IsNone)
            {
                position = state.Position;
                totals = totals.Add(state.Inserted, state.Inserted, 0, 0, 0);
                request = request with { Resume = position };
            }
        }

        var reconcileOptions = config.Cdc.Hybrid.Reconcile;
        await using var capture = reconcile
            ? new ReconcileCapture(services.Source, request, reconcileOptions, services.Clock)
            : _plan.Method == CdcMethod.Hybrid
            ? new HybridCapture(services.Source, request, readingMethod, config.Cdc.Hybrid.ReconcileInterval, services.Clock, reconcileOptions)
            : services.Source.CreateCapture(request);
        var queuedIds = queued.Select(q => q.RecordId).ToHashSet(StringComparer.Ordinal);
        var repairsQueued = 0;
        var channel = Channel.CreateBounded<ChangeBatch>(new BoundedChannelOptions(ChannelCapacity) { SingleReader = true, SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });
        using var producerStop = CancellationTokenSource.CreateLinkedTokenSource(stop);
        var producer = Task.Run(
            async () =>
            {
                try
                {
                    await foreach (var batch in capture.ReadAsync(producerStop.Token).ConfigureAwait(false))
                    {
                        drain.Handed();
                        await channel.Writer.WriteAsync(batch, producerStop.Token).ConfigureAwait(false);
                    }

                    channel.Writer.Complete();
                }
                catch (OperationCanceledException) when (producerStop.IsCancellationRequested)
                {
                    // Stopped on request (or because the consumer is done): not a failure of the table.
                    channel.Writer.Complete();
                }
                catch (Exception e)
                {
                    channel.Writer.Complete(e);
                }
            },
            CancellationToken.None);

        var policy = new CheckpointPolicy(config.State.Checkpointing, services.Clock);
        Checkpoint? unsaved = null;
        // Rows a bulk load copied before it handed the table to the pipeline count too.
        var nullCursorRows = state.Timestamps.RowHash;
        var future = await FutureTimestampsAsync(state, stop).ConfigureAwait(false);
        try
        {
            var waited = Stopwatch.StartNew();
            await foreach (var batch in channel.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
            {
                state.Timings.Capture += waited.Elapsed;
                var stage = Stopwatch.StartNew();
                var phase = batch.CheckpointPosition.Kind == SnapshotPosition.Kind || position.IsNone ? "snapshot" : "incremental";
                // A pass may read a record twice (snapshot, then the lookback); it is dead-lettered once per run.
                var deadLetters = new List<DeadLetter>(batch.DeadLetters.Count);
                foreach (var dead in batch.DeadLetters)
                {
                    if (!state.DeadLetterIds.Add(dead.RecordId))
                    {
                        continue;
                    }

                    if (queued.Contains((dead.RecordId, dead.RawRecord)))
                    {
                        stillQueued++;
                        continue;
                    }

                    deadLetters.Add(dead);
                }

                if (deadLetters.Count > 0)
                {
                    // Dead letters are saved before the batch commits: a crash in between re-queues them (deduplicated), never loses them.
                    await services.History.Store.AddDeadLettersAsync(deadLetters, CancellationToken.None).ConfigureAwait(false);
                    foreach (var dead in deadLetters)
                    {
                        Log.DeadLettered(services.Logger, _plan.Table, dead.RecordId, dead.Reason);
                        state.Errors.Add(new ReportError(_plan.Table, dead.ErrorClass.ToString().ToLowerInvariant(), dead.Reason, dead.RecordId));
                    }

                    SyncMetrics.DeadLettered.Add(deadLetters.Count, new KeyValuePair<string, object?>("table", _plan.Table));
                }

                if (!ReferenceEquals(batch.Schema, schema) && batch.Schema.Fingerprint() != fingerprint)
                {
                    // A log capture saw the table change shape mid-stream (a column added): evolve the destination and
                    // carry on; the checkpoints from here on record the new shape.
                    schema = batch.Schema;
                    destinationSchema = KeyMapping.Rename(schema, _plan.KeyMap);
                    ReportEvolution(state, await services.Destination.PrepareTableAsync(_plan.DestinationTable, destinationSchema, CancellationToken.None).ConfigureAwait(false));
                    fingerprint = schema.Fingerprint();
                    state.Warnings.Add($"The schema of '{_plan.Table}' changed while streaming; the destination table was evolved to match");
                }

                var toResolve = batch;
                if (batch.Repair && queuedIds.Count > 0 && batch.Events.Any(e => queuedIds.Contains(e.Key.ToString())))
                {
                    // A record waiting in the dead-letter queue differs from the source by definition; it is replayed
                    // from there (dlq replay), not forced through here — reconciliation finds it again until then.
                    var kept = batch.Events.Where(e => !queuedIds.Contains(e.Key.ToString())).ToList();
                    repairsQueued += batch.Events.Count - kept.Count;
                    toResolve = batch.With(kept, batch.CheckpointPosition);
                }

                if (batch.Reconciliation is { } reconciled)
                {
                    state.Reconciliation = (state.Reconciliation ?? ReconciliationStats.Zero).Add(reconciled);
                }

                if (softDeletes is not null)
                {
                    (toResolve, var softDeleted) = softDeletes.Apply(toResolve);
                    state.Counts.SoftDeleted += softDeleted;
                }

                if (conflicts is not null && toResolve.Repair)
                {
                    // Rows of the shared table this source never held are other sources' rows, not ones it deleted.
                    (toResolve, var foreign) = await SharedTableRepairs.KeepOwnDeletesAsync(toResolve, services.Destination.Ledger, scope, CancellationToken.None).ConfigureAwait(false);
                    state.ForeignRowsLeft += foreign;
                }

                IReadOnlySet<ChangeEvent>? withdrawn = null;
                if (conflicts is not null && toResolve.TruncateFirst)
                {
                    // Another source's rows must survive this source's TRUNCATE: it becomes deletes of this source's records.
                    var expansion = await SharedTableTruncate.ExpandAsync(toResolve, _plan, conflicts.OtherSources(_plan), services.Destination.Ledger, services.Clock.GetCurrentInstant(), CancellationToken.None).ConfigureAwait(false);
                    toResolve = expansion.Batch;
                    withdrawn = expansion.Withdrawn;
                    state.Warnings.Add($"'{_plan.Table}' was truncated at source '{_plan.SourceName}'; '{_plan.DestinationTable}' is written by several sources, so it was not emptied: {expansion.Deleted} record(s) only this source held were deleted through conflict detection, {expansion.Kept} record(s) other sources still hold were kept");
                }

                var generation = conflicts?.Generation(_plan.DestinationTable) ?? 0;
                var resolved = await ChangeResolver.ResolveAsync(toResolve, services.Destination.Ledger, scope, CancellationToken.None).ConfigureAwait(false);
                if (withdrawn is { Count: > 0 })
                {
                    // Withdrawn records keep their row and base; only this source's ledger entry is tombstoned.
                    resolved = resolved with { Applied = resolved.Applied.Where(e => !withdrawn.Contains(e)).ToList() };
                }

                state.Timings.Resolve += stage.Elapsed;
                var arrivals = lateness.Observe(resolved.Applied, state.Counts);
                if (batch.HighWaterMark is { } hwm && (state.HighWaterMark is null || hwm > state.HighWaterMark))
                {
                    state.HighWaterMark = hwm;
                }

                state.Watermark = lateness.WatermarkAfter(state.HighWaterMark) ?? state.Watermark;

                var processed = batch.Events.Count + deadLetters.Count;
                totals = totals.Add(processed, CountOf(resolved, WriteKind.Insert), CountOf(resolved, WriteKind.Update), CountOf(resolved, WriteKind.Delete), deadLetters.Count);
                var committed = new Checkpoint(
                    _plan.Stream,
                    _plan.Table,
                    state.Version + 1,
                    batch.CheckpointPosition,
                    method,
                    state.HighWaterMark,
                    state.Watermark,
                    fingerprint,
                    totals,
                    lease?.Hold.Epoch ?? 0,
                    services.RunId,
                    services.Clock.GetCurrentInstant());
                var watch = Stopwatch.StartNew();
                var batchSchema = destinationSchema;
                IReadOnlyList<RecordBaseWrite> recordBases = [];
                IReadOnlyList<(LedgerScope, LedgerEntry)> foreignLedger = [];
                AppliedBatch outcome;
                // Several sources write this table: read-merge-apply under the table's lock, so no source merges on a
                // base another source has already replaced.
                var tableLock = conflicts is null ? null : await conflicts.Locks.AcquireAsync(_plan.DestinationTable, CancellationToken.None).ConfigureAwait(false);
                state.Timings.Lock += watch.Elapsed;
                ConflictLogWrite? conflictLog = null;
                try
                {
                    if (conflicts is not null)
                    {
                        var merging = Stopwatch.StartNew();
                        var now = services.Clock.GetCurrentInstant();
                        var epoch = await conflicts.MergeEpochAsync(services.Destination, _plan, CancellationToken.None).ConfigureAwait(false);
                        var previous = resolved.Previous;
                        var updates = resolved.LedgerUpdates;
                        if (epoch is not null && conflicts.Generation(_plan.DestinationTable) != generation)
                        {
                            // Another source committed to the table since this batch read its ledger entries, and may have
                            // withdrawn merge states of them: read them again, now that the table's lock is held, for the
                            // merged records and for every entry the batch rewrites (a withdrawn record's tombstone too).
                            var keys = resolved.LedgerUpdates.Select(e => e.Key).Concat(resolved.Applied.Select(c => c.Key)).ToHashSet();
                            var fresh = await services.Destination.Ledger.LookupAsync(scope, keys, CancellationToken.None).ConfigureAwait(false);
                            previous = fresh;
                            updates = [.. resolved.LedgerUpdates.Select(e => e with { MergeState = fresh.TryGetValue(e.Key, out var current) ? current.MergeState : null })];
                        }

                        var context = conflicts.MergeContext(_plan, services.Destination.Ledger, previous, epoch);
                        var merged = await RecordMerger.MergeAsync(conflicts.Engine, services.Destination, _plan, destinationSchema, resolved.Applied, context, now, CancellationToken.None).ConfigureAwait(false);
                        resolved = resolved with { Writes = merged.Writes, LedgerUpdates = merged.WithMergeStates(updates) };
                        foreignLedger = merged.ForeignLedgerUpdates;
                        state.FastMerged += merged.FastMerged;
                        state.FullMerged += resolved.Applied.Count - merged.FastMerged;
                        recordBases = merged.RecordBases;
                        state.ConflictsDetected += merged.ConflictCount;
                        // Logged before the commit, like dead letters: a crash in between re-detects them under the same
                        // ids. The log is written while the destination writes the batch, and the commit waits for it.
                        conflictLog = conflicts.StartRecording(services.History.Store, services.Destination, _plan, merged.Outcomes, now);
                        if (conflictLog is { Overlapped: false })
                        {
                            await conflictLog.WaitAsync(CancellationToken.None).ConfigureAwait(false);
                        }

                        state.Timings.Merge += merging.Elapsed;
                    }

                    outcome = await services.Applier.ApplyAsync(
                        new ApplyUnit(destinationSchema, _plan.DestinationTable, scope, resolved.Writes, resolved.LedgerUpdates, committed)
                        {
                            TruncateFirst = toResolve.TruncateFirst,
                            Children = _plan.Children,
                            IdempotencyKey = BatchIdentity.Key(_plan.SourceName, _plan.Table, state.Position, committed.Position, resolved.Writes, resolved.LedgerUpdates),
                            RecordBases = recordBases,
                            ForeignLedgerUpdates = foreignLedger,
                            BeforeCommit = conflictLog is { Overlapped: true } log ? log.WaitAsync : null,
                        },
                        (write, reason) => RefusedRecord(batchSchema, write, reason, committed.Position),
                        CancellationToken.None).ConfigureAwait(false);
                }
                catch (BeforeCommitException e) when (e.InnerException is { } cause)
                {
                    // The conflict log could not be written: the batch was rolled back; the store's own error is the news.
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(cause).Throw();
                    throw;
                }
                finally
                {
                    conflictLog?.Observe();
                    conflicts?.Advance(_plan.DestinationTable);
                    tableLock?.Dispose();
                }

                var applied = outcome.Result;
                // A batch that writes nothing (an idle pass, whose positions repeat the last idle pass's) is no news.
                if (applied.AlreadyApplied && (resolved.Writes.Count > 0 || resolved.LedgerUpdates.Count > 0))
                {
                    state.AlreadyApplied++;
                }
                if (outcome.Retries > 0)
                {
                    state.Retries += outcome.Retries;
                    state.LastRetriedError = outcome.LastRetriedError;
                }

                if (outcome.Isolated.Count > 0)
                {
                    // Refused by the destination: queued after the rest of the batch committed. A crash in between
                    // loses nothing: the checkpoint was committed last, so the batch is read again.
                    var refused = new List<DeadLetter>(outcome.Isolated.Count);
                    foreach (var dead in outcome.Isolated)
                    {
                        if (queued.Contains((dead.RecordId, dead.RawRecord)))
                        {
                            stillQueued++;
                            continue;
                        }

                        refused.Add(dead);
                        Log.DeadLettered(services.Logger, _plan.Table, dead.RecordId, dead.Reason);
                        state.Errors.Add(new ReportError(_plan.Table, dead.ErrorClass.ToString().ToLowerInvariant(), dead.Reason, dead.RecordId));
                    }

                    await services.History.Store.AddDeadLettersAsync(refused, CancellationToken.None).ConfigureAwait(false);
                    state.DeadLettered += refused.Count;
                    totals = totals with { DeadLettered = totals.DeadLettered + refused.Count };
                    SyncMetrics.DeadLettered.Add(refused.Count, new KeyValuePair<string, object?>("table", _plan.Table));
                }
                SyncMetrics.BatchApplyLatency.Record(watch.Elapsed.TotalMilliseconds, new KeyValuePair<string, object?>("table", _plan.Table));
                state.Timings.Apply += watch.Elapsed;
                watch.Restart();
                state.Version = committed.Version;
                state.Position = committed.Position;
                state.Processed += processed;
                state.Inserted += applied.Inserted;
                state.Updated += applied.Updated;
                state.Deleted += applied.Deleted;
                state.Unchanged += resolved.Skipped;
                state.DeadLettered += deadLetters.Count;
                state.Counts.DelayedDeletesIgnored += resolved.DelayedDeletes;
                state.Counts.RevivalsRefused += resolved.RevivalsRefused;
                state.Counts.Backdated += resolved.Backdated;
                state.Counts.VersionResets += resolved.VersionResets;
                state.Counts.ChildRowsDeleted += applied.ChildrenDeleted;
                state.Counts.ChildRowsNulled += applied.ChildrenNulled;
                state.AddLate(arrivals, outcome.Isolated);
                nullCursorRows += batch.NullCursorRows;
                state.Timestamps.CreatedAtFallback += batch.CreatedAtFallbackRows;
                state.Timestamps.DstGap += batch.DstGapRows;
                state.Timestamps.DstOverlap += batch.DstOverlapRows;
                future?.Count(batch, state.Timestamps);
                foreach (var warning in batch.Warnings.Where(w => !state.Warnings.Contains(w)))
                {
                    state.Warnings.Add(warning);
                }

                state.KeepIds(resolved.Writes);
                SyncMetrics.RecordsRead.Add(processed, new KeyValuePair<string, object?>("table", _plan.Table));
                SyncMetrics.RecordsApplied.Add(applied.Inserted + applied.Updated + applied.Deleted, new KeyValuePair<string, object?>("table", _plan.Table));
                if (state.HighWaterMark is { } newest)
                {
                    SyncMetrics.RecordLag(_plan.Table, services.Clock.GetCurrentInstant(), newest);
                }

                Log.BatchCommitted(services.Logger, _plan.Table, applied.Inserted, applied.Updated, applied.Deleted, resolved.Skipped, committed.Version);
                unsaved = committed;
                if (policy.ShouldSave(processed))
                {
                    // Not saved again on the way out if this fails: the destination holds it, and the next run recovers it.
                    unsaved = null;
                    await services.History.AppendAsync(committed, lease?.Hold, CancellationToken.None).ConfigureAwait(false);
                }

                if (lease is not null)
                {
                    await lease.RenewIfDueAsync(CancellationToken.None).ConfigureAwait(false);
                }

                state.Timings.Save += watch.Elapsed;
                progress?.Report(state.Progress(_plan, phase, done: false));
                drain.Applied();
                waited.Restart();
                if (stop.IsCancellationRequested)
                {
                    state.Warnings.Add($"'{_plan.Table}' stopped on request after checkpoint version {committed.Version}; the next run resumes there");
                    break;
                }
            }
        }
        finally
        {
            await producerStop.CancelAsync().ConfigureAwait(false);
            await producer.ConfigureAwait(false);
            if (unsaved is not null)
            {
                await services.History.AppendAsync(unsaved, lease?.Hold, CancellationToken.None).ConfigureAwait(false);
            }
        }

        if (state.AlreadyApplied > 0)
        {
            state.Warnings.Add($"{state.AlreadyApplied} batch(es) of '{_plan.Table}' were already applied at the destination (same idempotency key) and were not written again");
        }

        if (state.Retries > 0)
        {
            state.Warnings.Add($"{state.Retries} transient failure(s) writing '{_plan.Table}' to the destination were retried with back-off and succeeded (last: {state.LastRetriedError})");
        }

        if (state.FastMerged + state.FullMerged > 0)
        {
            Log.MergePaths(services.Logger, _plan.Table, state.FastMerged, state.FullMerged);
        }

        Log.TableTimings(services.Logger, _plan.Table, state.Timings.Capture.TotalSeconds, state.Timings.Resolve.TotalSeconds, state.Timings.Lock.TotalSeconds, state.Timings.Merge.TotalSeconds, state.Timings.Apply.TotalSeconds, state.Timings.Save.TotalSeconds);
        if (repairsQueued > 0)
        {
            state.Warnings.Add($"{repairsQueued} row(s) of '{_plan.Table}' differ between source and destination but are in the dead-letter queue; reconciliation leaves them to 'dlq replay' and will find them again until then");
        }

        if (state.ForeignRowsLeft > 0)
        {
            state.Warnings.Add($"Reconciliation of '{_plan.Table}' from source '{_plan.SourceName}' found {state.ForeignRowsLeft} row(s) of '{_plan.DestinationTable}' that this source never held; they belong to other sources and were left as they are");
        }

        if (stillQueued > 0)
        {
            state.Warnings.Add($"{stillQueued} record(s) of '{_plan.Table}' are still in the dead-letter queue, unchanged since they were queued; fix them at the source and the next run syncs them");
        }

        state.Warnings.AddRange(TimeAndDeleteWarnings(state.Counts));
        AddTimestampWarnings(state, nullCursorRows);

        if (!stop.IsCancellationRequested)
        {
            await capture.OnCheckpointedAsync(state.Position, CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>Says in the report (and the log) what preparing the destination table changed in it, or could not.</summary>
    private void ReportEvolution(RunState state, TableEvolution evolution)
    {
        var destination = _plan.DestinationTable == _plan.Table ? "" : $" (destination '{_plan.DestinationTable}')";
        foreach (var warning in evolution.Changes.Select(c => $"Schema change of '{_plan.Table}'{destination}: {c}")
            .Concat(evolution.Refused.Select(r => $"Schema change of '{_plan.Table}'{destination} not made at the destination: {r}"))
            .Concat(evolution.Notes.Select(n => $"'{_plan.Table}'{destination}: {n}")))
        {
            Log.TableWarning(_services.Logger, _plan.Table, warning);
            state.Warnings.Add(warning);
        }
    }

    /// <summary>The report's notes on NULL cursor values and irregular timestamps met by the pass.</summary>
    private void AddTimestampWarnings(RunState state, long nullCursorRows)
    {
        state.Timestamps.RowHash = nullCursorRows;
        if (nullCursorRows > 0)
        {
            var field = _plan.Method == CdcMethod.Timestamp ? _plan.UpdatedAtField : _plan.SequenceField;
            var createdAt = _plan.Method == CdcMethod.Timestamp && _plan.CreatedAtField is { } c ? $" (and no {c} to fall back on)" : "";
            state.Warnings.Add($"{nullCursorRows} row(s) of '{_plan.Table}' have NULL {field}{createdAt}; they were compared with the ledger by row hash");
        }

        state.Warnings.AddRange(state.Timestamps.Warnings(_plan, _services.Config.Cdc.Timestamp.MaxFutureSkew));
    }

    /// <summary>
    /// The checkpoint to resume from: the state store's, unless the destination committed a newer one with the data
    /// (the previous run stopped between the destination commit and the state save), which is then adopted. Where the
    /// two disagree otherwise, the state has diverged (a second writer, a destination restored from an older backup):
    /// that is reported, and the run resumes from what the destination's data reflects — never from a position the
    /// data has not reached.
    /// </summary>
    private async Task<Checkpoint?> LoadCheckpointAsync(RunState state, CancellationToken cancellationToken)
    {
        var services = _services;
        var validate = await CursorValidatorAsync(state, cancellationToken).ConfigureAwait(false);
        var loaded = await services.History.LoadAsync(_plan.Stream, services.Config.State.Recovery, validate, cancellationToken).ConfigureAwait(false);
        state.Warnings.AddRange(loaded.Warnings);
        var checkpoint = loaded.Checkpoint;
        var committedPayload = await services.Destination.ReadCommittedCheckpointAsync(_plan.Stream, cancellationToken).ConfigureAwait(false);
        var committed = committedPayload is null ? null : CheckpointCodec.TryDeserialize(committedPayload, out _);
        state.CommittedEpoch = committed?.Epoch;
        if (committed is not null && validate?.Invoke(committed) is { } invalid)
        {
            state.Warnings.Add($"The checkpoint committed at the destination for '{_plan.Table}' (version {committed.Version}) is not usable: {invalid}; it was ignored");
            committed = null;
        }

        // Adopted only when it is both a later version and written later: a rollback or repair appended to the store
        // after it is the operator's decision and wins even when the destination's version number is higher.
        if (committed is not null && (checkpoint is null || (committed.Version > checkpoint.Version && committed.CreatedAt > checkpoint.CreatedAt)))
        {
            state.Warnings.Add(checkpoint is null && loaded.Warnings.Count == 0
                ? $"The state store has no checkpoint of '{_plan.Table}' but the destination committed version {committed.Version} with the data (state lost or restored elsewhere); resumed from the destination's"
                : $"Checkpoint version {committed.Version} of '{_plan.Table}' was committed with the data but not saved to the state store (the previous run stopped in between); recovered it from the destination");
            await services.History.AppendAsync(committed with { Note = "recovered from the destination's committed checkpoint" }, cancellationToken).ConfigureAwait(false);
            checkpoint = committed;
        }
        else if (checkpoint is not null && checkpoint.Note is null && Diverged(checkpoint, committed) is { } divergence)
        {
            state.Warnings.Add($"State of '{_plan.Table}' diverged: {divergence}");
            var resume = committed ?? checkpoint with { Position = Position.None, HighWaterMark = null, Watermark = null };
            checkpoint = resume with
            {
                Version = checkpoint.Version + 1,
                CreatedAt = services.Clock.GetCurrentInstant(),
                Note = committed is null ? "diverged: re-read from the start" : $"diverged: resumed from the destination's version {committed.Version}",
            };
            await services.History.AppendAsync(checkpoint, cancellationToken).ConfigureAwait(false);
        }

        if (checkpoint is not null)
        {
            state.ResumedFrom = checkpoint.Version;
            if (!services.CompletedRunIds.Contains(checkpoint.RunId))
            {
                state.Warnings.Add($"The previous run ({checkpoint.RunId}) of '{_plan.Table}' did not finish; resumed from checkpoint version {checkpoint.Version} at {checkpoint.Position}");
            }
        }

        return checkpoint;
    }

    /// <summary>
    /// How the state store's newest batch checkpoint and the one committed with the data disagree, or null. A batch
    /// commits its checkpoint at the destination before the store saves it, so the store is never legitimately ahead.
    /// </summary>
    private static string? Diverged(Checkpoint stored, Checkpoint? committed)
    {
        if (committed is null)
        {
            return stored.Position.IsNone
                ? null
                : $"the state store is at version {stored.Version} ({stored.Position}) but the destination holds no committed checkpoint (it was replaced, emptied or restored from an older backup); the table is re-read from the start (the ledger keeps rows already there from being rewritten)";
        }

        if (stored.Version > committed.Version)
        {
            return $"the state store is at version {stored.Version} but the destination's data only reached version {committed.Version} (restored from an older backup?); resumed from the destination's version";
        }

        return stored.Version == committed.Version && (stored.Position != committed.Position || stored.RunId != committed.RunId || stored.Epoch != committed.Epoch)
            ? $"version {stored.Version} differs between the state store (run {stored.RunId}, epoch {stored.Epoch}, {stored.Position}) and the destination (run {committed.RunId}, epoch {committed.Epoch}, {committed.Position}) — two writers; resumed from the destination's, which its data reflects"
            : null;
    }

    /// <summary>
    /// A check a checksum cannot make: a timestamp cursor ahead of the source's own clock (beyond
    /// <c>cdc.timestamp.max_future_skew</c>) was not written against this source's time — its clock was set back, or
    /// the state belongs elsewhere — and resuming there would skip every change until the clock catches up.
    /// </summary>
    private async Task<Func<Checkpoint, string?>?> CursorValidatorAsync(RunState state, CancellationToken cancellationToken)
    {
        if (_plan.Method is not (CdcMethod.Timestamp or CdcMethod.Hybrid))
        {
            return null;
        }

        var now = await SourceNowAsync(state, cancellationToken).ConfigureAwait(false);
        var limit = now + _services.Config.Cdc.Timestamp.MaxFutureSkew;
        return checkpoint =>
        {
            var at = _services.Source.CursorTime(checkpoint.Position);
            return at > limit
                ? $"its cursor {at} is ahead of the source's clock ({now}) by more than max_future_skew"
                : null;
        };
    }

    /// <summary>
    /// For timestamp CDC: a counter of rows stamped further ahead of the source's clock than <c>max_future_skew</c>. The
    /// source clock is read once; later readings add the time elapsed here, so a long run does not flag rows committed
    /// during it.
    /// </summary>
    private async Task<FutureTimestampCounter?> FutureTimestampsAsync(RunState state, CancellationToken cancellationToken)
    {
        if (_plan.Method != CdcMethod.Timestamp)
        {
            return null;
        }

        var sourceNow = await SourceNowAsync(state, cancellationToken).ConfigureAwait(false);
        return new FutureTimestampCounter(sourceNow, _services.Clock, _services.Config.Cdc.Timestamp.MaxFutureSkew);
    }

    /// <summary>A write the destination refused, as a dead letter: the row (or, for a delete, its key) with the destination's reason.</summary>
    private DeadLetter RefusedRecord(TableSchema schema, RowWrite write, string reason, Position position)
    {
        var raw = RowChanges.RecordJson(schema, write.Key, write.Values);
        return new DeadLetter(_plan.Stream, _plan.Table, write.Key.ToString(), raw, reason, ErrorClass.Permanent, position, _services.Clock.GetCurrentInstant());
    }

    /// <summary>What the report says about late data and deletes, one line per thing that happened.</summary>
    private IEnumerable<string> TimeAndDeleteWarnings(TimeAndDeleteCounts counts)
    {
        var table = _plan.Table;
        var tolerance = LateArrivals.Describe(_plan.ToleranceWindow);
        if (counts.OutOfOrder > 0)
        {
            yield return $"{counts.OutOfOrder} record(s) of '{table}' arrived out of order (within the {tolerance} tolerance window) but were processed correctly";
        }

        if (counts.Late > 0)
        {
            yield return $"{counts.Late} record(s) of '{table}' arrived later than the {tolerance} tolerance window; they were re-processed against the ledger and are listed in late_arriving_data";
        }

        if (counts.Backdated > 0)
        {
            yield return $"{counts.Backdated} changed record(s) of '{table}' carry a timestamp older than the version already applied (backdated); the source's current row was applied";
        }

        if (counts.SoftDeleted > 0)
        {
            yield return $"{counts.SoftDeleted} row(s) of '{table}' are soft-deleted ({_plan.SoftDelete?.Field}) and were carried as deletes";
        }

        if (counts.DelayedDeletesIgnored > 0)
        {
            yield return $"{counts.DelayedDeletesIgnored} delete(s) of '{table}' are older than the record's last applied update and were ignored (the update stands, by ledger time)";
        }

        if (counts.RevivalsRefused > 0)
        {
            yield return $"{counts.RevivalsRefused} re-inserted record(s) of '{table}' are older than their delete and were not revived (the delete stands, by ledger time)";
        }

        if (counts.VersionResets > 0)
        {
            yield return $"{counts.VersionResets} record(s) of '{table}' came with a lower version than the one applied (the version was reset); they were compared by content and applied where it differs";
        }

        if (counts.ChildRowsDeleted > 0 || counts.ChildRowsNulled > 0)
        {
            yield return $"Deletes of '{table}' reached its child tables at the destination: {counts.ChildRowsDeleted} row(s) deleted, {counts.ChildRowsNulled} foreign key(s) set to NULL";
        }
    }

    /// <summary>
    /// The source's clock at the start of this pass, read once (a query on a database source) and shared by the cursor
    /// validation, the future-timestamp check and the late-data watermark; each adds the time elapsed here itself.
    /// </summary>
    private async Task<Instant> SourceNowAsync(RunState state, CancellationToken cancellationToken) =>
        state.SourceNow ??= await _services.Source.GetClockAsync(cancellationToken).ConfigureAwait(false);

    private static long CountOf(ResolvedBatch resolved, WriteKind kind) => resolved.Writes.Count(w => w.Kind == kind);

    private static (ErrorClass Class, string Message) Describe(Exception e) => e switch
    {
        SyncException s => (s.ErrorClass, s.Message),
        CheckpointCorruptException c => (ErrorClass.Fatal, c.Message),
        OperationCanceledException => (ErrorClass.Transient, "cancelled"),
        _ => (ErrorClass.Fatal, e.Message),
    };

    /// <summary>Where a table's run spent its time: waiting for capture, ledger look-ups, the destination table's lock and conflict merge (several sources), destination commits, state saves.</summary>
    private sealed class StageTimings
    {
        public TimeSpan Capture { get; set; }
        public TimeSpan Resolve { get; set; }
        public TimeSpan Lock { get; set; }
        public TimeSpan Merge { get; set; }
        public TimeSpan Apply { get; set; }
        public TimeSpan Save { get; set; }
    }

    /// <summary>Mutable per-run counters of one table.</summary>
    private sealed class RunState(Instant startedAt)
    {
        public Instant StartedAt { get; } = startedAt;
        public long Processed { get; set; }
        public long Inserted { get; set; }
        public long Updated { get; set; }
        public long Deleted { get; set; }
        public long Unchanged { get; set; }
        public long DeadLettered { get; set; }
        public bool Stopped { get; set; }
        public long ConflictsDetected { get; set; }

        /// <summary>Changes of a table several sources write merged on the fast path (<see cref="Conflicts.SourceMergeState"/>).</summary>
        public long FastMerged { get; set; }

        /// <summary>Changes of a table several sources write merged with their stored bases.</summary>
        public long FullMerged { get; set; }
        public long ForeignRowsLeft { get; set; }
        public int Retries { get; set; }
        public int AlreadyApplied { get; set; }
        public long? CommittedEpoch { get; set; }
        public ReconciliationStats? Reconciliation { get; set; }
        public string? InitialLoad { get; set; }
        public string? LastRetriedError { get; set; }
        public long Version { get; set; }
        public long? ResumedFrom { get; set; }
        public Position Position { get; set; } = Position.None;
        public Instant? HighWaterMark { get; set; }
        public Instant? Watermark { get; set; }
        public Instant? SourceNow { get; set; }
        public TimeAndDeleteCounts Counts { get; } = new();
        public List<LateArrivalReport> LateArrivals { get; } = [];
        public string? Error { get; set; }
        public List<string> Warnings { get; } = [];
        public List<ReportError> Errors { get; } = [];
        public List<string> ProcessedIds { get; } = [];
        public HashSet<string> DeadLetterIds { get; } = new(StringComparer.Ordinal);
        public StageTimings Timings { get; } = new();
        public TimestampTally Timestamps { get; } = new();

        public void KeepIds(IReadOnlyList<RowWrite> writes)
        {
            for (var i = 0; i < writes.Count && ProcessedIds.Count < ProcessedIdsKept; i++)
            {
                ProcessedIds.Add(writes[i].Key.ToString());
            }
        }

        /// <summary>Lists late records (up to the report's limit); one refused by the destination was not handled.</summary>
        public void AddLate(IReadOnlyList<LateArrival> arrivals, IReadOnlyList<DeadLetter> refused)
        {
            if (arrivals.Count == 0)
            {
                return;
            }

            var failed = refused.Count == 0 ? null : refused.Select(d => d.RecordId).ToHashSet(StringComparer.Ordinal);
            foreach (var late in arrivals)
            {
                if (LateArrivals.Count >= TimeAndDeleteCounts.LateListed)
                {
                    break;
                }

                var id = late.Key.ToString();
                LateArrivals.Add(late.ToReport(handled: failed is null || !failed.Contains(id)));
            }
        }

        public TableProgress Progress(TablePlan plan, string phase, bool done) =>
            new(plan.Table, phase, Processed, Inserted, Updated, Deleted, Unchanged, done) { Source = plan.SourceName };
    }
}
