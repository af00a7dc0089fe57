using DeltaSync.Core.Conflicts;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using NodaTime;

namespace DeltaSync.Core.Pipeline;

/// <summary>What merging one batch of a multi-source table produced.</summary>
/// <param name="Writes">The row writes the destination needs now (merged rows, deletes; none where a hold keeps the destination as it is).</param>
/// <param name="RecordBases">The new record bases, committed with the writes.</param>
/// <param name="Outcomes">Every record's merge outcome that found a conflict or joined a review.</param>
public sealed record MergedBatch(IReadOnlyList<RowWrite> Writes, IReadOnlyList<RecordBaseWrite> RecordBases, IReadOnlyList<(RecordKey Key, MergeOutcome Outcome)> Outcomes)
{
    /// <summary>Conflicts detected in the batch.</summary>
    public int ConflictCount => Outcomes.Sum(o => o.Outcome.Conflicts.Count);

    /// <summary>Per merged record, the source's new merge state for its ledger entry (null: none kept).</summary>
    public IReadOnlyDictionary<RecordKey, byte[]?> MergeStates { get; init; } = new Dictionary<RecordKey, byte[]?>();

    /// <summary>Records that took the fast merge (no stored base read or written).</summary>
    public int FastMerged { get; init; }

    /// <summary>
    /// Other sources' ledger entries whose eligible merge state a full merge of the record withdrew (the record's base
    /// changed, possibly without its row: a digest alone cannot tell), committed with the batch.
    /// </summary>
    public IReadOnlyList<(LedgerScope Scope, LedgerEntry Entry)> ForeignLedgerUpdates { get; init; } = [];

    /// <summary><paramref name="updates"/> (the batch's ledger entries) with each merged record's new merge state.</summary>
    public IReadOnlyList<LedgerEntry> WithMergeStates(IReadOnlyList<LedgerEntry> updates)
    {
        ArgumentNullException.ThrowIfNull(updates);
        if (MergeStates.Count == 0)
        {
            return updates;
        }

        var result = new List<LedgerEntry>(updates.Count);
        foreach (var entry in updates)
        {
            result.Add(MergeStates.TryGetValue(entry.Key, out var state) ? entry with { MergeState = state } : entry);
        }

        return result;
    }
}

/// <summary>What the merge of a batch knows besides its changes.</summary>
/// <param name="Ledger">The destination's ledger: the other sources' merge states are read from it for records that take the full merge.</param>
/// <param name="OtherSources">The other sources writing the table.</param>
/// <param name="Previous">This source's ledger entries for the batch's keys, before it (<see cref="ResolvedBatch.Previous"/>).</param>
/// <param name="Epoch">The table's merge epoch when records may take the fast merge; null when they may not (no merge state is then kept).</param>
public sealed record MergeContext(ILedger Ledger, IReadOnlyList<string> OtherSources, IReadOnlyDictionary<RecordKey, LedgerEntry> Previous, long? Epoch)
{
    /// <summary>
    /// The change-tracking columns of the other sources writing the table (<see cref="ConflictSession.TrackingColumns"/>):
    /// bookkeeping for every source, not only for the one that tracks changes by them.
    /// </summary>
    public IReadOnlyList<string> TrackingColumns { get; init; } = [];
}

/// <summary>
/// The conflict path of a table several sources write: after <see cref="ChangeResolver"/> dropped replays, the batch's
/// changes become <see cref="RecordVersion"/>s of their source (sequence after the last one applied, the source's clock
/// offset), the destination's current row becomes the <c>destination</c> pseudo-source's version (out-of-band edits), and
/// <see cref="ConflictEngine"/> merges them into each record's base. The caller holds the destination table's lock from
/// the read here until the writes commit.
/// </summary>
public static class RecordMerger
{
    public static async Task<MergedBatch> MergeAsync(
        ConflictEngine engine,
        IDestination destination,
        TablePlan plan,
        TableSchema schema,
        IReadOnlyList<ChangeEvent> changes,
        MergeContext context,
        Instant now,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(changes);
        ArgumentNullException.ThrowIfNull(context);
        if (changes.Count == 0)
        {
            return new MergedBatch([], [], []);
        }

        var byKey = new Dictionary<RecordKey, List<ChangeEvent>>();
        var order = new List<RecordKey>();
        foreach (var change in changes)
        {
            if (!byKey.TryGetValue(change.Key, out var list))
            {
                byKey[change.Key] = list = [];
                order.Add(change.Key);
            }

            list.Add(change);
        }

        var tracking = TrackingFields(plan, schema, context.TrackingColumns);
        var fields = DataFields.Of(schema, tracking);
        var merged = new Merged[order.Count];
        var parallel = engine.Policy.Plugin is null && Environment.ProcessorCount > 1;
        var chunkReader = new ChunkReader(destination, plan, schema, fields, context, byKey, order);

        // In chunks, each read while the one before is merged: only a chunk's stored rows and bases are alive at a time
        // (a whole batch of them made every collection copy tens of megabytes), and the destination's reads overlap the
        // merging.
        var chunks = (order.Count + ChunkSize - 1) / ChunkSize;
        var reading = chunkReader.ReadAsync(0, cancellationToken);
        for (var chunk = 0; chunk < chunks; chunk++)
        {
            var stored = await reading.ConfigureAwait(false);
            var from = chunk * ChunkSize;
            var to = Math.Min(order.Count, from + ChunkSize);
            reading = chunk + 1 < chunks ? chunkReader.ReadAsync(to, cancellationToken) : Task.FromResult(stored);
            try
            {
                MergeChunk(stored, from, to);
            }
            catch
            {
                // No read outlives a failed merge: the caller goes on (and releases the table's lock) once this throws.
                // The merge's error is the news; a read failing meanwhile is observed and dropped.
                await reading.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default).ConfigureAwait(false);
                throw;
            }
        }

