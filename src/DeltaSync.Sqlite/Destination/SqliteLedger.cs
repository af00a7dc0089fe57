using System.Runtime.CompilerServices;
using DeltaSync.Core.Capture;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Sqlite.Raw;
using NodaTime;

namespace DeltaSync.Sqlite.Destination;

/// <summary>
/// The ledger in a SQLite destination: compact WITHOUT ROWID tables keyed by (scope, encoded key), written in the same
/// transaction as the rows they describe. Look-ups are batched; keys above the scope's largest ledger key are known to
/// be absent without a probe (an initial snapshot in key order never probes).
/// <para>
/// Two tiers, so that an incremental batch does not rewrite pages all over a large ledger. A key above the scope's
/// largest key is appended to the main table (the tail pages only: snapshots and new rows). Any other key, an entry
/// for a record already synced, goes to the small <see cref="Recent"/> table, whose entry wins over the main table's.
/// 10,000 scattered updates of a 1M-entry ledger dirty about 6,000 of its pages when written in place (26 MB more
/// write-ahead log to write and checkpoint per batch, measured) and a few hundred in the recent table. Once the recent
/// table holds <see cref="DefaultFoldAt"/> entries of a scope, they are folded into the main table in key order, in one
/// transaction of their own. No key of the recent table is above the main table's largest key of its scope, so that
/// key is the scope's largest.
/// </para>
/// </summary>
internal sealed class SqliteLedger : ILedger
{
    internal const string Table = "_deltasync_ledger";
    internal const string Recent = "_deltasync_ledger_recent";
    internal const string Scopes = "_deltasync_scopes";

    /// <summary>How many entries of a scope the recent table holds before they are folded into the main table.</summary>
    internal const int DefaultFoldAt = 65_536;

    private const int KeysPerLookup = 500;
    private const string Columns = "key, position, commit_us, row_hash, deleted, merge_state";

    private readonly SqliteDestination _destination;
    private readonly Dictionary<long, byte[]?> _maxKey = [];

    /// <summary>Per scope, an upper bound of its entries in the recent table (an entry rewritten counts again).</summary>
    private readonly Dictionary<long, long> _recentCount = [];
    private readonly Dictionary<(string Table, int Count), RawStatement> _lookups = [];

    /// <summary>The writer connection's <c>PRAGMA data_version</c> when the caches were last known good.</summary>
    private long _dataVersion = -1;

