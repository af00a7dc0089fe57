using DeltaSync.Core.Capture;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.State;
using DeltaSync.Sqlite.Capture;
using DeltaSync.Sqlite.Raw;
using DeltaSync.Sqlite.Source;
using SQLitePCL;

namespace DeltaSync.Sqlite.Destination;

/// <summary>
/// SQLite → SQLite initial load at SQLite's own speed: the source file is attached to the writer connection and
/// SQLite copies the rows itself (<c>INSERT … SELECT</c>, no value crossing into .NET); the ledger is built the same way,
/// its key, row hash and commit time computed by functions that run the engine's own code on SQLite's buffers
/// (<see cref="SqliteSnapshotCopy"/>). The table is copied in key-range chunks of
/// <see cref="BulkLoadRequest.ChunkRows"/> rows; each chunk's rows, ledger entries and checkpoint (a snapshot position
/// after its last key, fenced by the lease's epoch) commit in one transaction, in which both statements read one
/// snapshot of the source. Taken only for an empty table with no ledger entries in the scope and every source column
/// present here; anything else is left to the pipeline. A table whose key holds a NULL, or whose key order SQLite would
/// have to sort for, is copied in one chunk.
/// </summary>
/// <remarks>
/// Crash safety as for a batch: killed during a chunk, nothing of that chunk is in the file; the next run resumes the
/// snapshot after the last committed chunk (through the pipeline) and reads what changed meanwhile from the position
/// observed before the first chunk, as a resumed snapshot does. The source is only read: each transaction begins
/// deferred, so the attached file gets a read lock (a write transaction there would block the application writing it).
/// </remarks>
internal sealed partial class SqliteDestination
{
    public async Task<BulkLoadOutcome> TryBulkLoadAsync(ISource source, BulkLoadRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (source is not SqliteSource sqlite)
        {
            return BulkLoadOutcome.Skipped("the source is not SQLite");
        }

        using var copy = sqlite.SnapshotCopy(request.Capture, request.FutureLimit, out var reason);
        if (copy is null)
        {
            return BulkLoadOutcome.Skipped(reason);
        }

        if (string.Equals(Path.GetFullPath(copy.SourcePath), Path.GetFullPath(_path), StringComparison.Ordinal))
        {
            return BulkLoadOutcome.Skipped("source and destination are one database file");
        }

        if (!File.Exists(copy.SourcePath))
        {
            // ATTACH would create an empty file there.
            return BulkLoadOutcome.Skipped("the source file is gone");
        }

        return await LoadChunksAsync(new ChunkedLoad(copy, request, copy.Start()), cancellationToken).ConfigureAwait(false);
    }

