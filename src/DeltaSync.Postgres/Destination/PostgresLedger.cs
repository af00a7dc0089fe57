using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using DeltaSync.Core.Capture;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using Npgsql;
using NpgsqlTypes;
using NodaTime;

namespace DeltaSync.Postgres.Destination;

/// <summary>
/// The ledger in a PostgreSQL destination: <c>deltasync.ledger</c>, keyed by (scope, encoded key) and written in the
/// batch's transaction by binary COPY. Look-ups are one <c>= ANY($keys)</c> query per batch; keys above the scope's
/// largest ledger key are known to be absent without a query (an initial snapshot in key order never asks).
/// </summary>
/// <remarks>
/// <c>source_digest</c> true marks an entry whose <c>row_hash</c> is PostgreSQL's own digest of the row
/// (<see cref="PostgresRowMapper.DigestSql"/>) instead of the engine's <see cref="RowHash"/>: first written by a bulk
/// load (<see cref="PostgresDestination.TryBulkLoadAsync"/>), which builds the ledger in SQL where the engine's hash
/// cannot be computed. The captures compute the digest for the rows they read while the scope is flagged in
/// <c>ledger_scopes.source_digests</c>, and a write keeps the digest it was read with (<see cref="LedgerEntry.HashIsSourceDigest"/>).
/// <para>
/// A bulk load writes no entries at all: it records a rule (<c>ledger_scopes.bulk_rows</c>, <see cref="BulkLedgerRows"/>)
/// under which every row of the table without an entry of its own has the entry the load would have written. Look-ups
/// and scans of such a scope read those rows along with the entries; a record's first write stores its entry, which
/// then shadows the rule. Before anything empties the table without writing entries (a TRUNCATE), the rule is
/// written out as entries (<see cref="MaterializeAsync"/>).
/// </para>
/// </remarks>
internal sealed class PostgresLedger : ILedger
{
    private readonly PostgresDestination _destination;
    private readonly ConcurrentDictionary<int, byte[]?> _maxKey = new();
    private readonly ConcurrentDictionary<int, BulkLedgerRows?> _bulk = new();
    private readonly ConcurrentDictionary<string, int[]> _ruleScopes = new(StringComparer.Ordinal);

    public PostgresLedger(PostgresDestination destination)
    {
        _destination = destination;
    }

    public static string CreateSql(string schema) => $"""
        CREATE TABLE IF NOT EXISTS {PostgresSql.Qualified(schema, "ledger_scopes")} (
          scope_id serial PRIMARY KEY,
          destination_table text NOT NULL,
          source text NOT NULL,
          UNIQUE (destination_table, source));
        CREATE TABLE IF NOT EXISTS {PostgresSql.Qualified(schema, "ledger")} (
          scope_id integer NOT NULL,
          key bytea NOT NULL,
          position text,
          commit_us bigint,
          row_hash bigint NOT NULL,
          deleted boolean NOT NULL,
          PRIMARY KEY (scope_id, key)) WITH (fillfactor = {FillFactor});
        """;

    /// <summary>
    /// The ledger's heap pages are left a fifth empty: an entry rewritten for a record synced before then stays on its
    /// page (a HOT update, no new index entry). Measured on PostgreSQL 15 for 10,000 entries rewritten in a 100,000-entry
    /// ledger: 27–30 ms against 46–54 ms at the default 100.
    /// </summary>
    internal const int FillFactor = 80;

    /// <summary>
    /// A PL/pgSQL statement giving a table created before (without any fillfactor) <see cref="FillFactor"/>: pages
    /// written from then on keep room for rewritten entries. A fillfactor someone chose is left as it is.
    /// </summary>
    internal static string FillFactorMigration(string qualifiedTable) =>
        "IF NOT EXISTS (SELECT 1 FROM pg_class c, unnest(coalesce(c.reloptions, '{}'::text[])) AS o(option) " +
        $"WHERE c.oid = to_regclass('{Literal(qualifiedTable)}') AND o.option LIKE 'fillfactor=%') THEN " +
        $"ALTER TABLE {qualifiedTable} SET (fillfactor = {FillFactor}); END IF;";