    /// <summary>The fold threshold: <see cref="DefaultFoldAt"/>; tests lower it.</summary>
    internal int FoldAt { get; set; } = DefaultFoldAt;

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
        {EntriesTableSql(Table)}
        {EntriesTableSql(Recent)}
        """;

    /// <summary>A table of ledger entries: both tiers have this shape.</summary>
    private static string EntriesTableSql(string name) => $"""
        CREATE TABLE IF NOT EXISTS {name} (
          scope_id INTEGER NOT NULL,
          key BLOB NOT NULL,
          position TEXT,
          commit_us INTEGER,
          row_hash INTEGER NOT NULL,
          deleted INTEGER NOT NULL,
          merge_state BLOB,
          PRIMARY KEY (scope_id, key)) WITHOUT ROWID;
        """;

    /// <summary>Adds the columns later versions brought to ledger tables created before them.</summary>
    internal static void Migrate(Microsoft.Data.Sqlite.SqliteConnection connection)
    {
        foreach (var table in new[] { Table, Recent })
        {
            if (!SqliteCatalog.Columns(connection, table)!.Any(c => c.Name == "merge_state"))
            {
                // Ledgers written before the conflict path's fast merge: no entry has a merge state yet.
                SqliteConnectionFactory.Execute(connection, $"ALTER TABLE {table} ADD COLUMN merge_state BLOB");
            }
        }
    }

    /// <summary>Entries keep the conflict path's <see cref="LedgerEntry.MergeState"/>.</summary>
    public bool KeepsMergeState => true;

    public async ValueTask<IReadOnlyDictionary<RecordKey, LedgerEntry>> LookupAsync(LedgerScope scope, IReadOnlyCollection<RecordKey> keys, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keys);
        return await _destination.WithWriterAsync(
            db =>
            {
                var scopeId = _destination.ScopeId(scope);
                Refresh(db);
                var max = MaxKey(db, scopeId);
                var wanted = max is null ? [] : keys.Where(k => k.Encoded.AsSpan().SequenceCompareTo(max) <= 0).Distinct().ToList();
                var found = new Dictionary<RecordKey, LedgerEntry>(wanted.Count);
                if (RecentCount(db, scopeId) > 0)
                {
                    // The recent tier first: its entries win, and a lookback re-reads mostly records changed lately,
                    // which the main table then need not be probed for.
                    Lookup(db, Recent, scopeId, wanted, found);
                    wanted = found.Count == 0 ? wanted : wanted.Where(k => !found.ContainsKey(k)).ToList();
                }

                Lookup(db, Table, scopeId, wanted, found);
                return (IReadOnlyDictionary<RecordKey, LedgerEntry>)found;
            },
            cancellationToken).ConfigureAwait(false);
    }

    public async IAsyncEnumerable<LedgerEntry> ScanAsync(LedgerScope scope, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var scopeId = await _destination.WithWriterAsync(_ => _destination.ScopeId(scope), cancellationToken).ConfigureAwait(false);
        using var connection = _destination.OpenReader();
        var db = connection.Handle!;
        // Both tiers from one snapshot, merged in key order; on a key in both, the recent entry wins.
        Exec(db, "BEGIN");
        using var main = new RawStatement(db, $"SELECT {Columns} FROM {Table} WHERE scope_id = ?1 ORDER BY key");
        using var recent = new RawStatement(db, $"SELECT {Columns} FROM {Recent} WHERE scope_id = ?1 ORDER BY key");
        main.Bind(1, scopeId);
        recent.Bind(1, scopeId);
        var mainKey = main.Step() ? KeyOf(main) : null;
        var recentKey = recent.Step() ? KeyOf(recent) : null;
        var count = 0;
        while (mainKey is not null || recentKey is not null)
        {
            if (++count % 4096 == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }

            var order = mainKey is null ? 1 : recentKey is null ? -1 : mainKey.AsSpan().SequenceCompareTo(recentKey);
            if (order < 0)
            {
                yield return Read(main, mainKey!);
                mainKey = main.Step() ? KeyOf(main) : null;
                continue;
            }

            yield return Read(recent, recentKey!);
            recentKey = recent.Step() ? KeyOf(recent) : null;
            if (order == 0)
            {
                mainKey = main.Step() ? KeyOf(main) : null;
            }
        }

        Exec(db, "COMMIT");
    }

    /// <summary>
    /// Records entries inside the caller's open transaction: keys above the scope's largest key are appended to the
    /// main table (<paramref name="append"/>), the others written to the recent table (<paramref name="rewrite"/>).
    /// </summary>
    internal void Write(SQLitePCL.sqlite3 db, long scopeId, IReadOnlyList<LedgerEntry> entries, RawStatement append, RawStatement rewrite)
    {
        Refresh(db);
        byte[]? max = MaxKey(db, scopeId);
        var recent = RecentCount(db, scopeId);
        foreach (var e in entries)
        {
            var appends = max is null || e.Key.Encoded.AsSpan().SequenceCompareTo(max) > 0;
            var upsert = appends ? append : rewrite;
            upsert.Bind(1, scopeId);
            upsert.Bind(2, e.Key.Encoded);
            // A cursor position per record repeats what commit_us already orders; only positions someone reads back
            // (per-row versions, change-log and trigger sequences) are kept.
            upsert.Bind(3, e.Position.IsNone || e.Position.Kind == CursorPosition.TimestampKind ? null : e.Position.ToString());
            upsert.Bind(4, e.CommitTime is { } t ? t.ToUnixTimeTicks() / 10 : null);
            upsert.Bind(5, e.RowHash);
            upsert.Bind(6, e.Deleted ? 1L : 0L);
            upsert.Bind(7, e.MergeState);
            upsert.Execute();
            if (appends)
            {
                max = e.Key.Encoded;
            }
            else
            {
                recent++;
            }
        }

        _maxKey[scopeId] = max;
        _recentCount[scopeId] = recent;
    }

    /// <summary>
    /// <paramref name="entries"/> with the merge state each key's current entry holds (for entries written outside the
    /// conflict path, a cascade's tombstones: a source's fast-merged versions stay with its entry until folded).
    /// </summary>
    internal IReadOnlyList<LedgerEntry> KeepingMergeStates(SQLitePCL.sqlite3 db, long scopeId, IReadOnlyList<LedgerEntry> entries)
    {
        Refresh(db);
        var found = new Dictionary<RecordKey, LedgerEntry>();
        var keys = entries.Select(e => e.Key).Distinct().ToList();
        Lookup(db, Table, scopeId, keys, found);
        if (RecentCount(db, scopeId) > 0)
        {
            // The recent tier wins over the main table.
            Lookup(db, Recent, scopeId, keys, found);
        }

        return [.. entries.Select(e => e.MergeState is null && found.TryGetValue(e.Key, out var current) && current.MergeState is { } state ? e with { MergeState = state } : e)];
    }

    /// <summary>
    /// The upsert of one entry into <paramref name="table"/> (<see cref="Table"/> or <see cref="Recent"/>). An entry
    /// written without a merge state keeps the one its row in that tier had: fast-merged versions are still to be
    /// folded, and a state of an older epoch vouches for nothing. (Writers outside the conflict path carry the state
    /// themselves: <see cref="Core.Pipeline.ChangeResolver"/> copies it, a cascade reads it from both tiers with
    /// <see cref="KeepingMergeStates"/>.)
    /// </summary>
    internal static string UpsertSql(string table) =>
        $"INSERT INTO {table} (scope_id, key, position, commit_us, row_hash, deleted, merge_state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) " +
        "ON CONFLICT (scope_id, key) DO UPDATE SET position = excluded.position, commit_us = excluded.commit_us, row_hash = excluded.row_hash, deleted = excluded.deleted, merge_state = coalesce(excluded.merge_state, merge_state)";

    /// <summary>True when the scope's recent entries are due to be folded into the main table (<see cref="FoldAt"/>).</summary>
    internal bool FoldDue(long scopeId) => _recentCount.GetValueOrDefault(scopeId) >= FoldAt;

    /// <summary>
    /// Moves the scope's recent entries into the main table, in key order, in one transaction of its own (the caller
    /// holds the writer and no transaction is open).
    /// </summary>
    internal void Fold(SQLitePCL.sqlite3 db, long scopeId)
    {
        Exec(db, "BEGIN IMMEDIATE");
        try
        {
            using (var fold = new RawStatement(
                db,
                $"INSERT INTO {Table} (scope_id, {Columns}) SELECT scope_id, {Columns} FROM {Recent} WHERE scope_id = ?1 ORDER BY key " +
                "ON CONFLICT (scope_id, key) DO UPDATE SET position = excluded.position, commit_us = excluded.commit_us, row_hash = excluded.row_hash, deleted = excluded.deleted, merge_state = coalesce(excluded.merge_state, merge_state)"))
            {
                fold.Bind(1, scopeId);
                fold.Execute();
            }

            using (var clear = new RawStatement(db, $"DELETE FROM {Recent} WHERE scope_id = ?1"))
            {
                clear.Bind(1, scopeId);
                clear.Execute();
            }

            Exec(db, "COMMIT");
            _recentCount[scopeId] = 0;
        }
        catch
        {
            if (SQLitePCL.raw.sqlite3_get_autocommit(db) == 0)
            {
                Exec(db, "ROLLBACK");
            }

            _recentCount.Remove(scopeId);
            throw;
        }
    }

    /// <summary>Adds the entries of <paramref name="keys"/> found in <paramref name="table"/> to <paramref name="found"/>, in chunks.</summary>
    private void Lookup(SQLitePCL.sqlite3 db, string table, long scopeId, List<RecordKey> keys, Dictionary<RecordKey, LedgerEntry> found)
    {
        for (var start = 0; start < keys.Count; start += KeysPerLookup)
        {
            var count = Math.Min(KeysPerLookup, keys.Count - start);
            var size = SqliteSql.InListSize(count, KeysPerLookup);
            var statement = LookupStatement(db, table, size);
            statement.Bind(1, scopeId);
            for (var i = 0; i < size; i++)
            {
                statement.Bind(i + 2, i < count ? keys[start + i].Encoded : null);
            }

            while (statement.Step())
            {
                var key = KeyOf(statement);
                found[RecordKey.FromEncoded(key)] = Read(statement, key);
            }

            statement.Reset();
        }
    }

    /// <summary>A look-up statement for <paramref name="count"/> keys, prepared once per table and size (<see cref="SqliteSql.InListSize"/>).</summary>
    private RawStatement LookupStatement(SQLitePCL.sqlite3 db, string table, int count)
    {
        if (!_lookups.TryGetValue((table, count), out var statement))
        {
            var placeholders = string.Join(", ", Enumerable.Range(2, count).Select(i => $"?{i}"));
            statement = new RawStatement(db, $"SELECT {Columns} FROM {table} WHERE scope_id = ?1 AND key IN ({placeholders})");
            if (_lookups.Count > 32)
            {
                foreach (var old in _lookups.Values)
                {
                    old.Dispose();
                }

                _lookups.Clear();
            }

            _lookups[(table, count)] = statement;
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

    /// <summary>Forgets the cached largest key and recent count (after a rollback or reset the tables are the truth again).</summary>
    internal void Invalidate(long scopeId)
    {
        _maxKey.Remove(scopeId);
        _recentCount.Remove(scopeId);
    }

    /// <summary>Forgets every scope's cached largest key and recent count.</summary>
    internal void InvalidateAll()
    {
        _maxKey.Clear();
        _recentCount.Clear();
    }

    /// <summary>
    /// Drops the caches when another connection (another process: a second worker, <c>conflicts resolve</c>) has
    /// committed to the database since the last call; SQLite's <c>data_version</c> changes only for those commits.
    /// Call with the writer held.
    /// </summary>
    private void Refresh(SQLitePCL.sqlite3 db)
    {
        using var statement = new RawStatement(db, "PRAGMA data_version");
        statement.Step();
        var version = statement.GetInt64(0);
        if (version != _dataVersion)
        {
            InvalidateAll();
            _dataVersion = version;
        }
    }

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

    private long RecentCount(SQLitePCL.sqlite3 db, long scopeId)
    {
        if (_recentCount.TryGetValue(scopeId, out var count))
        {
            return count;
        }

        using var statement = new RawStatement(db, $"SELECT count(*) FROM {Recent} WHERE scope_id = ?1");
        statement.Bind(1, scopeId);
        statement.Step();
        count = statement.GetInt64(0);
        _recentCount[scopeId] = count;
        return count;
    }

    private static byte[] KeyOf(RawStatement statement) => (byte[])statement.GetValue(0)!;

    private static LedgerEntry Read(RawStatement statement, byte[] key)
    {
        Instant? commit = statement.IsNull(2) ? null : Instant.FromUnixTimeTicks(statement.GetInt64(2) * 10);
        return new LedgerEntry(RecordKey.FromEncoded(key), statement.IsNull(1) ? Position.None : Position.Parse(statement.GetText(1)), commit, statement.GetInt64(3), statement.GetInt64(4) != 0)
        {
            MergeState = statement.IsNull(5) ? null : (byte[]?)statement.GetValue(5),
        };
    }

    private static void Exec(SQLitePCL.sqlite3 db, string sql)
    {
        using var statement = new RawStatement(db, sql);
        statement.Execute();
    }
}
