using System.Collections.Concurrent;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.State;
using NodaTime;
using Npgsql;

namespace DeltaSync.Postgres.Destination;

/// <summary>
/// A PostgreSQL database as a destination. Each destination table has its own connection (tables are written in
/// parallel; one table's batches are serial), and each batch is one transaction holding the rows, the ledger entries and
/// the committed checkpoint (<c>deltasync.committed_checkpoints</c>): the exactly-once effect of DESIGN.md invariant 3.
/// </summary>
internal sealed partial class PostgresDestination : IDestination
{
    private readonly NpgsqlDataSource _data;
    private readonly PostgresLedger _ledger;
    private readonly ConcurrentDictionary<string, TableSlot> _tables = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<LedgerScope, int> _scopes = new();
    private readonly SemaphoreSlim _initialize = new(1, 1);
    private bool _initialized;
    private ConnectionWarmUp? _warmUp;
    private int _serial;

    public PostgresDestination(string connection, string schema = "deltasync")
    {
        _data = PostgresConnectionFactory.CreateDataSource(connection, "deltasync apply");
        Schema = schema;
        _ledger = new PostgresLedger(this);
    }

    /// <summary>
    /// Starts opening the first connection, and creating the ledger's schema on it, in the background (see
    /// <see cref="ConnectionWarmUp"/>); every user of a destination writes to it, so the schema is needed anyway.
    /// </summary>
    internal PostgresDestination WarmUp()
    {
        _warmUp ??= ConnectionWarmUp.Start(OpenAsync);
        return this;
    }

    /// <summary>The schema holding the ledger and committed checkpoints.</summary>
    public string Schema { get; }

    public ILedger Ledger => _ledger;

    private string CheckpointTable => PostgresSql.Qualified(Schema, "committed_checkpoints");

    /// <summary>Idempotency keys of applied batches, kept for the last <see cref="IdempotencyVersionsKept"/> checkpoint versions of a stream.</summary>
    private string AppliedBatchesTable => PostgresSql.Qualified(Schema, "applied_batches");

    private const long IdempotencyVersionsKept = 1000;