        void MergeRange(ChunkRead read, int start, int end)
        {
            for (var i = start; i < end; i++)
            {
                var key = order[i];
                read.Stored.TryGetValue(key, out var found);
                read.Own.TryGetValue(key, out var own);
                merged[i] = read.Fast.Contains(key)
                    ? FastRecord(plan, schema, tracking, fields, key, own!, byKey[key][0], context.Epoch!.Value, now)
                    : MergeRecord(engine, plan, schema, tracking, fields, key, found, byKey[key], own, read.Others.GetValueOrDefault(key), read.Holders.GetValueOrDefault(key), context, now);
            }
        }

        void MergeChunk(ChunkRead read, int from, int to)
        {
            // Records merge independently and the engine is pure, so a large chunk is merged on every core (the caller
            // holds the table's lock meanwhile); a plug-in resolver is not known to be thread-safe and runs on one.
            if (parallel && to - from >= ParallelThreshold)
            {
                try
                {
                    Parallel.ForEach(
                        System.Collections.Concurrent.Partitioner.Create(from, to, Math.Max(64, (to - from) / (Environment.ProcessorCount * 4))),
                        new ParallelOptions { CancellationToken = cancellationToken },
                        range => MergeRange(read, range.Item1, range.Item2));
                }
                catch (AggregateException e) when (e.InnerExceptions.Count > 0)
                {
                    // The record's own error, as a sequential merge would raise it (its class and message decide what happens next).
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
                }
            }
            else
            {
                MergeRange(read, from, to);
            }
        }

        var writes = new List<RowWrite>(order.Count);
        var bases = new List<RecordBaseWrite>(order.Count);
        var outcomes = new List<(RecordKey, MergeOutcome)>();
        var states = context.Ledger.KeepsMergeState ? new Dictionary<RecordKey, byte[]?>(order.Count) : null;
        var fast = 0;
        var foreignUpdates = new List<(LedgerScope, LedgerEntry)>();
        for (var i = 0; i < merged.Length; i++)
        {
            var (write, body, outcome, state, wasFast, foreign) = merged[i];
            if (foreign is not null)
            {
                foreignUpdates.AddRange(foreign);
            }

            if (write is { } needed)
            {
                writes.Add(needed);
            }

            if (body is not null)
            {
                bases.Add(new RecordBaseWrite(order[i], body));
            }

            if (outcome is not null)
            {
                outcomes.Add((order[i], outcome));
            }

            states?.Add(order[i], state);
            fast += wasFast ? 1 : 0;
        }

