using DeltaSync.Core.Connectors;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.State;
using DeltaSync.Sqlite.Raw;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace DeltaSync.Sqlite.Destination;

/// <summary>
/// A SQLite database as a destination. One writer connection (SQLite has one writer anyway) shared by the table
/// pipelines under a lock; each batch is one transaction holding the rows, the ledger entries and the checkpoint.
/// </summary>
internal sealed partial class SqliteDestination : IDestination
{
    internal const string CheckpointTable = "_deltasync_checkpoints";
    internal const string AppliedBatchesTable = "_deltasync_applied_batches";

    /// <summary>
    /// The writer's page cache (negative: KiB) for batches, which touch pages at random: a larger cache is fresh memory
    /// on every page it adds, and first-touching memory costs more than re-reading a page from the OS cache (measured: 10,000
    /// ledger look-ups took 65 ms with 2–4 MiB, 215 ms with 24 MiB). A bulk load, which writes in order, gets
    /// <see cref="BulkCacheKib"/> while it runs.
    /// </summary>
    private const int BatchCacheKib = -4096;

    /// <summary>The writer's page cache during a bulk load (fewer dirty pages spilled mid-transaction).</summary>
    private const int BulkCacheKib = -24576;

    /// <summary>How many checkpoint versions back a stream's idempotency keys are kept.</summary>
    internal const long IdempotencyVersionsKept = 1000;

    private readonly string _path;
    private readonly SqliteConnection _writer;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly SqliteLedger _ledger;
    private readonly Dictionary<LedgerScope, long> _scopes = [];
    private readonly Dictionary<string, RawStatement> _statements = [];

    public SqliteDestination(string path)
    {
        _path = path;
        _writer = SqliteConnectionFactory.Open(path, mustExist: false, "destination");
        SqliteConnectionFactory.Execute(_writer, $"PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = {BatchCacheKib}; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 8192");
        SqliteMergedDigest.Register(_writer.Handle!);
        _ledger = new SqliteLedger(this);
        SqliteConnectionFactory.Execute(_writer, SqliteLedger.CreateSql + $"CREATE TABLE IF NOT EXISTS {CheckpointTable} (stream TEXT PRIMARY KEY, version INTEGER NOT NULL, payload TEXT NOT NULL, epoch INTEGER NOT NULL DEFAULT 0);" +
            $"CREATE TABLE IF NOT EXISTS {AppliedBatchesTable} (stream TEXT NOT NULL, idempotency_key TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (stream, idempotency_key)) WITHOUT ROWID;" +
            RecordsCreateSql + EpochsCreateSql);
        SqliteLedger.Migrate(_writer);
        if (!SqliteCatalog.Columns(_writer, CheckpointTable)!.Any(c => c.Name == "epoch"))
        {
            // Destinations written before leases existed.
            SqliteConnectionFactory.Execute(_writer, $"ALTER TABLE {CheckpointTable} ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0");
        }
    }

    public ILedger Ledger => _ledger;

    /// <summary>
    /// True when <paramref name="stateConnection"/> names this destination's file, by any path: relative or absolute,
    /// through symbolic links, and without regard to case where the file system ignores it. (A hard link or a bind
    /// mount of the same file is not recognised.)
    /// </summary>
    public bool SharesStorageWith(string stateConnection, string baseDirectory)
    {
        ArgumentNullException.ThrowIfNull(stateConnection);
        if (!SqliteConnectionFactory.Accepts(stateConnection))
        {
            return false;
        }

        var comparison = OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        return string.Equals(RealPath(_path), RealPath(SqliteConnectionFactory.ResolvePath(stateConnection, baseDirectory)), comparison);
    }

    /// <summary>The absolute path with every symbolic link on the way resolved (components that do not exist yet are kept).</summary>
    internal static string RealPath(string path, int depth = 0)
    {
        var full = Path.GetFullPath(path);
        var root = Path.GetPathRoot(full) ?? string.Empty;
        var current = root;
        foreach (var part in full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            current = Path.Combine(current, part);
            FileSystemInfo info = Directory.Exists(current) ? new DirectoryInfo(current) : new FileInfo(current);
            if (depth < 32 && info.Exists && info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is { } target)
            {
                current = RealPath(target.FullName, depth + 1);
            }
        }

        return current;
    }

    /// <summary>The ledger with its SQLite-specific tiers (tests set its fold threshold).</summary>
    internal SqliteLedger TieredLedger => _ledger;

    public Task<TableEvolution> PrepareTableAsync(string destinationTable, TableSchema sourceSchema, CancellationToken cancellationToken) =>
        WithWriterAsync(
            _ =>
            {
                var evolution = SqliteTableWriter.Prepare(_writer, destinationTable, sourceSchema);
                DropStatements(destinationTable);
                return evolution;
            },
            cancellationToken);

