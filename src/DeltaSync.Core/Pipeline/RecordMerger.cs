using DeltaSync.Core.Conflicts;
using DeltaSync.Core.Connectors;
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
        Instant now,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(changes);
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

        var tracking = TrackingFields(plan, schema);
        var fields = DataFields.Of(schema, tracking);
        var merged = new Merged[order.Count];
        var parallel = engine.Policy.Plugin is null && Environment.ProcessorCount > 1;

        // In chunks, each read while the one before is merged: only a chunk's stored rows and bases are alive at a time
        // (a whole batch of them made every collection copy tens of megabytes), and the destination's reads overlap the
        // merging.
        var chunks = (order.Count + ChunkSize - 1) / ChunkSize;
        var reading = ReadChunkAsync(destination, plan, schema, order, 0, cancellationToken);
        for (var chunk = 0; chunk < chunks; chunk++)
        {
            var stored = await reading.ConfigureAwait(false);
            var from = chunk * ChunkSize;
            var to = Math.Min(order.Count, from + ChunkSize);
            reading = chunk + 1 < chunks ? ReadChunkAsync(destination, plan, schema, order, to, cancellationToken) : Task.FromResult(stored);
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

        void MergeRange(IReadOnlyDictionary<RecordKey, StoredRecord> stored, int start, int end)
        {
            for (var i = start; i < end; i++)
            {
                var key = order[i];
                stored.TryGetValue(key, out var found);
                merged[i] = MergeRecord(engine, plan, schema, tracking, fields, key, found, byKey[key], now);
            }
        }

        void MergeChunk(IReadOnlyDictionary<RecordKey, StoredRecord> stored, int from, int to)
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
                        range => MergeRange(stored, range.Item1, range.Item2));
                }
                catch (AggregateException e) when (e.InnerExceptions.Count > 0)
                {
                    // The record's own error, as a sequential merge would raise it (its class and message decide what happens next).
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
                }
            }
            else
            {
                MergeRange(stored, from, to);
            }
        }

        var writes = new List<RowWrite>(order.Count);
        var bases = new List<RecordBaseWrite>(order.Count);
        var outcomes = new List<(RecordKey, MergeOutcome)>();
        for (var i = 0; i < merged.Length; i++)
        {
            var (write, body, outcome) = merged[i];
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
        }

        return new MergedBatch(writes, bases, outcomes);
    }

    /// <summary>Chunks with fewer distinct records than this are merged on one thread (fanning out costs more than it saves).</summary>
    private const int ParallelThreshold = 256;

    /// <summary>Records read from the destination and merged at a time.</summary>
    private const int ChunkSize = 1024;

    /// <summary>The stored records of the chunk of <paramref name="order"/> starting at <paramref name="from"/>, read on the thread pool.</summary>
    private static Task<IReadOnlyDictionary<RecordKey, StoredRecord>> ReadChunkAsync(IDestination destination, TablePlan plan, TableSchema schema, List<RecordKey> order, int from, CancellationToken cancellationToken)
    {
        var keys = order.GetRange(from, Math.Min(ChunkSize, order.Count - from));
        return Task.Run(() => destination.ReadRecordsAsync(plan.DestinationTable, schema, keys, cancellationToken), cancellationToken);
    }

    /// <summary>One record's merge: the write the destination needs (null: none), the new base text (null: unchanged), the outcome when it found a conflict or joined a review.</summary>
    private readonly record struct Merged(RowWrite? Write, byte[]? Body, MergeOutcome? Outcome);

    private static Merged MergeRecord(
        ConflictEngine engine,
        TablePlan plan,
        TableSchema schema,
        Dictionary<string, int> tracking,
        DataFields fields,
        RecordKey key,
        StoredRecord? found,
        List<ChangeEvent> changes,
        Instant now)
    {
        var id = key.ToString();
        var row = found?.Row;
        var versions = new List<RecordVersion>(changes.Count + 1);
        RecordBase record;
        if (found?.Base is { } text)
        {
            record = RecordBaseCodec.Decode(id, text);
            // The destination's row as a version of its own: fields edited out-of-band since the base differ from it.
            // A row that still holds what was merged (the usual case) adds nothing, so it is not merged at all.
            if (row is null ? record.Exists : EditedOutOfBand(row, record, tracking))
            {
                versions.Add(RecordVersion.FromDestination(id, row is null ? null : Known(row, record, tracking), now));
            }
        }
        else
        {
            // A record synced before several sources met (or written by another tool): its row is common ground.
            record = row is null ? RecordBase.Absent(id) : RecordBase.Synced(id, Normalized(row));
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
        return new Merged(
            WriteOf(schema, key, next, row),
            found?.Base is { } stored && body.AsSpan().SequenceEqual(stored) ? null : body,
            logged ? outcome with { Record = next } : null);
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
    /// two concurrent changes conflict; they are kept out of detection and the destination holds their maximum.
    /// </summary>
    private static Dictionary<string, int> TrackingFields(TablePlan plan, TableSchema schema)
    {
        var fields = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var name in new[] { plan.UpdatedAtField, plan.VersionField, plan.SequenceField })
        {
            if (name is not null && schema.IndexOf(name) is var index and >= 0 && !schema.Columns[index].IsPrimaryKey)
            {
                fields[schema.Columns[index].Name] = index;
            }
        }

        return fields;
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
    }

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

