using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using DeltaSync.Core.Capture;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
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
/// A NULL <c>row_hash</c> is an entry written by a bulk load (<see cref="PostgresDestination.TryBulkLoadAsync"/>), which
/// builds the ledger in SQL and cannot compute the engine's <see cref="RowHash"/> there. Such a row is, by
/// construction, exactly what the source held: the destination's own row is the applied row. The first look-up of the
/// key reads that row back with the captures' value mapping (the column types are the source's), hashes it as a
/// capture would, and stores the hash, so an unchanged row re-read later (a cursor's lookback, a polling pass) is
/// recognised as applied; a scan reports the entry with hash 0, which makes the diff hand the row to the look-up.
/// </remarks>
internal sealed class PostgresLedger : ILedger
{
    private readonly PostgresDestination _destination;
    private readonly ConcurrentDictionary<int, byte[]?> _maxKey = new();

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
          PRIMARY KEY (scope_id, key));
        """;

    /// <summary>Lets bulk loads leave <c>row_hash</c> NULL (ledgers created before had it NOT NULL); no lock when already done.</summary>
    public static string MigrateSql(string schema)
    {
        var table = PostgresSql.Qualified(schema, "ledger").Replace("'", "''", StringComparison.Ordinal);
        return $"""
            DO $$ BEGIN
              IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('{table}') AND attname = 'row_hash' AND attnotnull) THEN
                ALTER TABLE {PostgresSql.Qualified(schema, "ledger")} ALTER COLUMN row_hash DROP NOT NULL;
              END IF;
            END $$;
            """;
    }

    private string Table => PostgresSql.Qualified(_destination.Schema, "ledger");

    public async ValueTask<IReadOnlyDictionary<RecordKey, LedgerEntry>> LookupAsync(LedgerScope scope, IReadOnlyCollection<RecordKey> keys, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keys);
        return await _destination.WithTableAsync(
            scope.DestinationTable,
            async connection =>
            {
                var scopeId = await _destination.ScopeIdAsync(connection, scope, cancellationToken).ConfigureAwait(false);
                var max = await MaxKeyAsync(connection, scopeId, cancellationToken).ConfigureAwait(false);
                var wanted = max is null ? [] : keys.Where(k => k.Encoded.AsSpan().SequenceCompareTo(max) <= 0).Select(k => k.Encoded).ToArray();
                var found = new Dictionary<RecordKey, LedgerEntry>(wanted.Length);
                if (wanted.Length == 0)
                {
                    return (IReadOnlyDictionary<RecordKey, LedgerEntry>)found;
                }

                List<LedgerEntry>? unhashed = null;
                await using (var command = new NpgsqlCommand($"SELECT key, position, commit_us, row_hash, deleted FROM {Table} WHERE scope_id = $1 AND key = ANY ($2)", connection))
                {
                    command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = scopeId });
                    command.Parameters.Add(new NpgsqlParameter<byte[][]> { TypedValue = wanted, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
                    await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    {
                        var entry = Read(reader, out var hashed);
                        found[entry.Key] = entry;
                        if (!hashed)
                        {
                            (unhashed ??= []).Add(entry);
                        }
                    }
                }

                if (unhashed is not null)
                {
                    await HashFromRowsAsync(connection, scope.DestinationTable, scopeId, unhashed, found, cancellationToken).ConfigureAwait(false);
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
        await using var command = new NpgsqlCommand($"SELECT key, position, commit_us, row_hash, deleted FROM {Table} WHERE scope_id = $1 ORDER BY key", connection, transaction);
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = scopeId });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return Read(reader, out _);
        }
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
            $"COPY {target} (scope_id, key, position, commit_us, row_hash, deleted) FROM STDIN (FORMAT BINARY)", cancellationToken).ConfigureAwait(false))
        {
            WriteRows(importer, scopeId, entries);
            await importer.CompleteAsync(cancellationToken).ConfigureAwait(false);
        }

        if (!allAbove)
        {
            await using var merge = new NpgsqlCommand(
                $"INSERT INTO {Table} SELECT * FROM pg_temp.deltasync_ledger_stage ON CONFLICT (scope_id, key) DO UPDATE SET " +
                "position = excluded.position, commit_us = excluded.commit_us, row_hash = excluded.row_hash, deleted = excluded.deleted",
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
        }
    }

    /// <summary>Forgets the cached largest key (after a rollback or reset the table is the truth again).</summary>
    internal void Invalidate(int scopeId) => _maxKey.TryRemove(scopeId, out _);

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

    /// <param name="hashed">False for a bulk-loaded entry whose hash is not computed yet (returned with hash 0).</param>
    private static LedgerEntry Read(NpgsqlDataReader reader, out bool hashed)
    {
        var key = RecordKey.FromEncoded(reader.GetFieldValue<byte[]>(0));
        Instant? commit = reader.IsDBNull(2) ? null : Instant.FromUnixTimeTicks(reader.GetInt64(2) * 10);
        var position = reader.IsDBNull(1) ? Position.None : Position.Parse(reader.GetString(1));
        hashed = !reader.IsDBNull(3);
        return new LedgerEntry(key, position, commit, hashed ? reader.GetInt64(3) : 0, reader.GetBoolean(4));
    }

    /// <summary>
    /// Completes bulk-loaded entries: reads their rows back from the destination table, hashes them as a capture hashes
    /// the source's rows and stores the hashes. An entry whose row is gone (deleted out-of-band) or whose table this
    /// destination has not prepared in this run keeps hash 0: the next change of the key is written, idempotently.
    /// </summary>
    private async Task HashFromRowsAsync(NpgsqlConnection connection, string destinationTable, int scopeId, List<LedgerEntry> entries, Dictionary<RecordKey, LedgerEntry> found, CancellationToken cancellationToken)
    {
        if (_destination.PreparedWriter(destinationTable) is not { } writer)
        {
            return;
        }

        var rows = await PostgresDestination.ReadRowsAsync(connection, writer.Target, writer.Schema, entries.Select(e => e.Key).ToList(), cancellationToken).ConfigureAwait(false);
        var keys = new List<byte[]>(rows.Count);
        var hashes = new List<long>(rows.Count);
        foreach (var entry in entries)
        {
            if (rows.TryGetValue(entry.Key, out var values))
            {
                var hash = RowHash.Compute(values);
                found[entry.Key] = entry with { RowHash = hash };
                keys.Add(entry.Key.Encoded);
                hashes.Add(hash);
            }
        }

        if (keys.Count == 0)
        {
            return;
        }

        // Outside the batch's transaction, and only where the hash is still unknown: it describes the row as it stands,
        // whatever the batch then writes (which stores its own hash).
        await using var update = new NpgsqlCommand(
            $"UPDATE {Table} l SET row_hash = u.h FROM unnest($2::bytea[], $3::bigint[]) AS u(k, h) WHERE l.scope_id = $1 AND l.key = u.k AND l.row_hash IS NULL",
            connection);
        update.Parameters.Add(new NpgsqlParameter<int> { TypedValue = scopeId });
        update.Parameters.Add(new NpgsqlParameter<byte[][]> { TypedValue = [.. keys], NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
        update.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = [.. hashes], NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
        await update.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
