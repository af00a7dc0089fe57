using System.Globalization;
using System.Text.Json;
using DeltaSync.Core.Capture;
using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.State;
using DeltaSync.Core.Time;
using NodaTime;

namespace DeltaSync.Core.Pipeline;

/// <summary>What replaying one table's dead letters did.</summary>
/// <param name="Table">The source table.</param>
/// <param name="Replayed">Entries selected for the table.</param>
/// <param name="Applied">Entries removed from the queue: their record is now at the destination as the source has it
/// (written, already equal per the ledger, or deleted because the source no longer has it).</param>
/// <param name="Written">The destination writes the replay made.</param>
/// <param name="StillFailing">Entries still queued, each as it is queued now (the new reason and attempt count).</param>
/// <param name="Error">Why the table could not be replayed at all (its entries are unchanged); null when it was.</param>
public sealed record TableReplayResult(string Table, int Replayed, int Applied, ApplyResult Written, IReadOnlyList<DeadLetter> StillFailing, string? Error)
{
    /// <summary>Conflicts the replayed records met on a table several sources write (logged like a run's).</summary>
    public int ConflictsDetected { get; init; }
}

/// <summary>
/// <c>dlq replay</c>: re-applies dead-lettered records after a fix. The fix is usually made at the source (a bad
/// timestamp corrected) or at the destination (a constraint relaxed, a column widened), so each entry's record is read
/// again from the source by its key — its current row, not the payload queued back then. A row found becomes an upsert
/// (checked like the capture checks it: a timestamp table's <c>updated_at</c> must parse), a key the source no longer has
/// becomes a delete. The changes are resolved against the ledger and applied through the <see cref="BatchApplier"/>
/// like a run's batch, but commit no checkpoint (the table's position stays where the last run left it), fenced by
/// the epoch of a lease the replay holds on the table meanwhile. Entries now applied leave the queue; those that fail
/// again stay with the new reason and one more attempt.
/// </summary>
public sealed class DeadLetterReplay
{
    private readonly SyncConfig _config;
    private readonly ISource _source;
    private readonly IDestination _destination;
    private readonly CheckpointHistory _history;
    private readonly BatchApplier _applier;
    private readonly IClock _clock;
    private readonly DestinationTableLocks _locks;

    /// <param name="locks">
    /// The destination-table locks of the process (shared with any run in it), so a replay into a table several sources
    /// write merges on record bases no other pipeline is replacing meanwhile; a fresh set when null.
    /// </param>
    public DeadLetterReplay(SyncConfig config, ISource source, IDestination destination, IStateStore store, IClock clock, BatchApplier? applier = null, DestinationTableLocks? locks = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        _locks = locks ?? new DestinationTableLocks();
        _source = source;
        _destination = destination;
        _history = new CheckpointHistory(store, clock);
        _clock = clock;
        _applier = applier ?? new BatchApplier(destination, config.Sync.Retry);
    }

    private IStateStore Store => _history.Store;

    /// <summary>Replays <paramref name="entries"/>, table by table. A table that cannot be replayed is reported, not thrown.</summary>
    public async Task<IReadOnlyList<TableReplayResult>> ReplayAsync(IReadOnlyList<DeadLetter> entries, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var plans = TablePlan.FromConfig(_config);
        var results = new List<TableReplayResult>();
        foreach (var group in entries.GroupBy(e => e.Stream, StringComparer.Ordinal))
        {
            var letters = group.ToList();
            var plan = plans.FirstOrDefault(p => p.Stream == group.Key);
            if (plan is null)
            {
                results.Add(Failed(letters, $"'{letters[0].Table}' is not a table of this configuration any more; add it back to replay its entries, or purge them"));
                continue;
            }

            try
            {
                results.Add(await ReplayTableAsync(plan, letters, cancellationToken).ConfigureAwait(false));
            }
            catch (Exception e) when (e is not OperationCanceledException and not OutOfMemoryException)
            {
                results.Add(Failed(letters, e.Message));
            }
        }

        return results;
    }

    private static TableReplayResult Failed(List<DeadLetter> letters, string error) =>
        new(letters[0].Table, letters.Count, 0, default, [], error);