    public Task<TableEvolution> PrepareTableAsync(string destinationTable, TableSchema sourceSchema, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sourceSchema);
        return WithTableAsync(
            destinationTable,
            async connection =>
            {
                var (table, evolution) = await Run(
                    () => PostgresTableWriter.PrepareAsync(connection, destinationTable, sourceSchema, cancellationToken),
                    $"cannot prepare destination table '{destinationTable}'").ConfigureAwait(false);
                var slot = _tables[destinationTable];
                slot.Writer = PostgresTableWriter.Create(table, sourceSchema, Interlocked.Increment(ref _serial));
                return evolution;
            },
            cancellationToken);
    }

    public async Task<IRangeDigests?> OpenRangeDigestsAsync(string destinationTable, TableSchema sourceSchema, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sourceSchema);
        var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        return await Reconcile.PostgresRangeDigests.OpenAsync(connection, destinationTable, sourceSchema, cancellationToken).ConfigureAwait(false);
    }

    public Task<ApplyResult> ApplyAsync(ApplyUnit unit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(unit);
        return WithTableAsync(
            unit.DestinationTable,
            async connection =>
            {
                var slot = _tables[unit.DestinationTable];
                if (slot.Writer is null || !slot.Writer.Fits(unit.Schema))
                {
                    var (table, _) = await PostgresTableWriter.PrepareAsync(connection, unit.DestinationTable, unit.Schema, cancellationToken).ConfigureAwait(false);
                    slot.Writer = PostgresTableWriter.Create(table, unit.Schema, Interlocked.Increment(ref _serial));
                }

                var scopeId = await ScopeIdAsync(connection, unit.Scope, cancellationToken).ConfigureAwait(false);
                long inserted = 0, updated = 0, deleted = 0;
                foreach (var write in unit.Writes)
                {
                    switch (write.Kind)
                    {
                        case WriteKind.Insert:
                            inserted++;
                            break;
                        case WriteKind.Update:
                            updated++;
                            break;
                        default:
                            deleted++;
                            break;
                    }
                }

                // Child scopes before the transaction: a scope created in a transaction that rolls back would stay cached.
                var parentDeletes = unit.Children.Count == 0 ? [] : ParentDeletes(unit);
                if (parentDeletes.Count > 0)
                {
                    await ResolveChildScopesAsync(connection, unit.Children, cancellationToken).ConfigureAwait(false);
                }

                var carried = new CarriedDeletes();
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                var duplicate = false;
                try
                {
                    // The key is inserted first: a conflict means this very batch was committed before (its
                    // acknowledgement lost, or re-sent), so nothing is written again.
                    duplicate = unit.IdempotencyKey is { } key && !await RecordAppliedAsync(connection, transaction, unit.Checkpoint, key, cancellationToken).ConfigureAwait(false);
                    if (unit.TruncateFirst && !duplicate)
                    {
                        deleted += await TruncateAsync(connection, slot.Writer.Target, unit.Scope.DestinationTable, scopeId, cancellationToken).ConfigureAwait(false);
                    }

                    if (!duplicate)
                    {
                        // Another source's bulk-loaded entries are the rows this batch may rewrite: written out first.
                        await _ledger.MaterializeAsync(connection, unit.Scope.DestinationTable, scopeId, cancellationToken).ConfigureAwait(false);
                        await slot.Writer.WriteAsync(connection, unit.Writes, cancellationToken).ConfigureAwait(false);
                        await _ledger.WriteAsync(connection, scopeId, unit.LedgerUpdates, cancellationToken).ConfigureAwait(false);
                        if (unit.RecordBases.Count > 0)
                        {
                            await WriteRecordBasesAsync(connection, unit.DestinationTable, unit.RecordBases, cancellationToken).ConfigureAwait(false);
                        }

                        if (parentDeletes.Count > 0)
                        {
                            await CarryDeletesAsync(connection, unit.DestinationTable, parentDeletes, unit.Children, carried, cancellationToken).ConfigureAwait(false);
                        }
                    }

                    // A batch from a worker whose lease epoch is older than the last one committed here is refused
                    // (fencing); epoch 0 is a state store without leases. A part of a split batch only checks the epoch.
                    if (!await CommitCheckpointAsync(connection, transaction, unit.Checkpoint, unit.CommitsCheckpoint, cancellationToken).ConfigureAwait(false))
                    {
                        throw new SyncException(
                            ErrorClass.Fatal,
                            $"stale writer: another worker with a newer lease (epoch > {unit.Checkpoint.Epoch}) has committed to '{unit.DestinationTable}'; this worker's batch was refused and rolled back");
                    }

                    // What must be durable first (the batch's conflict log, written meanwhile on another connection).
                    await BeforeCommitException.AwaitAsync(unit, cancellationToken).ConfigureAwait(false);
                    await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception) when (ForgetCaches(scopeId, unit.Scope.DestinationTable))
                {
                    // Never taken: the filter only forgets what this transaction may have cached, whatever ends it
                    // (a cancellation too), before the exception is handled below or passed on.
                    throw;
                }
                catch (Exception e) when (e is NpgsqlException or SyncException or TimeoutException or IOException or FormatException or InvalidCastException or OverflowException or BeforeCommitException)
                {
                    await RollbackIfOpenAsync(connection, transaction).ConfigureAwait(false);

                    if (e is SyncException or BeforeCommitException)
                    {
                        throw;
                    }

                    if (e is FormatException or InvalidCastException or OverflowException)
                    {
                        // A value the column's type cannot take, found while encoding it: this record, not the server.
                        throw new SyncException(ErrorClass.Permanent, $"cannot write batch to destination table '{unit.DestinationTable}': {e.Message}", e);
                    }

                    throw PostgresConnectionFactory.Classify(e, $"cannot write batch to destination table '{unit.DestinationTable}'");
                }

                return duplicate ? new ApplyResult(0, 0, 0, AlreadyApplied: true) : new ApplyResult(inserted, updated, deleted, ChildrenDeleted: carried.Deleted, ChildrenNulled: carried.Nulled);
            },
            cancellationToken);
    }

    /// <summary>Forgets the ledger's cached largest key and bulk-load rules of a batch that did not commit; false.</summary>
    private bool ForgetCaches(int scopeId, string table)
    {
        _ledger.Invalidate(scopeId);
        _ledger.ForgetRules(table);
        return false;
    }

    /// <summary>A unit's deletes with when each happened: its tombstone's commit time, else the batch's checkpoint time.</summary>
    private static List<(IReadOnlyList<object?> Key, Instant DeletedAt)> ParentDeletes(ApplyUnit unit)
    {
        var times = unit.LedgerUpdates.Where(e => e.Deleted).GroupBy(e => e.Key).ToDictionary(g => g.Key, g => g.Last().CommitTime ?? unit.Checkpoint.CreatedAt);
        return unit.Writes.Where(w => w.Kind == WriteKind.Delete).Select(w => (w.Key.Values, times.GetValueOrDefault(w.Key, unit.Checkpoint.CreatedAt))).ToList();
    }

    /// <summary>Records a batch's idempotency key (false when it is already there) and forgets keys of old versions.</summary>
    private async Task<bool> RecordAppliedAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Checkpoint checkpoint, string key, CancellationToken cancellationToken)
    {
        await using var record = new NpgsqlCommand(
            $"INSERT INTO {AppliedBatchesTable} (stream, idempotency_key, version) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            connection,
            transaction);
        record.Parameters.Add(new NpgsqlParameter<string> { TypedValue = checkpoint.Stream });
        record.Parameters.Add(new NpgsqlParameter<string> { TypedValue = key });
        record.Parameters.Add(new NpgsqlParameter<long> { TypedValue = checkpoint.Version });
        if (await record.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) == 0)
        {
            return false;
        }

        if (checkpoint.Version % 100 == 0)
        {
            await using var prune = new NpgsqlCommand($"DELETE FROM {AppliedBatchesTable} WHERE stream = $1 AND version < $2", connection, transaction);
            prune.Parameters.Add(new NpgsqlParameter<string> { TypedValue = checkpoint.Stream });
            prune.Parameters.Add(new NpgsqlParameter<long> { TypedValue = checkpoint.Version - IdempotencyVersionsKept });
            await prune.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        return true;
    }

    /// <summary>Writes the unit's checkpoint (or, for a part of a split batch, only checks its epoch); false when fenced off.</summary>
    private async Task<bool> CommitCheckpointAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Checkpoint committed, bool commits, CancellationToken cancellationToken)
    {
        if (!commits)
        {
            await using var newer = new NpgsqlCommand($"SELECT EXISTS (SELECT 1 FROM {CheckpointTable} WHERE stream = $1 AND epoch > $2)", connection, transaction);
            newer.Parameters.Add(new NpgsqlParameter<string> { TypedValue = committed.Stream });
            newer.Parameters.Add(new NpgsqlParameter<long> { TypedValue = committed.Epoch });
            return committed.Epoch == 0 || await newer.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is false;
        }

        await using var checkpoint = new NpgsqlCommand(
            $"INSERT INTO {CheckpointTable} AS c (stream, version, payload, epoch) VALUES ($1, $2, $3, $4) " +
            "ON CONFLICT (stream) DO UPDATE SET version = excluded.version, payload = excluded.payload, epoch = greatest(c.epoch, excluded.epoch) " +
            "WHERE excluded.epoch = 0 OR c.epoch <= excluded.epoch",
            connection,
            transaction);
        checkpoint.Parameters.Add(new NpgsqlParameter<string> { TypedValue = committed.Stream });
        checkpoint.Parameters.Add(new NpgsqlParameter<long> { TypedValue = committed.Version });
        checkpoint.Parameters.Add(new NpgsqlParameter<string> { TypedValue = CheckpointCodec.Serialize(committed) });
        checkpoint.Parameters.Add(new NpgsqlParameter<long> { TypedValue = committed.Epoch });
        return await checkpoint.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false) > 0;
    }

    public async Task<string?> ReadCommittedCheckpointAsync(string stream, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand($"SELECT payload FROM {CheckpointTable} WHERE stream = $1", connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = stream });
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string;
    }

    public async Task ResetStreamAsync(string stream, LedgerScope scope, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        var scopeId = await ScopeIdAsync(connection, scope, cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using (var ledger = new NpgsqlCommand($"DELETE FROM {PostgresSql.Qualified(Schema, "ledger")} WHERE scope_id = $1", connection, transaction))
        {
            ledger.Parameters.Add(new NpgsqlParameter<int> { TypedValue = scopeId });
            await ledger.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await using (var digests = new NpgsqlCommand($"UPDATE {PostgresSql.Qualified(Schema, "ledger_scopes")} SET source_digests = NULL, bulk_rows = NULL WHERE scope_id = $1", connection, transaction))
        {
            digests.Parameters.Add(new NpgsqlParameter<int> { TypedValue = scopeId });
            await digests.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        foreach (var table in new[] { CheckpointTable, AppliedBatchesTable })
        {
            await using var forget = new NpgsqlCommand($"DELETE FROM {table} WHERE stream = $1", connection, transaction);
            forget.Parameters.Add(new NpgsqlParameter<string> { TypedValue = stream });
            await forget.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        _ledger.Invalidate(scopeId);
        _ledger.ForgetRules(scope.DestinationTable);
    }

    public async ValueTask DisposeAsync()
    {
        if (_warmUp is not null)
        {
            await _warmUp.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var slot in _tables.Values)
        {
            await slot.Lock.WaitAsync().ConfigureAwait(false);
            if (slot.Connection is not null)
            {
                await slot.Connection.DisposeAsync().ConfigureAwait(false);
            }

            slot.Lock.Dispose();
        }

        _tables.Clear();
        _initialize.Dispose();
        await _data.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Empties the table and tombstones the scope's ledger (a TRUNCATE at the source); returns the rows removed.</summary>
    private async Task<long> TruncateAsync(NpgsqlConnection connection, PgTable table, string destinationTable, int scopeId, CancellationToken cancellationToken)
    {
        // A bulk load's entries are the table's rows until written out: they must outlive the rows as tombstones.
        await _ledger.MaterializeAsync(connection, destinationTable, keep: null, cancellationToken).ConfigureAwait(false);
        long removed;
        await using (var delete = new NpgsqlCommand($"DELETE FROM {table.QualifiedName}", connection))
        {
            removed = await delete.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await using var ledger = new NpgsqlCommand($"UPDATE {PostgresSql.Qualified(Schema, "ledger")} SET deleted = true, row_hash = 0, source_digest = NULL WHERE scope_id = $1 AND NOT deleted", connection);
        ledger.Parameters.Add(new NpgsqlParameter<int> { TypedValue = scopeId });
        await ledger.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        return removed;
    }

    /// <summary>A pooled connection with the ledger schema in place.</summary>
    internal async Task<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = await PostgresConnectionFactory.OpenAsync(_data, "destination", cancellationToken).ConfigureAwait(false);
        try
        {
            await EnsureSchemaAsync(connection, cancellationToken).ConfigureAwait(false);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Runs <paramref name="work"/> on the table's own connection, one caller at a time.</summary>
    internal async Task<T> WithTableAsync<T>(string table, Func<NpgsqlConnection, Task<T>> work, CancellationToken cancellationToken)
    {
        var slot = _tables.GetOrAdd(table, _ => new TableSlot());
        await slot.Lock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (slot.Connection is null || slot.Connection.FullState != System.Data.ConnectionState.Open)
            {
                if (slot.Connection is not null)
                {
                    await slot.Connection.DisposeAsync().ConfigureAwait(false);
                }

                slot.Connection = null;
                slot.Connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            }

            return await work(slot.Connection).ConfigureAwait(false);
        }
        catch (NpgsqlException e)
        {
            throw PostgresConnectionFactory.Classify(e, $"destination table '{table}'");
        }
        finally
        {
            slot.Lock.Release();
        }
    }

    /// <summary>The ledger scope's id, created on first use.</summary>
    internal async Task<int> ScopeIdAsync(NpgsqlConnection connection, LedgerScope scope, CancellationToken cancellationToken)
    {
        if (_scopes.TryGetValue(scope, out var id))
        {
            return id;
        }

        var scopes = PostgresSql.Qualified(Schema, "ledger_scopes");
        await using var command = new NpgsqlCommand(
            $"WITH inserted AS (INSERT INTO {scopes} (destination_table, source) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING scope_id) " +
            $"SELECT scope_id FROM inserted UNION ALL SELECT scope_id FROM {scopes} WHERE destination_table = $1 AND source = $2",
            connection);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = scope.DestinationTable });
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = scope.Source });
        // Two connections creating the same scope at once: the second one's INSERT waits for the first and then does
        // nothing, and its SELECT ran on a snapshot from before — it finds no row. A new statement sees it.
        for (var attempt = 0; ; attempt++)
        {
            if (await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is int found)
            {
                _scopes[scope] = found;
                return found;
            }

            if (attempt >= 3)
            {
                throw new SyncException(ErrorClass.Transient, $"could not create the ledger scope of '{scope.DestinationTable}' in the destination; try again");
            }
        }
    }

    private async Task EnsureSchemaAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        if (_initialized)
        {
            return;
        }

        await _initialize.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_initialized)
            {
                return;
            }

            await Run(
                async () =>
                {
                    await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                    // Two processes creating the schema at once would collide on the catalog: one at a time.
                    await using (var lockCommand = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtext('deltasync schema'))", connection, transaction))
                    {
                        await lockCommand.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    }

                    await using (var create = new NpgsqlCommand(
                        $"CREATE SCHEMA IF NOT EXISTS {PostgresSql.Quote(Schema)};" + PostgresLedger.CreateSql(Schema) + PostgresLedger.MigrateSql(Schema) +
                        $"CREATE TABLE IF NOT EXISTS {CheckpointTable} (stream text PRIMARY KEY, version bigint NOT NULL, payload text NOT NULL, epoch bigint NOT NULL DEFAULT 0);" +
                        $"ALTER TABLE {CheckpointTable} ADD COLUMN IF NOT EXISTS epoch bigint NOT NULL DEFAULT 0;" +
                        $"CREATE TABLE IF NOT EXISTS {AppliedBatchesTable} (stream text NOT NULL, idempotency_key text NOT NULL, version bigint NOT NULL, PRIMARY KEY (stream, idempotency_key));" +
                        RecordsCreateSql,
                        connection,
                        transaction))
                    {
                        await create.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    }

                    await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                    return 0;
                },
                $"cannot create the '{Schema}' schema in the destination database").ConfigureAwait(false);
            _initialized = true;
        }
        finally
        {
            _initialize.Release();
        }
    }

    private static async Task<T> Run<T>(Func<Task<T>> work, string context)
    {
        try
        {
            return await work().ConfigureAwait(false);
        }
        catch (NpgsqlException e)
        {
            throw PostgresConnectionFactory.Classify(e, context);
        }
    }

    private sealed class TableSlot
    {
        public SemaphoreSlim Lock { get; } = new(1, 1);

        public NpgsqlConnection? Connection { get; set; }

        public PostgresTableWriter? Writer { get; set; }
    }

    /// <summary>Rolls a failed batch's transaction back while its connection is still open; a broken connection is replaced by the caller.</summary>
    private static async Task RollbackIfOpenAsync(NpgsqlConnection connection, NpgsqlTransaction transaction)
    {
        if (connection.FullState != System.Data.ConnectionState.Open)
        {
            return;
        }

        try
        {
            await transaction.RollbackAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (NpgsqlException)
        {
            // The connection broke meanwhile: the caller replaces it.
        }
    }
}