    private async Task<BulkLoadOutcome> LoadChunksAsync(ChunkedLoad load, CancellationToken cancellationToken)
    {
        var request = load.Request;
        while (true)
        {
            var chunk = await WithWriterAsync(db => LoadChunk(db, load), cancellationToken).ConfigureAwait(false);
            if (chunk is not null)
            {
                // Nothing of this chunk was written: the table is the pipeline's from the last committed chunk on.
                return load.Committed is null ? BulkLoadOutcome.Skipped(chunk) : new BulkLoadOutcome(load.Stats, load.Committed, chunk) { Complete = false };
            }

            if (load.Done)
            {
                return new BulkLoadOutcome(load.Stats, load.Committed, null);
            }

            if (request.ChunkCommitted is { } committed)
            {
                await committed(load.Stats!, load.Committed!, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Copies the next chunk in one transaction; null when it committed, else why nothing was written.</summary>
    private string? LoadChunk(sqlite3 db, ChunkedLoad load)
    {
        var request = load.Request;
        var table = request.Capture.Plan.DestinationTable;
        var first = load.Committed is null;
        if (first)
        {
            var columns = SqliteCatalog.Columns(_writer, table);
            if (columns is null)
            {
                return "the destination table was not prepared";
            }

            if (request.Capture.Schema.Columns.FirstOrDefault(c => !columns.Any(d => string.Equals(d.Name, c.Name, StringComparison.OrdinalIgnoreCase))) is { } missing)
            {
                return $"column '{missing.Name}' is not at the destination";
            }
        }

        var scopeId = ScopeId(request.Capture.Scope);
        try
        {
            using var attach = new RawStatement(db, $"ATTACH DATABASE ?1 AS {SqliteSnapshotCopy.Attached}");
            attach.Bind(1, load.Copy.SourcePath);
            attach.Execute();
        }
        catch (SqliteRawException e)
        {
            // Locked past the busy timeout, another text encoding…: the pipeline reads the source its own way.
            return $"the source file could not be attached ({e.Message})";
        }

        // The larger cache only while this chunk runs: other tables' batches share the writer between chunks.
        Pragma($"cache_size = {BulkCacheKib}");
        try
        {
            try
            {
                load.Copy.Register(db);
            }
            catch (SqliteRawException e)
            {
                return $"the load's SQL functions could not be registered ({e.Message})";
            }

            Exec(db, "BEGIN");
            try
            {
                var skipped = CopyChunk(db, load, table, scopeId, first);
                Exec(db, skipped is null ? "COMMIT" : "ROLLBACK");
                return skipped;
            }
            catch (Exception e)
            {
                if (raw.sqlite3_get_autocommit(db) == 0)
                {
                    Exec(db, "ROLLBACK");
                }

                if (load.Copy.Unreadable is { } unreadable)
                {
                    return $"a row's cursor value cannot be read ({unreadable}); the pipeline dead-letters it";
                }

                if (e is SqliteRawException error)
                {
                    throw SqliteErrors.Classify(error, $"cannot bulk load destination table '{table}'");
                }

                throw;
            }
        }
        finally
        {
            _ledger.Invalidate(scopeId);
            load.Copy.Unregister(db);
            Exec(db, $"DETACH DATABASE {SqliteSnapshotCopy.Attached}");
            Pragma($"cache_size = {BatchCacheKib}");
        }
    }

    private string? CopyChunk(sqlite3 db, ChunkedLoad load, string table, long scopeId, bool first)
    {
        var copy = load.Copy;
        var watch = System.Diagnostics.Stopwatch.StartNew();
        // A write that changes nothing takes the write lock now, so no other writer fills the table after the check.
        Exec(db, $"DELETE FROM main.{AppliedBatchesTable} WHERE 0");
        if (first)
        {
            if (HasRowsOrLedger(db, table, scopeId))
            {
                return "the destination table already has rows or ledger entries";
            }

            // Chunks are cut at keys read in key order, which must come from an index (or the rowid): a key that needs a
            // sort of the whole table for each chunk (a configured primary_key no index leads with) is copied whole.
            load.Chunked = !SortsForKeyOrder(db, copy.ChunkEndSql(hasLower: true, 1)) && !HasNullKey(db, copy);
            if (copy.IsSequence)
            {
                using var highest = new RawStatement(db, copy.HighestSequenceSql);
                highest.Step();
                load.HighestSequence = highest.IsNull(0) ? null : highest.GetInt64(0);
            }
        }

        // The chunk ends at the key of its last row, read in this transaction's snapshot of the source; the final chunk
        // has no end.
        var keyCount = load.Request.Capture.Schema.PrimaryKey.Count;
        RecordKey? end = null;
        var chunkRows = load.Chunked ? load.Request.ChunkRows : 0;
        using (var last = new RawStatement(db, copy.ChunkEndSql(load.LastKey is not null, chunkRows > 0 ? chunkRows : 1)))
        {
            BindKey(last, 1, load.LastKey);
            if (chunkRows > 0 && last.Step())
            {
                var values = new object?[keyCount];
                for (var i = 0; i < keyCount; i++)
                {
                    values[i] = last.GetValue(i);
                }

                // A chunk that ends with the table's last row is the final one (no empty chunk after it).
                end = last.Step() ? new RecordKey(values) : null;
            }
        }

        var lower = load.LastKey is null ? (int?)null : 2;
        var upper = end is null ? (int?)null : 2 + (lower is null ? 0 : keyCount);
        var range = copy.RangeSql(lower, upper);

        // The ledger first: its functions stop the load at a row the capture would dead-letter, before any row is copied.
        long entries;
        using (var ledger = new RawStatement(db, copy.LedgerInsertSql(SqliteLedger.Table, range)))
        {
            ledger.Bind(1, scopeId);
            BindKey(ledger, lower, load.LastKey);
            BindKey(ledger, upper, end);
            ledger.Execute();
            entries = raw.sqlite3_changes(db);
        }

        var ledgerTime = watch.Elapsed;
        watch.Restart();
        var names = SqliteSql.ColumnList(load.Request.Capture.Schema.Columns.Select(c => c.Name));
        // The range's parameters keep their numbers (from ?2; ?1, the ledger's scope, is not used here).
        long rows;
        using (var insert = new RawStatement(db, $"INSERT INTO main.{SqliteSql.Quote(table)} ({names}) SELECT {names} FROM {copy.SourceTable} WHERE {range}"))
        {
            BindKey(insert, lower, load.LastKey);
            BindKey(insert, upper, end);
            insert.Execute();
            rows = raw.sqlite3_changes(db);
        }

        if (rows == 0 && end is not null)
        {
            // The chunk's end compared equal to its start (text that does not survive decoding): cut no further.
            return $"the key order could not be cut after {load.LastKey?.ToString() ?? "the start"}";
        }

        if (rows != entries)
        {
            throw new SyncException(ErrorClass.Fatal, $"the bulk load of '{table}' copied {rows} rows but built {entries} ledger entries; it was rolled back");
        }

        var commits = (load.Stats?.Commits ?? 0) + 1;
        var total = (load.Stats?.Rows ?? 0) + rows;
        var position = end is null ? copy.Done(load.Start, load.HighestSequence) : SnapshotPosition.Create(end, load.Start);
        var stats = new BulkLoadStats(total, position, copy.HighWaterMark)
        {
            Method = "sqlite_insert_select",
            Commits = commits,
            NullCursorRows = copy.NullCursorRows,
            CreatedAtFallbackRows = copy.CreatedAtFallbackRows,
            FutureRows = copy.FutureRows,
            NewestFuture = copy.NewestFuture,
            DstGapRows = copy.DstGapRows,
            DstOverlapRows = copy.DstOverlapRows,
            CopyTime = (load.Stats?.CopyTime ?? TimeSpan.Zero) + watch.Elapsed,
            LedgerTime = (load.Stats?.LedgerTime ?? TimeSpan.Zero) + ledgerTime,
        };
        var checkpoint = load.Request.CheckpointFor(stats);
        if (!WriteCheckpoint(checkpoint))
        {
            throw new SyncException(
                ErrorClass.Fatal,
                $"stale writer: another worker with a newer lease (epoch > {checkpoint.Epoch}) has committed to '{table}'; this worker's bulk load was refused and rolled back");
        }

        load.Stats = stats;
        load.Committed = checkpoint;
        load.LastKey = end;
        load.Done = end is null;
        return null;
    }

    private int Pragma(string pragma)
    {
        SqliteConnectionFactory.Execute(_writer, "PRAGMA " + pragma);
        return 0;
    }

    private static void BindKey(RawStatement statement, int? first, RecordKey? key)
    {
        if (first is not { } at || key is null)
        {
            return;
        }

        for (var i = 0; i < key.Values.Count; i++)
        {
            statement.Bind(at + i, key.Values[i]);
        }
    }

    private static bool HasNullKey(sqlite3 db, SqliteSnapshotCopy copy)
    {
        if (copy.NullKeySql is not { } sql)
        {
            return false;
        }

        using var exists = new RawStatement(db, sql);
        exists.Step();
        return exists.GetInt64(0) != 0;
    }

    /// <summary>Whether SQLite's plan for <paramref name="sql"/> sorts (<c>USE TEMP B-TREE FOR ORDER BY</c>).</summary>
    private static bool SortsForKeyOrder(sqlite3 db, string sql)
    {
        using var plan = new RawStatement(db, "EXPLAIN QUERY PLAN " + sql);
        while (plan.Step())
        {
            if (plan.GetValue(3) is string detail && detail.Contains("TEMP B-TREE", StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    private static bool HasRowsOrLedger(sqlite3 db, string table, long scopeId)
    {
        using var statement = new RawStatement(
            db,
            $"SELECT EXISTS (SELECT 1 FROM main.{SqliteSql.Quote(table)}) OR EXISTS (SELECT 1 FROM main.{SqliteLedger.Table} WHERE scope_id = ?1) OR EXISTS (SELECT 1 FROM main.{SqliteLedger.Recent} WHERE scope_id = ?1)");
        statement.Bind(1, scopeId);
        statement.Step();
        return statement.GetInt64(0) != 0;
    }

    /// <summary>A bulk load in progress: what the committed chunks copied and where the next one starts.</summary>
    private sealed class ChunkedLoad(SqliteSnapshotCopy copy, BulkLoadRequest request, Position start)
    {
        public SqliteSnapshotCopy Copy { get; } = copy;

        public BulkLoadRequest Request { get; } = request;

        /// <summary>Where the capture continues after the snapshot, observed before the first chunk.</summary>
        public Position Start { get; } = start;

        public long? HighestSequence { get; set; }

        /// <summary>Whether the table is copied in chunks (decided by the first one).</summary>
        public bool Chunked { get; set; }

        public RecordKey? LastKey { get; set; }

        public BulkLoadStats? Stats { get; set; }

        public Checkpoint? Committed { get; set; }

        public bool Done { get; set; }
    }
}