    private async Task<TableReplayResult> ReplayTableAsync(TablePlan plan, List<DeadLetter> letters, CancellationToken cancellationToken)
    {
        // The same lease a run takes: no run writes the table meanwhile, and a run that took it over fences us off.
        var lease = await TableLease.AcquireAsync(Store, plan.Stream, cancellationToken).ConfigureAwait(false);
        try
        {
            return await ReplayLeasedAsync(plan, letters, lease?.Hold.Epoch ?? 0, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (lease is not null)
            {
                await lease.ReleaseAsync().ConfigureAwait(false);
            }
        }
    }

    private async Task<TableReplayResult> ReplayLeasedAsync(TablePlan plan, List<DeadLetter> letters, long epoch, CancellationToken cancellationToken)
    {
        var schema = await _source.DescribeTableAsync(plan.ToTableOptions(), cancellationToken).ConfigureAwait(false);
        // Keys are read from the source's rows (its column names); the destination is written under key_map's names.
        var destinationSchema = KeyMapping.Rename(schema, plan.KeyMap);
        await _destination.PrepareTableAsync(plan.DestinationTable, destinationSchema, cancellationToken).ConfigureAwait(false);
        var now = _clock.GetCurrentInstant();
        var still = new List<DeadLetter>();

        // Entries grouped by record: several entries of one record (queued as it changed) are settled together.
        var byKey = new Dictionary<RecordKey, List<DeadLetter>>();
        foreach (var letter in letters)
        {
            if (!TryKeyOf(schema, letter, out var key, out var problem))
            {
                // Nothing can be re-read for it: left as it is, shown with the reason.
                still.Add(letter with { Reason = problem });
                continue;
            }

            if (!byKey.TryGetValue(key, out var same))
            {
                byKey[key] = same = [];
            }

            same.Add(letter);
        }

        var requested = byKey.Keys.ToList();
        var rows = requested.Count == 0 ? [] : await _source.ReadRowsAsync(schema, requested, cancellationToken).ConfigureAwait(false);
        var zone = Time.TimeZones.Get(plan.Timezone);
        var records = new List<Record>(requested.Count);
        var events = new List<ChangeEvent>(requested.Count);
        for (var i = 0; i < requested.Count; i++)
        {
            var row = rows[i];
            var record = new Record(byKey[requested[i]], row);
            records.Add(record);
            if (row.Values is null)
            {
                events.Add(RowChanges.Delete(schema, plan.SourceName, row.Key, Position.None, null));
                continue;
            }

            if (Check(plan, schema, row.Values, zone, out var position, out var commitTime) is { } invalid)
            {
                record.Reason = invalid;
                continue;
            }

            events.Add(RowChanges.Upsert(schema, plan.SourceName, row.Values, position, commitTime));
        }

        var written = default(ApplyResult);
        var scope = new LedgerScope(plan.DestinationTable, plan.SourceName);
        // The same stages a run's batch goes through: soft-deleted rows become deletes, parent deletes reach children.
        var batch = new ChangeBatch(schema, events, Position.None);
        if (SoftDeletes.For(plan, schema) is { } softDeletes)
        {
            batch = softDeletes.Apply(batch).Batch;
        }

        var resolved = await ChangeResolver.ResolveAsync(batch, _destination.Ledger, scope, cancellationToken).ConfigureAwait(false);
        // A table several sources write: merged like a run's batch, from the read of record bases to the commit under the
        // table's lock, so the bases stay what later changes of every source are checked against.
        var conflicts = ConflictSession.For(_config, TablePlan.FromConfig(_config), _locks, "dlq-replay");
        var shared = conflicts is not null && conflicts.Covers(plan) ? conflicts : null;
        var conflictsDetected = 0;
        using var tableLock = shared is null || resolved.Applied.Count == 0 ? null : await shared.Locks.AcquireAsync(plan.DestinationTable, cancellationToken).ConfigureAwait(false);
        IReadOnlyList<RecordBaseWrite> recordBases = [];
        IReadOnlyList<(LedgerScope, LedgerEntry)> foreignLedger = [];
        if (tableLock is not null)
        {
            var mergeEpoch = await shared!.MergeEpochAsync(_destination, plan, cancellationToken).ConfigureAwait(false);
            var context = shared.MergeContext(plan, _destination.Ledger, resolved.Previous, mergeEpoch);
            var merged = await RecordMerger.MergeAsync(shared.Engine, _destination, plan, destinationSchema, resolved.Applied, context, now, cancellationToken).ConfigureAwait(false);
            await shared.RecordAsync(Store, plan, merged.Outcomes, now, cancellationToken).ConfigureAwait(false);
            resolved = resolved with { Writes = merged.Writes, LedgerUpdates = merged.WithMergeStates(resolved.LedgerUpdates) };
            foreignLedger = merged.ForeignLedgerUpdates;
            recordBases = merged.RecordBases;
            conflictsDetected = merged.ConflictCount;
        }

        if (resolved.Writes.Count > 0 || recordBases.Count > 0)
        {
            var checkpoint = await CheckpointAsync(plan, schema, epoch, now, cancellationToken).ConfigureAwait(false);
            var refused = new Dictionary<RecordKey, string>();
            var outcome = await _applier.ApplyAsync(
                new ApplyUnit(destinationSchema, plan.DestinationTable, scope, resolved.Writes, resolved.LedgerUpdates, checkpoint) { CommitsCheckpoint = false, Children = plan.Children, RecordBases = recordBases, ForeignLedgerUpdates = foreignLedger },
                (write, reason) =>
                {
                    refused[write.Key] = reason;
                    return new DeadLetter(plan.Stream, plan.Table, write.Key.ToString(), "{}", reason, ErrorClass.Permanent, Position.None, now);
                },
                cancellationToken).ConfigureAwait(false);
            written = outcome.Result;
            foreach (var record in records)
            {
                if (refused.TryGetValue(record.Row.Key, out var reason))
                {
                    record.Reason = reason;
                }
            }
        }

        var applied = 0;
        var done = new List<DeadLetter>();
        var requeued = new List<DeadLetter>();
        foreach (var record in records)
        {
            if (record.Reason is null)
            {
                done.AddRange(record.Letters);
                applied += record.Letters.Count;
                continue;
            }

            var (remove, add, queued) = Requeue(plan, schema, record, now);
            done.AddRange(remove);
            requeued.Add(add);
            still.Add(queued);
        }

        // Re-queued first, then removed: a crash in between leaves an entry twice, never none.
        if (requeued.Count > 0)
        {
            await Store.AddDeadLettersAsync(requeued, CancellationToken.None).ConfigureAwait(false);
        }

        if (done.Count > 0)
        {
            await Store.RemoveDeadLettersAsync(done, CancellationToken.None).ConfigureAwait(false);
        }

        return new TableReplayResult(plan.Table, letters.Count, applied, written, still, null) { ConflictsDetected = conflictsDetected };
    }

    /// <summary>
    /// A record that failed again: the entries to remove, the entry to add, and the entry as it is then queued. Its entry
    /// stays when the source row is the one queued (the store adds the attempt and takes the new reason); when the row
    /// changed since, the old entries make way for one of the current row that carries their attempts on.
    /// </summary>
    private static (List<DeadLetter> Remove, DeadLetter Add, DeadLetter Queued) Requeue(TablePlan plan, TableSchema schema, Record record, Instant now)
    {
        var first = record.Letters[0];
        var raw = RowChanges.RecordJson(schema, record.Row.Key, record.Row.Values);
        var current = new DeadLetter(plan.Stream, plan.Table, record.Row.Key.ToString(), raw, record.Reason!, ErrorClass.Permanent, first.Position, now);
        var id = current.Id;
        var same = record.Letters.FirstOrDefault(l => l.Id == id);
        if (same is not null)
        {
            var again = current with { Position = same.Position };
            return (record.Letters.Where(l => !ReferenceEquals(l, same)).ToList(), again with { Attempts = 1 }, again with { Attempts = same.Attempts + 1 });
        }

        var replaced = current with { Attempts = record.Letters.Max(l => l.Attempts) + 1 };
        return (record.Letters, replaced, replaced);
    }

    /// <summary>What the capture would refuse in this row (a timestamp that does not parse…), and otherwise its ledger position and commit time.</summary>
    private static string? Check(TablePlan plan, TableSchema schema, object?[] values, DateTimeZone zone, out Position position, out Instant? commitTime)
    {
        position = Position.None;
        commitTime = null;
        switch (plan.Method)
        {
            case CdcMethod.Timestamp:
            {
                var index = schema.IndexOf(plan.UpdatedAtField);
                var raw = index < 0 ? null : values[index];
                if (raw is null)
                {
                    // Rows without a timestamp are compared by row hash on every pass; nothing to check.
                    return null;
                }

                var value = raw is DateOnly date ? date.ToDateTime(TimeOnly.MinValue, DateTimeKind.Unspecified) : raw;
                if (!SourceTimestamp.TryParse(value, zone, out var instant, out var problem))
                {
                    return $"{plan.UpdatedAtField}: {problem}";
                }

                position = new Position(CursorPosition.TimestampKind, "");
                commitTime = instant;
                return null;
            }

            case CdcMethod.Version when plan.SequenceField is not null:
            {
                var index = schema.IndexOf(plan.SequenceField);
                var raw = index < 0 ? null : values[index];
                if (raw is null)
                {
                    return null;
                }

                if (WholeNumber(raw) is not { } sequence)
                {
                    return $"{plan.SequenceField}: '{Convert.ToString(raw, CultureInfo.InvariantCulture)}' is not a whole number";
                }

                position = new CursorPosition(CursorPosition.SequenceKind, sequence, null).ToPosition();
                return null;
            }

            case CdcMethod.Version:
            {
                var index = schema.IndexOf(plan.VersionField ?? "version");
                if (index >= 0 && values[index] is { } version)
                {
                    // The position a version pass records, so the next pass sees this row as unchanged.
                    position = new Position(LedgerDiff.VersionKind, Convert.ToString(version, CultureInfo.InvariantCulture) ?? "");
                }

                return null;
            }

            default:
                return null;
        }
    }

    private static long? WholeNumber(object value) => value switch
    {
        long l => l,
        int i => i,
        double d when Math.Floor(d) == d && Math.Abs(d) < 9.2e18 => (long)d,
        string s when long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var l) => l,
        _ => null,
    };