    /// <summary>On a read connection of its own (WAL: readers do not wait for the writer).</summary>
    public Task<IRangeDigests?> OpenRangeDigestsAsync(string destinationTable, TableSchema sourceSchema, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sourceSchema);
        return Task.FromResult(Reconcile.SqliteRangeDigests.Open(_path, destinationTable, sourceSchema, "destination"));
    }

    public Task<ApplyResult> ApplyAsync(ApplyUnit unit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(unit);
        return WithWriterAsync(db => Apply(db, unit), cancellationToken);
    }

    public Task<string?> ReadCommittedCheckpointAsync(string stream, CancellationToken cancellationToken) =>
        WithWriterAsync(
            db =>
            {
                using var statement = new RawStatement(db, $"SELECT payload FROM {CheckpointTable} WHERE stream = ?1");
                statement.Bind(1, stream);
                return statement.Step() ? statement.GetText(0) : null;
            },
            cancellationToken);

    public Task ResetStreamAsync(string stream, LedgerScope scope, CancellationToken cancellationToken) =>
        WithWriterAsync(
            db =>
            {
                var scopeId = ScopeId(scope);
                Exec(db, "BEGIN IMMEDIATE");
                foreach (var ledgerTable in (ReadOnlySpan<string>)[SqliteLedger.Table, SqliteLedger.Recent])
                {
                    using var ledger = new RawStatement(db, $"DELETE FROM {ledgerTable} WHERE scope_id = ?1");
                    ledger.Bind(1, scopeId);
                    ledger.Execute();
                }

                foreach (var table in (ReadOnlySpan<string>)[CheckpointTable, AppliedBatchesTable])
                {
                    using var forget = new RawStatement(db, $"DELETE FROM {table} WHERE stream = ?1");
                    forget.Bind(1, stream);
                    forget.Execute();
                }

                Exec(db, "COMMIT");
                _ledger.Invalidate(scopeId);
                return 0;
            },
            cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _lock.WaitAsync().ConfigureAwait(false);
        try
        {
            foreach (var statement in _statements.Values)
            {
                statement.Dispose();
            }

            _statements.Clear();
            _ledger.DisposeStatements();
            _writer.Dispose();
        }
        finally
        {
            _lock.Release();
            _lock.Dispose();
        }
    }

    /// <summary>Runs <paramref name="work"/> with exclusive use of the writer connection.</summary>
    internal async Task<T> WithWriterAsync<T>(Func<sqlite3, T> work, CancellationToken cancellationToken)
    {
        await _lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return work(_writer.Handle!);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>A separate read connection (WAL: it reads a consistent snapshot while the writer commits).</summary>
    internal SqliteConnection OpenReader() => SqliteConnectionFactory.Open(_path, mustExist: true, "destination");

    /// <summary>The ledger scope's id, created on first use. Call with the writer held.</summary>
    internal long ScopeId(LedgerScope scope)
    {
        if (_scopes.TryGetValue(scope, out var id))
        {
            return id;
        }

        var db = _writer.Handle!;
        using (var insert = new RawStatement(db, $"INSERT INTO {SqliteLedger.Scopes} (destination_table, source) VALUES (?1, ?2) ON CONFLICT DO NOTHING"))
        {
            insert.Bind(1, scope.DestinationTable);
            insert.Bind(2, scope.Source);
            insert.Execute();
        }

        using var select = new RawStatement(db, $"SELECT scope_id FROM {SqliteLedger.Scopes} WHERE destination_table = ?1 AND source = ?2");
        select.Bind(1, scope.DestinationTable);
        select.Bind(2, scope.Source);
        select.Step();
        id = select.GetInt64(0);
        _scopes[scope] = id;
        return id;
    }

    private ApplyResult Apply(sqlite3 db, ApplyUnit unit)
    {
        var scopeId = ScopeId(unit.Scope);
        var shape = Shape(unit.Schema);
        var upsert = Statement($"{unit.DestinationTable}\u0001upsert\u0001{shape}", () => SqliteTableWriter.UpsertSql(unit.DestinationTable, unit.Schema));
        var delete = Statement($"{unit.DestinationTable}\u0001delete\u0001{shape}", () => SqliteTableWriter.DeleteSql(unit.DestinationTable, unit.Schema));
        long inserted = 0, updated = 0, deleted = 0;
        var carried = new CarriedDeletes();
        var deleteTimes = unit.Children.Count > 0 ? DeleteTimes(unit) : null;
        if (_ledger.FoldDue(scopeId))
        {
            // Before this batch, in a transaction of its own: a failure here leaves the batch unwritten and retryable.
            try
            {
                _ledger.Fold(db, scopeId);
            }
            catch (SqliteRawException e)
            {
                throw SqliteErrors.Classify(e, $"cannot fold the ledger of destination table '{unit.DestinationTable}'");
            }
        }

        Exec(db, "BEGIN IMMEDIATE");
        try
        {
            var duplicate = unit.IdempotencyKey is { } key && AlreadyApplied(db, unit.Checkpoint.Stream, key);
            if (unit.TruncateFirst && !duplicate)
            {
                deleted += Truncate(db, unit.DestinationTable, scopeId);
            }

            foreach (var write in duplicate ? [] : unit.Writes)
            {
                if (write.Kind == WriteKind.Delete)
                {
                    var values = write.Key.Values;
                    if (deleteTimes is not null)
                    {
                        CarryDelete(db, unit.DestinationTable, values, unit.Children, deleteTimes.GetValueOrDefault(write.Key, unit.Checkpoint.CreatedAt), carried);
                    }

                    for (var i = 0; i < values.Count; i++)
                    {
                        delete.Bind(i + 1, values[i]);
                    }

                    delete.Execute();
                    deleted++;
                }
                else
                {
                    var values = write.Values!;
                    for (var i = 0; i < values.Length; i++)
                    {
                        upsert.Bind(i + 1, values[i]);
                    }

                    upsert.Execute();
                    if (write.Kind == WriteKind.Insert)
                    {
                        inserted++;
                    }
                    else
                    {
                        updated++;
                    }
                }
            }

            if (!duplicate)
            {
                WriteLedger(db, scopeId, unit.LedgerUpdates);
                if (unit.ForeignLedgerUpdates.Count > 0)
                {
                    WithdrawMergeStates(unit.ForeignLedgerUpdates);
                }

                if (unit.RecordBases.Count > 0)
                {
                    WriteRecordBases(db, unit.DestinationTable, unit.RecordBases);
                }

                if (unit.IdempotencyKey is { } applied)
                {
                    RecordApplied(db, unit.Checkpoint, applied);
                }
            }

            if (unit.CommitsCheckpoint)
            {
                if (!WriteCheckpoint(unit.Checkpoint))
                {
                    throw StaleWriter(unit);
                }
            }
            else if (unit.Checkpoint.Epoch != 0)
            {
                // A part of a split batch commits no checkpoint, but is fenced all the same.
                using var newer = new RawStatement(db, $"SELECT 1 FROM {CheckpointTable} WHERE stream = ?1 AND epoch > ?2");
                newer.Bind(1, unit.Checkpoint.Stream);
                newer.Bind(2, unit.Checkpoint.Epoch);
                if (newer.Step())
                {
                    throw StaleWriter(unit);
                }
            }

            // What must be durable first (the batch's conflict log, written meanwhile on another connection).
            BeforeCommitException.AwaitAsync(unit, CancellationToken.None).GetAwaiter().GetResult();
            Exec(db, "COMMIT");
            if (duplicate)
            {
                return new ApplyResult(0, 0, 0, AlreadyApplied: true);
            }
        }
        catch (Exception e)
        {
            // A failed statement may have ended the transaction already (SQLITE_FULL, SQLITE_IOERR): then there is
            // nothing to roll back.
            if (raw.sqlite3_get_autocommit(db) == 0)
            {
                Exec(db, "ROLLBACK");
            }

            // Every scope's: a cascade may have written tombstones into child tables' scopes in this transaction.
            _ledger.InvalidateAll();
            if (e is SqliteRawException sqlite)
            {
                throw SqliteErrors.Classify(sqlite, $"cannot write batch to destination table '{unit.DestinationTable}'");
            }

            throw;
        }

        return new ApplyResult(inserted, updated, deleted, ChildrenDeleted: carried.Deleted, ChildrenNulled: carried.Nulled);
    }

    /// <summary>
    /// Records <paramref name="checkpoint"/> inside the open transaction; false when refused: a worker whose lease epoch
    /// is older than the last one committed here is fenced off (epoch 0 is a store without leases).
    /// </summary>
    private bool WriteCheckpoint(Checkpoint checkpoint)
    {
        var statement = Statement(
            "\u0001checkpoint",
            () => $"INSERT INTO {CheckpointTable} (stream, version, payload, epoch) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (stream) DO UPDATE SET version = excluded.version, payload = excluded.payload, epoch = max(epoch, excluded.epoch) " +
                $"WHERE excluded.epoch = 0 OR {CheckpointTable}.epoch <= excluded.epoch");
        statement.Bind(1, checkpoint.Stream);
        statement.Bind(2, checkpoint.Version);
        statement.Bind(3, CheckpointCodec.Serialize(checkpoint));
        statement.Bind(4, checkpoint.Epoch);
        statement.Execute();
        return raw.sqlite3_changes(_writer.Handle!) != 0;
    }

    private static bool AlreadyApplied(sqlite3 db, string stream, string key)
    {
        using var seen = new RawStatement(db, $"SELECT 1 FROM {AppliedBatchesTable} WHERE stream = ?1 AND idempotency_key = ?2");
        seen.Bind(1, stream);
        seen.Bind(2, key);
        return seen.Step();
    }

    /// <summary>Records the batch's key with its writes, and forgets keys older than <see cref="IdempotencyVersionsKept"/> versions.</summary>
    private static void RecordApplied(sqlite3 db, Checkpoint checkpoint, string key)
    {
        using (var record = new RawStatement(db, $"INSERT INTO {AppliedBatchesTable} (stream, idempotency_key, version) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING"))
        {
            record.Bind(1, checkpoint.Stream);
            record.Bind(2, key);
            record.Bind(3, checkpoint.Version);
            record.Execute();
        }

        if (checkpoint.Version % 100 == 0)
        {
            using var prune = new RawStatement(db, $"DELETE FROM {AppliedBatchesTable} WHERE stream = ?1 AND version < ?2");
            prune.Bind(1, checkpoint.Stream);
            prune.Bind(2, checkpoint.Version - IdempotencyVersionsKept);
            prune.Execute();
        }
    }

    internal static SyncException StaleWriter(ApplyUnit unit) => new(
        ErrorClass.Fatal,
        $"stale writer: another worker with a newer lease (epoch > {unit.Checkpoint.Epoch}) has committed to '{unit.DestinationTable}'; this worker's batch was refused and rolled back");

    /// <summary>Empties the table and tombstones the scope's ledger (a TRUNCATE at the source); returns the rows removed.</summary>
    private static long Truncate(sqlite3 db, string table, long scopeId)
    {
        Exec(db, $"DELETE FROM {SqliteSql.Quote(table)}");
        var removed = raw.sqlite3_changes(db);
        foreach (var ledgerTable in (ReadOnlySpan<string>)[SqliteLedger.Table, SqliteLedger.Recent])
        {
            using var ledger = new RawStatement(db, $"UPDATE {ledgerTable} SET deleted = 1, row_hash = 0 WHERE scope_id = ?1 AND deleted = 0");
            ledger.Bind(1, scopeId);
            ledger.Execute();
        }

        return removed;
    }

    /// <summary>Records ledger entries inside the open transaction, on the writer's prepared upserts of both tiers.</summary>
    /// <summary>
    /// Rewrites only the merge state of other sources' entries (whichever tier holds them): the rest of an entry stays
    /// what it is now, even if something outside this table's lock (a cascade from a parent table) wrote it since.
    /// </summary>
    private void WithdrawMergeStates(IReadOnlyList<(LedgerScope Scope, LedgerEntry Entry)> updates)
    {
        foreach (var ledgerTable in (ReadOnlySpan<string>)[SqliteLedger.Table, SqliteLedger.Recent])
        {
            var update = Statement($"\u0001merge-state\u0001{ledgerTable}", () => $"UPDATE {ledgerTable} SET merge_state = ?3 WHERE scope_id = ?1 AND key = ?2");
            foreach (var (scope, entry) in updates)
            {
                update.Bind(1, ScopeId(scope));
                update.Bind(2, entry.Key.Encoded);
                update.Bind(3, entry.MergeState);
                update.Execute();
            }
        }
    }

    private void WriteLedger(sqlite3 db, long scopeId, IReadOnlyList<LedgerEntry> entries) =>
        _ledger.Write(
            db,
            scopeId,
            entries,
            Statement("\u0001ledger", () => SqliteLedger.UpsertSql(SqliteLedger.Table)),
            Statement("\u0001ledger-recent", () => SqliteLedger.UpsertSql(SqliteLedger.Recent)));

    /// <summary>
    /// The part of a statement's cache name that its columns decide: sources writing one table may list its columns in
    /// another order, or fewer of them, and a statement prepared for one binds the other's values by position.
    /// </summary>
    private static string Shape(TableSchema schema) => string.Join('\u0002', schema.Columns.Select(c => c.Name));

    private RawStatement Statement(string name, Func<string> sql)
    {
        if (!_statements.TryGetValue(name, out var statement))
        {
            statement = new RawStatement(_writer.Handle!, sql());
            _statements[name] = statement;
        }

        return statement;
    }

    private void DropStatements(string table)
    {
        foreach (var name in _statements.Keys.Where(k => k.StartsWith(table + "\u0001", StringComparison.Ordinal)).ToList())
        {
            _statements[name].Dispose();
            _statements.Remove(name);
        }
    }

    private static void Exec(sqlite3 db, string sql)
    {
        using var statement = new RawStatement(db, sql);
        statement.Execute();
    }
}