        return new MergedBatch(writes, bases, outcomes) { MergeStates = states ?? new Dictionary<RecordKey, byte[]?>(), FastMerged = fast, ForeignLedgerUpdates = foreignUpdates };
    }


    /// <summary>Chunks with fewer distinct records than this are merged on one thread (fanning out costs more than it saves).</summary>
    private const int ParallelThreshold = 256;

    /// <summary>Records read from the destination and merged at a time.</summary>
    private const int ChunkSize = 1024;

    /// <summary>
    /// A chunk as read: stored rows (and bases of the records taking the full merge), the source's own merge states, which
    /// records take the fast merge, the other sources' states of the rest, and, for records with a row but no stored
    /// base yet, the other sources whose ledger holds them (their view of the record is its row).
    /// </summary>
    private sealed record ChunkRead(
        IReadOnlyDictionary<RecordKey, StoredRecord> Stored,
        Dictionary<RecordKey, SourceMergeState> Own,
        HashSet<RecordKey> Fast,
        Dictionary<RecordKey, List<OtherState>> Others,
        Dictionary<RecordKey, List<Holder>> Holders);

    /// <summary>The commit time credited to a write whose time is unknown: before any write whose time is known.</summary>
    private static readonly Instant UnknownWriteTime = Instant.FromUnixTimeTicks(0);

    /// <summary>A source whose ledger holds a record with a row but no stored base, and when it last wrote it (if known).</summary>
    private sealed record Holder(string Source, Instant? CommitTime);

    /// <summary>Another source's ledger entry of a record taking the full merge, with its merge state (one with a tail to fold, or eligible).</summary>
    private sealed record OtherState(LedgerScope Scope, LedgerEntry Entry, SourceMergeState State);

    /// <summary>Reads chunks of a batch's records, on the thread pool.</summary>
    private sealed class ChunkReader(IDestination destination, TablePlan plan, TableSchema schema, DataFields fields, MergeContext context, Dictionary<RecordKey, List<ChangeEvent>> byKey, List<RecordKey> order)
    {
        public Task<ChunkRead> ReadAsync(int from, CancellationToken cancellationToken)
        {
            var keys = order.GetRange(from, Math.Min(ChunkSize, order.Count - from));
            return Task.Run(() => ReadChunkAsync(keys, cancellationToken), cancellationToken);
        }

        private async Task<ChunkRead> ReadChunkAsync(List<RecordKey> keys, CancellationToken cancellationToken)
        {
            var own = new Dictionary<RecordKey, SourceMergeState>();
            var fast = new HashSet<RecordKey>();
            if (!context.Ledger.KeepsMergeState)
            {
                var both = await destination.ReadRecordsAsync(plan.DestinationTable, schema, keys, RecordParts.Both, cancellationToken).ConfigureAwait(false);
                var holders = new Dictionary<RecordKey, List<Holder>>();
                var unbased = keys.Where(k => both.GetValueOrDefault(k) is { Base: null, Row: not null }).ToList();
                if (unbased.Count > 0)
                {
                    foreach (var source in context.OtherSources)
                    {
                        var entries = await context.Ledger.LookupAsync(new LedgerScope(plan.DestinationTable, source), unbased, cancellationToken).ConfigureAwait(false);
                        AddHolders(holders, source, entries, both);
                    }
                }

                return new ChunkRead(both, own, fast, [], holders);
            }

            foreach (var key in keys)
            {
                if (context.Previous.TryGetValue(key, out var entry) && SourceMergeState.Decode(entry.MergeState) is { } state)
                {
                    own[key] = state;
                }
            }

            IReadOnlyDictionary<RecordKey, StoredRecord> stored;
            var slow = keys;
            if (context.Epoch is { } epoch)
            {
                // The row digests of every record first: a record whose row is still what this source's last merge left,
                // under an eligible state of this epoch, takes the fast merge; only the others are read in full.
                var digests = await destination.ReadRowDigestsAsync(plan.DestinationTable, schema, keys, cancellationToken).ConfigureAwait(false);
                slow = [];
                foreach (var key in keys)
                {
                    if (TakesFastMerge(key, epoch, own.GetValueOrDefault(key), digests.TryGetValue(key, out var digest) ? digest : null))
                    {
                        fast.Add(key);
                    }
                    else
                    {
                        slow.Add(key);
                    }
                }

                stored = slow.Count == 0
                    ? new Dictionary<RecordKey, StoredRecord>()
                    : await destination.ReadRecordsAsync(plan.DestinationTable, schema, slow, RecordParts.Both, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                stored = await destination.ReadRecordsAsync(plan.DestinationTable, schema, keys, RecordParts.Both, cancellationToken).ConfigureAwait(false);
            }

            // The records taking the full merge fold every source's fast-merged versions into their bases first.
            var others = new Dictionary<RecordKey, List<OtherState>>();
            var holding = new Dictionary<RecordKey, List<Holder>>();
            if (slow.Count > 0)
            {
                foreach (var source in context.OtherSources)
                {
                    var scope = new LedgerScope(plan.DestinationTable, source);
                    var entries = await context.Ledger.LookupAsync(scope, slow, cancellationToken).ConfigureAwait(false);
                    AddHolders(holding, source, entries, stored);
                    foreach (var (key, entry) in entries)
                    {
                        if (SourceMergeState.Decode(entry.MergeState) is { } state && (state.TailCount > 0 || state.Eligible))
                        {
                            if (!others.TryGetValue(key, out var list))
                            {
                                others[key] = list = [];
                            }

                            list.Add(new OtherState(scope, entry, state));
                        }
                    }
                }
            }

            return new ChunkRead(stored, own, fast, others, holding);
        }

        /// <summary>Adds <paramref name="source"/> to the holders of each record it holds (a live entry) that has a row but no stored base.</summary>
        private static void AddHolders(Dictionary<RecordKey, List<Holder>> holders, string source, IReadOnlyDictionary<RecordKey, LedgerEntry> entries, IReadOnlyDictionary<RecordKey, StoredRecord> stored)
        {
            foreach (var (key, entry) in entries)
            {
                if (!entry.Deleted && stored.GetValueOrDefault(key) is { Base: null, Row: not null })
                {
                    (holders.TryGetValue(key, out var list) ? list : holders[key] = []).Add(new Holder(source, entry.CommitTime));
                }
            }
        }

        private bool TakesFastMerge(RecordKey key, long epoch, SourceMergeState? state, long? digest)
        {
            if (state is not { Eligible: true } || state.Epoch != epoch || state.TailCount >= SourceMergeState.MaxTail || digest != state.RowDigest
                || state.FieldsId != fields.Id || state.FieldDigests.Length != fields.Names.Length)
            {
                return false;
            }

            var changes = byKey[key];
            if (changes.Count != 1 || changes[0].Operation == ChangeOperation.Delete || changes[0].Values is not { } values || values.Length < schema.Columns.Count
                || (context.Previous.TryGetValue(key, out var entry) && entry.Deleted))
            {
                return false;
            }

            // A list compares item by item, numbers by value, which no digest follows: such a record takes the full merge.
            foreach (var value in values)
            {
                if (value is System.Collections.IList and not byte[])
                {
                    return false;
                }
            }

            return true;
        }
    }

    /// <summary>One record's merge: the write the destination needs (null: none), the new base text (null: unchanged), the outcome when it found a conflict or joined a review, the source's new merge state, and whether it took the fast merge.</summary>
    private readonly record struct Merged(RowWrite? Write, byte[]? Body, MergeOutcome? Outcome, byte[]? State, bool Fast, List<(LedgerScope, LedgerEntry)>? Foreign = null);

    /// <summary>
    /// The fast merge of one change (see <see cref="SourceMergeState"/>): the record is eligible for this source and its
    /// row is what this source's last merge left, so every field the change alters (its digest differs from the merged
    /// value's) is a plain write. The row is written, the version appended to the source's state, and the stored base
    /// left as it is.
    /// </summary>
    private static Merged FastRecord(TablePlan plan, TableSchema schema, Dictionary<string, int> tracking, DataFields fields, RecordKey key, SourceMergeState state, ChangeEvent change, long epoch, Instant now)
    {
        var incoming = change.Values!;
        var values = new object?[schema.Columns.Count];
        var digests = (long[])state.FieldDigests.Clone();
        var write = false;
        List<string>? changedNames = null;
        List<object?>? changedValues = null;
        var names = fields.Names;
        var indexes = fields.Indexes;
        for (var f = 0; f < names.Length; f++)
        {
            var index = indexes[f];
            var value = RecordBaseCodec.Normalize(incoming[index]);
            values[index] = value;
            var digest = FieldValues.Digest(value);
            if (digest != digests[f])
            {
                (changedNames ??= []).Add(names[f]);
                (changedValues ??= []).Add(value);
                digests[f] = digest;
                write = true;
            }
        }

        // The change-tracking columns hold the largest value any version brought (the state keeps them).
        var held = state.Tracking;
        foreach (var (field, index) in tracking)
        {
            var value = RecordBaseCodec.Normalize(incoming[index]);
            var current = held.GetValueOrDefault(field);
            if (current is null || (value is not null && FieldValues.Compare(value, current) > 0))
            {
                write |= !FieldValues.Same(value, current);
                current = value;
                held = held.SetItem(field, value);
            }

            values[index] = current;
        }

        for (var i = 0; i < schema.KeyIndexes.Count; i++)
        {
            // The key columns keep the key's own values, as the full merge writes them.
            values[schema.KeyIndexes[i]] = key.Values[i];
        }

        var sequence = state.Sequence + 1;
        var at = (change.CommitTime ?? now) - plan.ClockOffset;
        var changed = changedNames is null ? FieldDictionary<object?>.Empty : FieldDictionary<object?>.FromOrdered([.. changedNames], [.. changedValues!]);
        var next = (state with
        {
            Epoch = epoch,
            Sequence = sequence,
            RowDigest = write ? MergedRowDigest.Of(values) : state.RowDigest,
            FieldDigests = digests,
            Tracking = held,
        }).Appending(new FastVersion(at, sequence, changed));
        return new Merged(write ? new RowWrite(WriteKind.Update, key, values) : null, null, null, next.Encode(), true);
    }

    /// <summary>
    /// Folds the versions that sources merged on the fast path since <paramref name="record"/> was stored (each
    /// source's tail past the base's stamp of that source) into it, through the engine, as their merges would have.
    /// </summary>
    internal static RecordBase FoldTails(ConflictEngine engine, RecordBase record, IEnumerable<(string Source, SourceMergeState State)> states, Instant now)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(states);
        foreach (var (source, state) in states)
        {
            var done = record.SourceStamps.TryGetValue(source, out var stamp) ? stamp.Sequence : 0;
            List<RecordVersion>? versions = null;
            foreach (var version in state.Tail)
            {
                if (version.Sequence > done)
                {
                    (versions ??= []).Add(RecordVersion.Upsert(source, record.Key, version.Changed, version.Time, version.Sequence));
                }
            }

            if (versions is null)
            {
                continue;
            }

            record = WithTracking(Converge(engine.Merge(record, versions, now).Record), state.Tracking);
        }

        return record;
    }

    /// <summary>
    /// Folds every fast-merged version of <paramref name="source"/>'s scope of <paramref name="destinationTable"/> into
    /// the stored bases (with what the other sources merged fast meanwhile): before the scope's ledger entries, which
    /// hold them, are dropped. Returns how many bases were written.
    /// </summary>
    public static async Task<int> FoldScopeAsync(ConflictEngine engine, IDestination destination, string destinationTable, string source, IReadOnlyList<string> otherSources, Instant now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(otherSources);
        if (!destination.Ledger.KeepsMergeState)
        {
            return 0;
        }

        var written = 0;
        var pending = new List<(RecordKey Key, SourceMergeState State)>();
        await foreach (var entry in destination.Ledger.ScanAsync(new LedgerScope(destinationTable, source), cancellationToken).ConfigureAwait(false))
        {
            if (SourceMergeState.Decode(entry.MergeState) is { TailCount: > 0 } state)
            {
                pending.Add((entry.Key, state));
                if (pending.Count == ChunkSize)
                {
                    written += await FoldAsync().ConfigureAwait(false);
                }
            }
        }

        return written + await FoldAsync().ConfigureAwait(false);

        async Task<int> FoldAsync()
        {
            if (pending.Count == 0)
            {
                return 0;
            }

            var keys = pending.Select(p => p.Key).ToList();
            // Only the bases are read: the key's columns are not needed to find them.
            var stored = await destination.ReadRecordsAsync(destinationTable, new TableSchema(destinationTable, [], []), keys, RecordParts.Bases, cancellationToken).ConfigureAwait(false);
            var others = new Dictionary<RecordKey, List<(string, SourceMergeState)>>();
            foreach (var other in otherSources)
            {
                foreach (var (key, entry) in await destination.Ledger.LookupAsync(new LedgerScope(destinationTable, other), keys, cancellationToken).ConfigureAwait(false))
                {
                    if (SourceMergeState.Decode(entry.MergeState) is { TailCount: > 0 } state)
                    {
                        (others.TryGetValue(key, out var list) ? list : others[key] = []).Add((other, state));
                    }
                }
            }

            var bases = new List<RecordBaseWrite>(pending.Count);
            foreach (var (key, state) in pending)
            {
                if (stored.GetValueOrDefault(key)?.Base is not { } body)
                {
                    continue;
                }

                var record = FoldTails(engine, RecordBaseCodec.Decode(key.ToString(), body), [(source, state), .. others.GetValueOrDefault(key) ?? []], now);
                bases.Add(new RecordBaseWrite(key, RecordBaseCodec.EncodeUtf8(record)));
            }

            await destination.WriteRecordBasesAsync(destinationTable, bases, cancellationToken).ConfigureAwait(false);
            pending.Clear();
            return bases.Count;
        }
    }

    /// <summary>
    /// Whether <paramref name="record"/> takes <paramref name="source"/>'s next change without a conflict whatever it
    /// changes, and merges it the same under any policy: it exists (by this source's write or as synced), holds
    /// nothing, every written field was last written by this source, and the source's view holds every data field's
    /// merged value.
    /// </summary>
    internal static bool Eligible(RecordBase record, string source, IReadOnlyList<string> dataFields)
    {
        ArgumentNullException.ThrowIfNull(record);
        ArgumentNullException.ThrowIfNull(dataFields);
        // The record's existence decided by another source's write would make the next upsert's existence stamp a
        // choice between two sources' stamps, which depends on the policy; a fold may run under a later policy than the
        // fast merge did. Between one source's own stamps the choice is the source's order, whatever the policy.
        if (!record.Exists || !record.Holds.IsEmpty || (record.InsertedBy is { } inserted && inserted.Source != source)
            || (record.Existence is { } decided && decided.Source != source))
        {
            return false;
        }

        foreach (var (_, writer) in record.Writers)
        {
            if (writer.Source != source)
            {
                return false;
            }
        }

        if (!record.SourceViews.TryGetValue(source, out var view))
        {
            return false;
        }

        foreach (var field in dataFields)
        {
            // A list's digest does not follow the engine's equality (FieldValues.Digest): such records take the full merge.
            if (!record.Values.TryGetValue(field, out var value) || value is System.Collections.IList and not byte[]
                || !view.TryGetValue(field, out var seen) || !FieldValues.Same(seen, value))
            {
                return false;
            }
        }

        return true;
    }

    private static Merged MergeRecord(
        ConflictEngine engine,
        TablePlan plan,
        TableSchema schema,
        Dictionary<string, int> tracking,
        DataFields fields,
        RecordKey key,
        StoredRecord? found,
        List<ChangeEvent> changes,
        SourceMergeState? own,
        List<OtherState>? others,
        List<Holder>? holders,
        MergeContext context,
        Instant now)
    {
        var id = key.ToString();
        var row = found?.Row;
        var versions = new List<RecordVersion>(changes.Count + 1);
        RecordBase record;
        if (found?.Base is { } text)
        {
            record = RecordBaseCodec.Decode(id, text);
            // What sources merged on the fast path since the base was stored comes first: the row already holds it.
            if (own is { TailCount: > 0 })
            {
                record = FoldTails(engine, record, [(plan.SourceName, own)], now);
            }

            if (others is not null)
            {
                record = FoldTails(engine, record, others.Where(o => o.State.TailCount > 0).Select(o => (o.Scope.Source, o.State)), now);
            }

            // The destination's row as a version of its own: fields edited out-of-band since the base differ from it.
            // A row that still holds what was merged (the usual case) adds nothing, so it is not merged at all.
            if (DestinationVersion(id, record, row, tracking, now) is { } edited)
            {
                versions.Add(edited);
            }
        }
        else
        {
            // A record synced before several sources met (or written by another tool): its row is common ground, and
            // it is what every source holding the record (by its ledger entry) last reported. Without a view of its
            // own, a source that synced the record alone would have its next change compared with the merged values:
            // once another source's write is merged, the fields it left alone would read as changes of its own (an
            // update conflict, or a revert of that write when it is the later one).
            record = row is null ? RecordBase.Absent(id) : RecordBase.Synced(id, Normalized(row));
            var holding = context.Previous.TryGetValue(key, out var previous) && !previous.Deleted ? (holders ?? []).Append(new Holder(plan.SourceName, previous.CommitTime)) : holders;
            if (row is not null && holding is not null)
            {
                // Its data fields, as a source's version reports them (the change-tracking columns are not part of a view).
                var view = FieldDictionary.From(record.Values.Where(p => !tracking.ContainsKey(p.Key)));
                var sources = holding.DistinctBy(h => h.Source, StringComparer.Ordinal).ToList();
                record = record with { SourceViews = FieldDictionary.From(sources.Select(h => KeyValuePair.Create(h.Source, view))) };
                if (sources.Count == 1)
                {
                    // One source synced the record before another met it. As had both been configured from the start,
                    // that source inserted it and wrote each of its fields: another source's first, different version
                    // of it is an insert conflict for the policy to decide, not a plain overwrite (equal values converge).
                    // A write of unknown time (a capture without commit times) ranks before any write with one.
                    var stamp = new WriteStamp(sources[0].Source, sources[0].CommitTime ?? UnknownWriteTime, 0);
                    record = record with
                    {
                        InsertedBy = stamp,
                        Existence = stamp,
                        Writers = FieldDictionary.From(view.Select(p => KeyValuePair.Create(p.Key, stamp))),
                    };
                }
            }
        }

        var sequence = record.SourceStamps.TryGetValue(plan.SourceName, out var last) ? last.Sequence : 0;
        foreach (var change in changes)
        {
            sequence++;
            var at = change.CommitTime ?? now;
            var version = change.Operation == ChangeOperation.Delete
                ? RecordVersion.Delete(plan.SourceName, id, at, sequence)
                : RecordVersion.Upsert(plan.SourceName, id, fields.ValuesOf(change.Values!), at, sequence);
            versions.Add(plan.ClockOffset == Duration.Zero ? version : version with { ClockOffset = plan.ClockOffset });
        }

        var outcome = engine.Merge(record, versions, now);
        var next = Converge(outcome.Record);
        if (tracking.Count > 0)
        {
            next = WithTracking(next, schema, tracking, changes);
        }

        var body = RecordBaseCodec.EncodeUtf8(next);
        var logged = outcome.Conflicts.Count > 0 || outcome.HeldUpdates.Count > 0;
        var write = WriteOf(schema, key, next, row);
        byte[]? state = null;
        long? digest = null;
        if (context.Epoch is { } epoch && context.Ledger.KeepsMergeState)
        {
            // The row this merge leaves, for the source's next change to recognise: written, or as it was.
            digest = write is { Kind: WriteKind.Delete } ? null : write is { Values: { } written } ? MergedRowDigest.Of(written) : row is null ? null : MergedRowDigest.Of(schema, row);
            var newest = next.SourceStamps.TryGetValue(plan.SourceName, out var stamp) ? stamp.Sequence : 0;
            var eligible = digest is not null && Eligible(next, plan.SourceName, fields.Names);
            var fieldDigests = new long[eligible ? fields.Names.Length : 0];
            for (var f = 0; f < fieldDigests.Length; f++)
            {
                fieldDigests[f] = FieldValues.Digest(next.Values[fields.Names[f]]);
            }

            var trackingValues = FieldDictionary<object?>.Empty;
            foreach (var (field, _) in tracking)
            {
                if (next.Values.TryGetValue(field, out var value))
                {
                    trackingValues = trackingValues.SetItem(field, value);
                }
            }

            state = new SourceMergeState(epoch, eligible, digest ?? 0, newest, fields.Id, fieldDigests, trackingValues).Encode();
        }

        // Another source's eligible state vouches for the record as that source's merge left it. Unless this merge left
        // the row and the record's eligibility for that source as they were, it is withdrawn with this batch: a row
        // digest cannot tell a write it does not show (a value the destination stores alike) nor an edit since undone.
        List<(LedgerScope, LedgerEntry)>? foreign = null;
        foreach (var other in others ?? [])
        {
            if (context.Epoch is { } current && other.State is { Eligible: true } eligible && eligible.Epoch == current
                && (digest != eligible.RowDigest || !Eligible(next, other.Scope.Source, fields.Names)))
            {
                (foreign ??= []).Add((other.Scope, other.Entry with { MergeState = (other.State with { Eligible = false }).Encode() }));
            }
        }

        return new Merged(
            write,
            found?.Base is { } stored && body.AsSpan().SequenceEqual(stored) ? null : body,
            logged ? outcome with { Record = next } : null,
            state,
            false,
            foreign);
    }

    /// <summary>The write that makes the destination hold <paramref name="record"/>, or null when it already does.</summary>
    public static RowWrite? WriteOf(TableSchema schema, RecordKey key, RecordBase record, IReadOnlyDictionary<string, object?>? row)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(record);
        if (!record.Exists)
        {
            return row is null ? null : new RowWrite(WriteKind.Delete, key, null);
        }

        var values = new object?[schema.Columns.Count];
        var same = row is not null;
        for (var i = 0; i < values.Length; i++)
        {
            var column = schema.Columns[i].Name;
            object? current = null;
            var hasCurrent = row is not null && row.TryGetValue(column, out current);
            values[i] = record.Values.TryGetValue(column, out var merged) ? merged : hasCurrent ? current : null;
            if (same && !(hasCurrent && FieldValues.Same(RecordBaseCodec.Normalize(values[i]), RecordBaseCodec.Normalize(current))))
            {
                same = false;
            }
        }

        for (var i = 0; i < schema.KeyIndexes.Count; i++)
        {
            // The key columns keep the key's own values (the base holds them normalized).
            values[schema.KeyIndexes[i]] = key.Values[i];
        }

        return same ? null : new RowWrite(row is null ? WriteKind.Insert : WriteKind.Update, key, values);
    }

    /// <summary>
    /// Fields every source has reported with the value the destination holds become common ground again (their writer
    /// is forgotten), and a record every source has reported is no longer "inserted by" one of them: a source that
    /// already holds a value has seen it, so its next change to it is not concurrent with the write that put it there.
    /// Without this, two sources starting from the same rows would conflict on the first change of either one, depending
    /// only on which of them happened to be read first.
    /// </summary>
    internal static RecordBase Converge(RecordBase record)
    {
        if (!record.Exists || (record.Writers.IsEmpty && record.InsertedBy is null))
        {
            return record;
        }

        var sources = 0;
        foreach (var (source, _) in record.SourceViews)
        {
            if (source != RecordVersion.DestinationSource)
            {
                sources++;
            }
        }

        if (sources < 2)
        {
            return record;
        }

        var writers = record.Writers;
        foreach (var (field, writer) in record.Writers)
        {
            if (writer.Source == RecordVersion.DestinationSource || record.Holds.ContainsKey(field) || !record.Values.TryGetValue(field, out var value))
            {
                continue;
            }

            if (EverySourceHolds(record, field, value))
            {
                writers = writers.Remove(field);
            }
        }

        return writers == record.Writers && record.InsertedBy is null ? record : record with { Writers = writers, InsertedBy = null };
    }

    private static bool EverySourceHolds(RecordBase record, string field, object? value)
    {
        foreach (var (source, view) in record.SourceViews)
        {
            if (source != RecordVersion.DestinationSource && !(view.TryGetValue(field, out var seen) && FieldValues.Same(seen, value)))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// The change-tracking columns (<c>updated_at_field</c>, <c>version_field</c>, <c>sequence_field</c>) by index: each
    /// source's own bookkeeping, not data. Every source stamps them on every change, so comparing them would make any
    /// two concurrent changes conflict; they are kept out of detection and the destination holds their maximum. Those
    /// of the other sources writing the table count too: another source's <c>version_field</c> is bookkeeping that the
    /// same application bumps here, not a field this source changed.
    /// </summary>
    internal static Dictionary<string, int> TrackingFields(TablePlan plan, TableSchema schema, IReadOnlyList<string> others)
    {
        var fields = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var name in new[] { plan.UpdatedAtField, plan.VersionField, plan.SequenceField }.Concat(others))
        {
            if (name is not null && schema.IndexOf(name) is var index and >= 0 && !schema.Columns[index].IsPrimaryKey)
            {
                fields[schema.Columns[index].Name] = index;
            }
        }

        return fields;
    }

    /// <summary>The record with each tracking field at the larger of its value and <paramref name="incoming"/>'s.</summary>
    private static RecordBase WithTracking(RecordBase record, FieldDictionary<object?> incoming)
    {
        var values = record.Values;
        foreach (var (field, value) in incoming)
        {
            if (!values.TryGetValue(field, out var current) || current is null || (value is not null && FieldValues.Compare(value, current) > 0))
            {
                values = values.SetItem(field, value);
            }
        }

        return values == record.Values ? record : record with { Values = values };
    }

    private static RecordBase WithTracking(RecordBase record, TableSchema schema, IReadOnlyDictionary<string, int> tracking, IReadOnlyList<ChangeEvent> changes)
    {
        var values = record.Values;
        foreach (var change in changes)
        {
            if (change.Values is not { } row)
            {
                continue;
            }

            foreach (var (field, index) in tracking)
            {
                var incoming = RecordBaseCodec.Normalize(row[index]);
                if (!values.TryGetValue(field, out var current) || current is null || (incoming is not null && FieldValues.Compare(incoming, current) > 0))
                {
                    values = values.SetItem(field, incoming);
                }
            }
        }

        return record with { Values = values };
    }

    private static Dictionary<string, object?> Normalized(IReadOnlyDictionary<string, object?> row) =>
        row.ToDictionary(p => p.Key, p => RecordBaseCodec.Normalize(p.Value), StringComparer.Ordinal);

    /// <summary>
    /// The destination's row as the <c>destination</c> pseudo-source's version when it was edited (or deleted)
    /// out-of-band since <paramref name="record"/> was merged; null when it still holds what was merged.
    /// </summary>
    internal static RecordVersion? DestinationVersion(string id, RecordBase record, IReadOnlyDictionary<string, object?>? row, IReadOnlyDictionary<string, int> tracking, Instant now) =>
        (row is null ? record.Exists : EditedOutOfBand(row, record, tracking))
            ? RecordVersion.FromDestination(id, row is null ? null : Known(row, record, tracking), now)
            : null;

    /// <summary>Whether a field of the row that the base knows differs from the base (an out-of-band edit), without building the row's view.</summary>
    private static bool EditedOutOfBand(IReadOnlyDictionary<string, object?> row, RecordBase record, IReadOnlyDictionary<string, int> tracking)
    {
        foreach (var (field, value) in row)
        {
            if (record.Values.TryGetValue(field, out var merged) && !tracking.ContainsKey(field) && !FieldValues.Same(RecordBaseCodec.Normalize(value), merged))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The row's fields the base knows (columns only another tool writes are not edits of this record).</summary>
    private static Dictionary<string, object?> Known(IReadOnlyDictionary<string, object?> row, RecordBase record, IReadOnlyDictionary<string, int> tracking)
    {
        var values = new Dictionary<string, object?>(record.Values.Count, StringComparer.Ordinal);
        foreach (var (field, value) in row)
        {
            if (record.Values.ContainsKey(field) && !tracking.ContainsKey(field))
            {
                values[field] = RecordBaseCodec.Normalize(value);
            }
        }

        return values;
    }
}

/// <summary>
/// A table's data fields (every column but the change-tracking ones) in ordinal name order, the order a
/// <see cref="FieldDictionary{T}"/> keeps: a change's values become a map that shares the names array with every other
/// record of the batch.
/// </summary>
internal sealed class DataFields
{
    private readonly string[] _names;
    private readonly int[] _indexes;
    private readonly int _columns;

    private DataFields(string[] names, int[] indexes, int columns)
    {
        _names = names;
        _indexes = indexes;
        _columns = columns;
        var id = new System.IO.Hashing.XxHash64();
        foreach (var name in names)
        {
            RowHash.AppendTagged(id, MergedRowDigest.TextTag, name.Length);
            id.Append(System.Text.Encoding.UTF8.GetBytes(name));
        }

        Id = (long)id.GetCurrentHashAsUInt64();
    }

    /// <summary>Identifies the names (a merge state's field digests are of these fields in this order).</summary>
    public long Id { get; }

    /// <summary>The data fields' names, in ordinal order.</summary>
    public string[] Names => _names;

    /// <summary>Per name, its column's index in the table schema.</summary>
    public int[] Indexes => _indexes;

    public static DataFields Of(TableSchema schema, IReadOnlyDictionary<string, int> tracking)
    {
        // One entry per name (the last column of a name, as a map built column by column would keep), in name order.
        var fields = schema.Columns
            .Select((column, index) => (column.Name, Index: index))
            .Where(f => !tracking.ContainsKey(f.Name))
            .GroupBy(f => f.Name, StringComparer.Ordinal)
            .Select(g => g.Last())
            .OrderBy(f => f.Name, StringComparer.Ordinal)
            .ToList();
        return new DataFields([.. fields.Select(f => f.Name)], [.. fields.Select(f => f.Index)], schema.Columns.Count);
    }

    /// <summary>The data fields of a change's row (in table-schema column order), normalized as a stored base holds them.</summary>
    public FieldDictionary<object?> ValuesOf(object?[] row)
    {
        if (row.Length < _columns)
        {
            // A row narrower than the table: only the fields it has.
            var builder = FieldDictionary<object?>.Empty.ToBuilder();
            for (var i = 0; i < _names.Length; i++)
            {
                if (_indexes[i] < row.Length)
                {
                    builder[_names[i]] = RecordBaseCodec.Normalize(row[_indexes[i]]);
                }
            }

            return builder.ToImmutable();
        }

        var values = new object?[_names.Length];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = RecordBaseCodec.Normalize(row[_indexes[i]]);
        }

        return FieldDictionary<object?>.FromOrdered(_names, values);
    }
}