    /// <summary>The checkpoint the replay's unit carries: the table's newest, with the replay's lease epoch (it is not committed).</summary>
    private async Task<Checkpoint> CheckpointAsync(TablePlan plan, TableSchema schema, long epoch, Instant now, CancellationToken cancellationToken)
    {
        var loaded = await _history.LoadAsync(plan.Stream, _config.State.Recovery, cancellationToken).ConfigureAwait(false);
        return loaded.Checkpoint is { } newest
            ? newest with { Epoch = epoch }
            : new Checkpoint(plan.Stream, plan.Table, 0, Position.None, plan.Method.ToString().ToLowerInvariant(), null, null, schema.Fingerprint(), CheckpointCounters.Zero, epoch, "dlq-replay", now);
    }

    /// <summary>The record's key from its raw record (a JSON object keyed by column name), in portable values.</summary>
    private static bool TryKeyOf(TableSchema schema, DeadLetter letter, out RecordKey key, out string problem)
    {
        key = null!;
        problem = "";
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(letter.RawRecord);
        }
        catch (JsonException e)
        {
            problem = $"cannot replay: its raw record is not JSON ({e.Message}); purge it once the record is synced";
            return false;
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                problem = "cannot replay: its raw record is not a JSON object";
                return false;
            }

            var values = new object?[schema.PrimaryKey.Count];
            for (var i = 0; i < values.Length; i++)
            {
                var column = schema.PrimaryKey[i];
                if (!TryProperty(document.RootElement, column, out var element))
                {
                    problem = $"cannot replay: its raw record has no value for key column '{column}' (key: {string.Join(", ", schema.PrimaryKey)})";
                    return false;
                }

                values[i] = element.ValueKind switch
                {
                    JsonValueKind.Null => null,
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    // Boxed apart: a conditional of long and double would make every number a double.
                    JsonValueKind.Number => element.TryGetInt64(out var whole) ? (object)whole : element.GetDouble(),
                    JsonValueKind.String => element.GetString(),
                    _ => element.GetRawText(),
                };
            }

            key = new RecordKey(values);
            return true;
        }
    }

    private static bool TryProperty(JsonElement row, string column, out JsonElement value)
    {
        if (row.TryGetProperty(column, out value))
        {
            return true;
        }

        foreach (var property in row.EnumerateObject())
        {
            if (string.Equals(property.Name, column, StringComparison.OrdinalIgnoreCase))
            {
                value = property.Value;
                return true;
            }
        }

        return false;
    }

    /// <summary>One record being replayed: its queued entries, what the source has now, and why it still fails (null: it applied).</summary>
    private sealed class Record(List<DeadLetter> letters, KeyedRow row)
    {
        public List<DeadLetter> Letters { get; } = letters;

        public KeyedRow Row { get; } = row;

        public string? Reason { get; set; }
    }
}