    /// <summary>Adds the source-digest marks to ledgers created before them (no lock when already there).</summary>
    public static string MigrateSql(string schema) => $"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('{Literal(PostgresSql.Qualified(schema, "ledger"))}') AND attname = 'source_digest' AND NOT attisdropped) THEN
            ALTER TABLE {PostgresSql.Qualified(schema, "ledger")} ADD COLUMN source_digest boolean;
          END IF;
          {FillFactorMigration(PostgresSql.Qualified(schema, "ledger"))}
          IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('{Literal(PostgresSql.Qualified(schema, "ledger_scopes"))}') AND attname = 'source_digests' AND NOT attisdropped) THEN
            ALTER TABLE {PostgresSql.Qualified(schema, "ledger_scopes")} ADD COLUMN source_digests boolean;
          END IF;
          IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('{Literal(PostgresSql.Qualified(schema, "ledger_scopes"))}') AND attname = 'bulk_rows' AND NOT attisdropped) THEN
            ALTER TABLE {PostgresSql.Qualified(schema, "ledger_scopes")} ADD COLUMN bulk_rows text;
          END IF;
        END $$;
        """;

    private static string Literal(string text) => text.Replace("'", "''", StringComparison.Ordinal);

    private string Table => PostgresSql.Qualified(_destination.Schema, "ledger");

    private string Scopes => PostgresSql.Qualified(_destination.Schema, "ledger_scopes");

    public async ValueTask<IReadOnlyDictionary<RecordKey, LedgerEntry>> LookupAsync(LedgerScope scope, IReadOnlyCollection<RecordKey> keys, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keys);
        return await _destination.WithTableAsync(
            scope.DestinationTable,
            async connection =>
            {
                var scopeId = await _destination.ScopeIdAsync(connection, scope, cancellationToken).ConfigureAwait(false);
                var bulk = await BulkRowsAsync(connection, scopeId, cancellationToken).ConfigureAwait(false);
                var max = bulk is null ? await MaxKeyAsync(connection, scopeId, cancellationToken).ConfigureAwait(false) : null;
                // Keys above the largest entry have none, unless the table's rows stand for entries too.
                var wanted = bulk is not null ? keys.Select(k => k.Encoded).ToArray()
                    : max is null ? [] : keys.Where(k => k.Encoded.AsSpan().SequenceCompareTo(max) <= 0).Select(k => k.Encoded).ToArray();
                var found = new Dictionary<RecordKey, LedgerEntry>(wanted.Length);
                if (wanted.Length == 0)
                {
                    return (IReadOnlyDictionary<RecordKey, LedgerEntry>)found;
                }

                var sql = $"SELECT {Columns} FROM {Table} WHERE scope_id = $1 AND key = ANY ($2)";
                object[] filter = [];
                if (bulk is not null)
                {
                    (var where, filter) = bulk.KeyFilter(keys, 3);
                    sql += " UNION ALL " + bulk.EntriesSql(Table, where);
                }

                await using var command = new NpgsqlCommand(sql, connection);
                command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = scopeId });
                command.Parameters.Add(new NpgsqlParameter<byte[][]> { TypedValue = wanted, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
                foreach (var values in filter)
                {
                    command.Parameters.Add(new NpgsqlParameter { Value = values });
                }

                try
                {
                    await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        var entry = Read(reader);
                        found[entry.Key] = entry;
                    }
                }
                catch (PostgresException e) when (bulk is not null && IsMissingObject(e))
                {
                    throw RuleBroken(scope, bulk, e);
                }

                return found;
            },
            cancellationToken).ConfigureAwait(false);
    }

    public async IAsyncEnumerable<LedgerEntry> ScanAsync(LedgerScope scope, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var connection = await _destination.OpenAsync(cancellationToken).ConfigureAwait(false);
        var scopeId = await _destination.ScopeIdAsync(connection, scope, cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
        var bulk = await BulkRowsAsync(connection, scopeId, cancellationToken, fresh: true).ConfigureAwait(false);
        var sql = bulk is null
            ? $"SELECT {Columns} FROM {Table} WHERE scope_id = $1 ORDER BY key"
            : $"SELECT {Columns} FROM (SELECT {Columns} FROM {Table} WHERE scope_id = $1 UNION ALL {bulk.EntriesSql(Table)}) u ORDER BY key";
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = scopeId });
        NpgsqlDataReader reader;
        try
        {
            reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (bulk is not null && IsMissingObject(e))
        {
            throw RuleBroken(scope, bulk, e);
        }

        await using (reader)
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                yield return Read(reader);
            }
        }
    }

    /// <summary>
    /// Writes out, inside the caller's open transaction, the entries that the bulk-load rules of the scopes of
    /// <paramref name="destinationTable"/> (all of them, or all but <paramref name="keep"/>) give the table's rows, and
    /// drops those rules. Needed before anything changes the table's rows without writing those scopes' entries: a
    /// TRUNCATE, or another source's write of a shared table (a rule reads the row as it is now, an entry keeps what
    /// the load wrote).
    /// </summary>
    internal async Task MaterializeAsync(NpgsqlConnection connection, string destinationTable, int? keep, CancellationToken cancellationToken)
    {
        if (!_ruleScopes.TryGetValue(destinationTable, out var scopes))
        {
            scopes = [];
            await using var command = new NpgsqlCommand($"SELECT scope_id FROM {Scopes} WHERE destination_table = $1 AND bulk_rows IS NOT NULL", connection);
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = destinationTable });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                scopes = [.. scopes, reader.GetInt32(0)];
            }
        }

        if (scopes.All(s => s == keep))
        {
            _ruleScopes[destinationTable] = scopes;
            return;
        }

        var rules = new List<(int ScopeId, BulkLedgerRows Rows)>();
        await using (var command = new NpgsqlCommand(
            $"SELECT scope_id, bulk_rows FROM {Scopes} WHERE destination_table = $1 AND bulk_rows IS NOT NULL AND scope_id IS DISTINCT FROM $2 FOR UPDATE", connection))
        {
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = destinationTable });
            command.Parameters.Add(new NpgsqlParameter<int?> { TypedValue = keep });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                rules.Add((reader.GetInt32(0), BulkLedgerRows.Parse(reader.GetString(1))));
            }
        }

        foreach (var (scopeId, rows) in rules)
        {
            await using (var insert = new NpgsqlCommand(
                $"INSERT INTO {Table} (scope_id, key, position, commit_us, row_hash, deleted, source_digest) SELECT $1, r.* FROM ({rows.EntriesSql(Table)}) r",
                connection))
            {
                insert.Parameters.Add(new NpgsqlParameter<int> { TypedValue = scopeId });
                await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            await using (var clear = new NpgsqlCommand($"UPDATE {Scopes} SET bulk_rows = NULL WHERE scope_id = $1", connection))
            {
                clear.Parameters.Add(new NpgsqlParameter<int> { TypedValue = scopeId });
                await clear.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            Invalidate(scopeId);
        }

        // Read again on next use: the caller's transaction may still roll back.
        ForgetRules(destinationTable);
    }

    /// <summary>Forgets which scopes of a table hold bulk-load rules (after a load, a reset or a rollback).</summary>
    internal void ForgetRules(string destinationTable) => _ruleScopes.TryRemove(destinationTable, out _);

    public async ValueTask<bool> HasSourceDigestsAsync(LedgerScope scope, CancellationToken cancellationToken)
    {
        await using var connection = await _destination.OpenAsync(cancellationToken).ConfigureAwait(false);
        var scopeId = await _destination.ScopeIdAsync(connection, scope, cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand($"SELECT coalesce(source_digests, false) FROM {Scopes} WHERE scope_id = $1", connection);
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = scopeId });
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is true;
    }

    /// <summary>Records entries inside the caller's open transaction.</summary>
    internal async Task WriteAsync(NpgsqlConnection connection, int scopeId, IReadOnlyList<LedgerEntry> entries, CancellationToken cancellationToken)
    {
        if (entries.Count == 0)
        {
            return;
        }

        var max = await MaxKeyAsync(connection, scopeId, cancellationToken).ConfigureAwait(false);
        var newMax = max;
        var allAbove = true;
        foreach (var e in entries)
        {
            if (max is not null && e.Key.Encoded.AsSpan().SequenceCompareTo(max) <= 0)
            {
                allAbove = false;
            }

            if (newMax is null || e.Key.Encoded.AsSpan().SequenceCompareTo(newMax) > 0)
            {
                newMax = e.Key.Encoded;
            }
        }

        // Keys all above the largest one recorded cannot conflict: straight into the ledger. Otherwise through a staging
        // table and one INSERT … ON CONFLICT.
        var target = allAbove ? Table : "pg_temp.deltasync_ledger_stage";
        if (!allAbove)
        {
            await using var create = new NpgsqlCommand(
                $"CREATE TEMP TABLE IF NOT EXISTS deltasync_ledger_stage (LIKE {Table}) ON COMMIT DELETE ROWS",
                connection);
            await create.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await using (var importer = await connection.BeginBinaryImportAsync(
            $"COPY {target} (scope_id, key, position, commit_us, row_hash, deleted, source_digest) FROM STDIN (FORMAT BINARY)", cancellationToken).ConfigureAwait(false))
        {
            WriteRows(importer, scopeId, entries);
            await importer.CompleteAsync(cancellationToken).ConfigureAwait(false);
        }

        if (!allAbove)
        {
            await using var merge = new NpgsqlCommand(
                $"INSERT INTO {Table} (scope_id, key, position, commit_us, row_hash, deleted, source_digest) " +
                "SELECT scope_id, key, position, commit_us, row_hash, deleted, source_digest FROM pg_temp.deltasync_ledger_stage ON CONFLICT (scope_id, key) DO UPDATE SET " +
                "position = excluded.position, commit_us = excluded.commit_us, row_hash = excluded.row_hash, deleted = excluded.deleted, source_digest = excluded.source_digest",
                connection);
            await merge.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        _maxKey[scopeId] = newMax;
    }

    /// <remarks>Synchronous writes into the importer's buffer, flushed to the socket as it fills.</remarks>
    private static void WriteRows(NpgsqlBinaryImporter importer, int scopeId, IReadOnlyList<LedgerEntry> entries)
    {
        foreach (var e in entries)
        {
            importer.StartRow();
            importer.Write(scopeId, NpgsqlDbType.Integer);
            importer.Write(e.Key.Encoded, NpgsqlDbType.Bytea);
            // A cursor position per record repeats what commit_us already orders; only positions someone reads back
            // (per-row versions, change-log and trigger sequences) are kept.
            if (e.Position.IsNone || e.Position.Kind == CursorPosition.TimestampKind)
            {
                importer.WriteNull();
            }
            else
            {
                importer.Write(e.Position.ToString(), NpgsqlDbType.Text);
            }

            if (e.CommitTime is { } t)
            {
                importer.Write(t.ToUnixTimeTicks() / 10, NpgsqlDbType.Bigint);
            }
            else
            {
                importer.WriteNull();
            }

            importer.Write(e.RowHash, NpgsqlDbType.Bigint);
            importer.Write(e.Deleted, NpgsqlDbType.Boolean);
            if (e.HashIsSourceDigest && !e.Deleted)
            {
                importer.Write(true, NpgsqlDbType.Boolean);
            }
            else
            {
                importer.WriteNull();
            }
        }
    }

    /// <summary>Forgets the cached largest key (after a rollback or reset the table is the truth again).</summary>
    internal void Invalidate(int scopeId)
    {
        _maxKey.TryRemove(scopeId, out _);
        _bulk.TryRemove(scopeId, out _);
    }

    /// <summary>The scope's bulk-load rule, or null (cached; <paramref name="fresh"/> reads it again).</summary>
    private async Task<BulkLedgerRows?> BulkRowsAsync(NpgsqlConnection connection, int scopeId, CancellationToken cancellationToken, bool fresh = false)
    {
        if (!fresh && _bulk.TryGetValue(scopeId, out var rows))
        {
            return rows;
        }

        await using var command = new NpgsqlCommand($"SELECT bulk_rows FROM {Scopes} WHERE scope_id = $1", connection);
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = scopeId });
        rows = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is string json ? BulkLedgerRows.Parse(json) : null;
        if (!fresh)
        {
            // Only under the table's lock (look-ups): a scan runs beside batches that may drop the rule.
            _bulk[scopeId] = rows;
        }

        return rows;
    }

    private static bool IsMissingObject(PostgresException e) =>
        e.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.UndefinedColumn or PostgresErrorCodes.UndefinedFunction;

    private static SyncException RuleBroken(LedgerScope scope, BulkLedgerRows rows, PostgresException e) => new(
        ErrorClass.Fatal,
        $"the ledger of '{scope.DestinationTable}' (bulk-loaded) reads its entries from {rows.QualifiedTable}, which no longer has what the load wrote " +
        $"({e.MessageText}); restore the table or run 'deltasync state reset --table {scope.DestinationTable}' to load it again");

    private async Task<byte[]?> MaxKeyAsync(NpgsqlConnection connection, int scopeId, CancellationToken cancellationToken)
    {
        if (_maxKey.TryGetValue(scopeId, out var max))
        {
            return max;
        }

        await using var command = new NpgsqlCommand($"SELECT key FROM {Table} WHERE scope_id = $1 ORDER BY key DESC LIMIT 1", connection);
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = scopeId });
        var value = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        max = value as byte[];
        _maxKey[scopeId] = max;
        return max;
    }

    private const string Columns = "key, position, commit_us, row_hash, deleted, source_digest";

    private static LedgerEntry Read(NpgsqlDataReader reader)
    {
        var key = RecordKey.FromEncoded(reader.GetFieldValue<byte[]>(0));
        Instant? commit = reader.IsDBNull(2) ? null : Instant.FromUnixTimeTicks(reader.GetInt64(2) * 10);
        var position = reader.IsDBNull(1) ? Position.None : Position.Parse(reader.GetString(1));
        return new LedgerEntry(key, position, commit, reader.GetInt64(3), reader.GetBoolean(4))
        {
            HashIsSourceDigest = !reader.IsDBNull(5) && reader.GetBoolean(5),
        };
    }
}
