using System.Runtime.CompilerServices;
using DeltaSync.Core.Capture;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Sqlite.Raw;
using NodaTime;

namespace DeltaSync.Sqlite.Destination;

/// <summary>
/// The ledger in a SQLite destination: one compact WITHOUT ROWID table keyed by (scope, encoded key), written in the
/// same transaction as the rows it describes. Look-ups are batched; keys above the scope's largest ledger key are
/// known to be absent without a probe (an initial snapshot in key order never probes).
/// </summary>
internal sealed class SqliteLedger : ILedger
{
    internal const string Table = "_deltasync_ledger";
    internal const string Scopes = "_deltasync_scopes";
    private const int KeysPerLookup = 500;

    private readonly SqliteDestination _destination;
    private readonly Dictionary<long, byte[]?> _maxKey = [];
    private readonly Dictionary<int, RawStatement> _lookups = [];

    public SqliteLedger(SqliteDestination destination)
    {
        _destination = destination;
    }

    internal static string CreateSql => $"""
        CREATE TABLE IF NOT EXISTS {Scopes} (
          scope_id INTEGER PRIMARY KEY,
          destination_table TEXT NOT NULL,
          source TEXT NOT NULL,
          UNIQUE (destination_table, source));
        CREATE TABLE IF NOT EXISTS {Table} (
          scope_id INTEGER NOT NULL,
          key BLOB NOT NULL,
          position TEXT,
          commit_us INTEGER,
          row_hash INTEGER NOT NULL,
          deleted INTEGER NOT NULL,
          PRIMARY KEY (scope_id, key)) WITHOUT ROWID;
        """;

    public async ValueTask<IReadOnlyDictionary<RecordKey, LedgerEntry>> LookupAsync(LedgerScope scope, IReadOnlyCollection<RecordKey> keys, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keys);
        return await _destination.WithWriterAsync(
            db =>
            {
                var scopeId = _destination.ScopeId(scope);
                var max = MaxKey(db, scopeId);
                var wanted = max is null ? [] : keys.Where(k => k.Encoded.AsSpan().SequenceCompareTo(max) <= 0).Distinct().ToList();
                var found = new Dictionary<RecordKey, LedgerEntry>(wanted.Count);
                for (var start = 0; start < wanted.Count; start += KeysPerLookup)
                {
                    var chunk = wanted.GetRange(start, Math.Min(KeysPerLookup, wanted.Count - start));
                    var statement = LookupStatement(db, chunk.Count);
                    statement.Bind(1, scopeId);
                    for (var i = 0; i < chunk.Count; i++)
                    {
                        statement.Bind(i + 2, chunk[i].Encoded);
                    }

                    while (statement.Step())
                    {
                        var entry = Read(statement);
                        found[entry.Key] = entry;
                    }

                    statement.Reset();
                }

                return (IReadOnlyDictionary<RecordKey, LedgerEntry>)found;
            },
            cancellationToken).ConfigureAwait(false);
    }

    public async IAsyncEnumerable<LedgerEntry> ScanAsync(LedgerScope scope, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var scopeId = await _destination.WithWriterAsync(_ => _destination.ScopeId(scope), cancellationToken).ConfigureAwait(false);
        using var connection = _destination.OpenReader();
        using var statement = new RawStatement(connection.Handle!, $"SELECT key, position, commit_us, row_hash, deleted FROM {Table} WHERE scope_id = ?1 ORDER BY key");
        statement.Bind(1, scopeId);
        var count = 0;
        while (statement.Step())
        {
            if (++count % 4096 == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }

            yield return Read(statement);
        }
    }

    /// <summary>Records entries inside the caller's open transaction.</summary>
    internal void Write(SQLitePCL.sqlite3 db, long scopeId, IReadOnlyList<LedgerEntry> entries, RawStatement upsert)
    {
        byte[]? max = MaxKey(db, scopeId);
        foreach (var e in entries)
        {
            upsert.Bind(1, scopeId);
            upsert.Bind(2, e.Key.Encoded);
            // A cursor position per record repeats what commit_us already orders; only positions someone reads back
            // (per-row versions, change-log and trigger sequences) are kept.
            upsert.Bind(3, e.Position.IsNone || e.Position.Kind == CursorPosition.TimestampKind ? null : e.Position.ToString());
            upsert.Bind(4, e.CommitTime is { } t ? t.ToUnixTimeTicks() / 10 : null);
            upsert.Bind(5, e.RowHash);
            upsert.Bind(6, e.Deleted ? 1L : 0L);
            upsert.Execute();
            if (max is null || e.Key.Encoded.AsSpan().SequenceCompareTo(max) > 0)
            {
                max = e.Key.Encoded;
            }
        }

        _maxKey[scopeId] = max;
    }

    internal static string UpsertSql =>
        $"INSERT INTO {Table} (scope_id, key, position, commit_us, row_hash, deleted) VALUES (?1, ?2, ?3, ?4, ?5, ?6) " +
        "ON CONFLICT (scope_id, key) DO UPDATE SET position = excluded.position, commit_us = excluded.commit_us, row_hash = excluded.row_hash, deleted = excluded.deleted";

    /// <summary>A look-up statement for <paramref name="count"/> keys, prepared once per size (full chunks reuse one).</summary>
    private RawStatement LookupStatement(SQLitePCL.sqlite3 db, int count)
    {
        if (!_lookups.TryGetValue(count, out var statement))
        {
            var placeholders = string.Join(", ", Enumerable.Range(2, count).Select(i => $"?{i}"));
            statement = new RawStatement(db, $"SELECT key, position, commit_us, row_hash, deleted FROM {Table} WHERE scope_id = ?1 AND key IN ({placeholders})");
            if (_lookups.Count > 8)
            {
                foreach (var old in _lookups.Values)
                {
                    old.Dispose();
                }

                _lookups.Clear();
            }

            _lookups[count] = statement;
        }

        return statement;
    }

    /// <summary>Releases the prepared look-ups (before the writer connection closes).</summary>
    internal void DisposeStatements()
    {
        foreach (var statement in _lookups.Values)
        {
            statement.Dispose();
        }

        _lookups.Clear();
    }

    /// <summary>Forgets the cached largest key (after a rollback or reset the table is the truth again).</summary>
    internal void Invalidate(long scopeId) => _maxKey.Remove(scopeId);

    private byte[]? MaxKey(SQLitePCL.sqlite3 db, long scopeId)
    {
        if (_maxKey.TryGetValue(scopeId, out var max))
        {
            return max;
        }

        using var statement = new RawStatement(db, $"SELECT max(key) FROM {Table} WHERE scope_id = ?1");
        statement.Bind(1, scopeId);
        statement.Step();
        max = statement.IsNull(0) ? null : (byte[]?)statement.GetValue(0);
        _maxKey[scopeId] = max;
        return max;
    }

    private static LedgerEntry Read(RawStatement statement)
    {
        var key = RecordKey.FromEncoded((byte[])statement.GetValue(0)!);
        Instant? commit = statement.IsNull(2) ? null : Instant.FromUnixTimeTicks(statement.GetInt64(2) * 10);
        return new LedgerEntry(key, statement.IsNull(1) ? Position.None : Position.Parse(statement.GetText(1)), commit, statement.GetInt64(3), statement.GetInt64(4) != 0);
    }
}
