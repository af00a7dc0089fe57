using System.Globalization;
using System.Runtime.CompilerServices;
using DeltaSync.Core.Capture;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using DeltaSync.Core.Time;
using DeltaSync.Sqlite.Raw;
using DeltaSync.Sqlite.Source;
using Microsoft.Data.Sqlite;
using NodaTime;

namespace DeltaSync.Sqlite.Capture;

/// <summary>
/// Trigger CDC: the engine installs AFTER INSERT/UPDATE/DELETE triggers that append the changed key to a change table.
/// The initial snapshot and the change table's high mark are read in one read transaction, so every change is either
/// in the snapshot or after the mark: no gap, no double. Hard deletes are captured; changes are pruned once checkpointed.
/// </summary>
internal sealed class SqliteTriggerCapture : IChangeCapture
{
    public const string Kind = "trigger";
    private const int MaxKeyColumns = 4;
    private const int KeysPerLookup = 200;

    private readonly SqliteConnection _connection;
    private readonly CaptureRequest _request;
    private readonly SqliteRowMapper _mapper;
    private readonly IClock _clock;
    private long _lastCheckpointed = -1;

    public SqliteTriggerCapture(SqliteConnection connection, CaptureRequest request, IClock clock)
    {
        _connection = connection;
        _request = request;
        _mapper = new SqliteRowMapper(request.Schema, request.Plan.SourceName);
        _clock = clock;
        if (request.Schema.PrimaryKey.Count > MaxKeyColumns)
        {
            throw new Core.Pipeline.SyncException(ErrorClass.Fatal, $"table '{request.Plan.Table}': trigger CDC supports keys of up to {MaxKeyColumns} columns");
        }
    }

    private string ChangeTable => SqliteSql.Quote(_request.Plan.TriggerChangeTable);

    public async IAsyncEnumerable<ChangeBatch> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.Yield();
        var resume = _request.Resume;
        long after;
        if (resume.IsNone || resume.Kind == SnapshotPosition.Kind)
        {
            Install(_connection, _request.Plan, _request.Schema);
            RecordKey? lastKey = null;
            long mark;
            Exec("BEGIN");
            try
            {
                if (SnapshotPosition.TryParse(resume, out lastKey, out var then) && then.Kind == Kind)
                {
                    mark = long.Parse(then.Value, CultureInfo.InvariantCulture);
                }
                else
                {
                    lastKey = null;
                    mark = HighMark();
                }

                await foreach (var batch in SnapshotAsync(lastKey, mark, cancellationToken).ConfigureAwait(false))
                {
                    yield return batch;
                }
            }
            finally
            {
                Exec("COMMIT");
            }

            after = mark;
        }
        else if (resume.Kind != Kind || !long.TryParse(resume.Value, CultureInfo.InvariantCulture, out after))
        {
            throw new Core.Pipeline.SyncException(ErrorClass.Fatal, $"table '{_request.Plan.Table}': checkpoint position '{resume}' is not a trigger position");
        }

        foreach (var batch in Changes(after, cancellationToken))
        {
            yield return batch;
        }
    }

    /// <summary>
    /// Records how far this consumer has read, then prunes the change rows every consumer of the table has read: another
    /// sync reading the same table keeps the changes it has not seen yet.
    /// </summary>
    public ValueTask OnCheckpointedAsync(Position position, CancellationToken cancellationToken)
    {
        if (position.Kind != Kind || !long.TryParse(position.Value, CultureInfo.InvariantCulture, out var seq) || seq <= _lastCheckpointed)
        {
            return ValueTask.CompletedTask;
        }

        SqliteConnectionFactory.Execute(_connection, $"CREATE TABLE IF NOT EXISTS {Consumers(_request.Plan)} (consumer TEXT PRIMARY KEY, table_name TEXT NOT NULL, seq INTEGER NOT NULL)");
        using (var progress = _connection.CreateCommand())
        {
            progress.CommandText = $"INSERT INTO {Consumers(_request.Plan)} (consumer, table_name, seq) VALUES ($consumer, $table, $seq) " +
                "ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq, table_name = excluded.table_name";
            progress.Parameters.AddWithValue("$consumer", _request.Plan.Consumer);
            progress.Parameters.AddWithValue("$table", _request.Schema.Name);
            progress.Parameters.AddWithValue("$seq", seq);
            progress.ExecuteNonQuery();
        }

        if (_request.Plan.PruneChanges)
        {
            using var command = _connection.CreateCommand();
            command.CommandText = $"DELETE FROM {ChangeTable} WHERE table_name = $table AND seq <= (SELECT min(seq) FROM {Consumers(_request.Plan)} WHERE table_name = $table)";
            command.Parameters.AddWithValue("$table", _request.Schema.Name);
            command.ExecuteNonQuery();
        }

        _lastCheckpointed = seq;
        return ValueTask.CompletedTask;
    }

    private static string Consumers(TablePlan plan) => SqliteSql.Quote(plan.TriggerChangeTable + "_consumers");

    public ValueTask DisposeAsync()
    {
        _connection.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>Creates the change table and the table's triggers when missing (idempotent).</summary>
    internal static void Install(SqliteConnection connection, TablePlan plan, TableSchema schema)
    {
        var changes = SqliteSql.Quote(plan.TriggerChangeTable);
        var table = SqliteSql.Quote(schema.Name);
        var name = SqliteSql.Literal(schema.Name);
        var keyColumns = string.Join(", ", schema.PrimaryKey.Select((_, i) => $"k{i + 1}"));
        string Values(string row) => string.Join(", ", schema.PrimaryKey.Select(k => $"{row}.{SqliteSql.Quote(k)}"));
        var keyChanged = string.Join(" OR ", schema.PrimaryKey.Select(k => $"OLD.{SqliteSql.Quote(k)} IS NOT NEW.{SqliteSql.Quote(k)}"));
        string Trigger(string suffix) => SqliteSql.Quote($"_deltasync_{schema.Name}_{suffix}");
        var sql = $"""
            BEGIN IMMEDIATE;
            CREATE TABLE IF NOT EXISTS {changes} (
              seq INTEGER PRIMARY KEY AUTOINCREMENT,
              table_name TEXT NOT NULL,
              op TEXT NOT NULL,
              k1, k2, k3, k4,
              changed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));
            CREATE INDEX IF NOT EXISTS {SqliteSql.Quote(plan.TriggerChangeTable + "_by_table")} ON {changes} (table_name, seq);
            CREATE TABLE IF NOT EXISTS {Consumers(plan)} (consumer TEXT PRIMARY KEY, table_name TEXT NOT NULL, seq INTEGER NOT NULL);
            INSERT INTO {Consumers(plan)} (consumer, table_name, seq)
              VALUES ({SqliteSql.Literal(plan.Consumer)}, {name}, (SELECT coalesce(max(seq), 0) FROM {changes}))
              ON CONFLICT (consumer) DO NOTHING;
            CREATE TRIGGER IF NOT EXISTS {Trigger("ai")} AFTER INSERT ON {table} BEGIN
              INSERT INTO {changes} (table_name, op, {keyColumns}) VALUES ({name}, 'I', {Values("NEW")});
            END;
            CREATE TRIGGER IF NOT EXISTS {Trigger("au")} AFTER UPDATE ON {table} BEGIN
              INSERT INTO {changes} (table_name, op, {keyColumns}) SELECT {name}, 'D', {Values("OLD")} WHERE {keyChanged};
              INSERT INTO {changes} (table_name, op, {keyColumns}) VALUES ({name}, 'U', {Values("NEW")});
            END;
            CREATE TRIGGER IF NOT EXISTS {Trigger("ad")} AFTER DELETE ON {table} BEGIN
              INSERT INTO {changes} (table_name, op, {keyColumns}) VALUES ({name}, 'D', {Values("OLD")});
            END;
            COMMIT;
            """;
        SqliteConnectionFactory.Execute(connection, sql);
    }

    /// <summary>
    /// Forgets this consumer. When no other consumer reads the table, its triggers and pending change rows go too.
    /// </summary>
    internal static void Uninstall(SqliteConnection connection, TablePlan plan)
    {
        if (!SqliteCatalog.TableExists(connection, plan.TriggerChangeTable))
        {
            return;
        }

        if (SqliteCatalog.TableExists(connection, plan.TriggerChangeTable + "_consumers"))
        {
            using var forget = connection.CreateCommand();
            forget.CommandText = $"DELETE FROM {Consumers(plan)} WHERE consumer = $consumer";
            forget.Parameters.AddWithValue("$consumer", plan.Consumer);
            forget.ExecuteNonQuery();
            using var others = connection.CreateCommand();
            others.CommandText = $"SELECT count(*) FROM {Consumers(plan)} WHERE table_name = $table COLLATE NOCASE";
            others.Parameters.AddWithValue("$table", plan.Table);
            if ((long)others.ExecuteScalar()! > 0)
            {
                return;
            }
        }

        foreach (var suffix in new[] { "ai", "au", "ad" })
        {
            SqliteConnectionFactory.Execute(connection, $"DROP TRIGGER IF EXISTS {SqliteSql.Quote($"_deltasync_{plan.Table}_{suffix}")}");
        }

        using var command = connection.CreateCommand();
        command.CommandText = $"DELETE FROM {SqliteSql.Quote(plan.TriggerChangeTable)} WHERE table_name = $table COLLATE NOCASE";
        command.Parameters.AddWithValue("$table", plan.Table);
        command.ExecuteNonQuery();
    }

    private long HighMark()
    {
        using var statement = new RawStatement(_connection.Handle!, $"SELECT coalesce(max(seq), 0) FROM {ChangeTable}");
        statement.Step();
        return statement.GetInt64(0);
    }

    private void Exec(string sql)
    {
        using var statement = new RawStatement(_connection.Handle!, sql);
        statement.Execute();
    }

    /// <summary>
    /// The snapshot, merged with the ledger in key order: rows that are new or differ become upserts, and keys the ledger
    /// holds that are gone from the table become deletes. On a first sync the ledger is empty and this is a plain copy;
    /// on a re-snapshot (full refresh, a schema change) deletes made meanwhile are not lost below the new high mark.
    /// </summary>
    private async IAsyncEnumerable<ChangeBatch> SnapshotAsync(RecordKey? after, long mark, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var then = new Position(Kind, mark.ToString(CultureInfo.InvariantCulture));
        var changes = LedgerDiff.DiffAsync(SnapshotRowsAsync(after, then), _request.Ledger.ScanAsync(_request.Scope, cancellationToken), DiffMode.RowHash, _request.Schema.Name, _request.Plan.SourceName, cancellationToken);
        var events = new List<ChangeEvent>(_request.BatchSize);
        await foreach (var change in changes.ConfigureAwait(false))
        {
            // A resumed snapshot reads the table after its last key; the ledger's keys up to it are not "missing".
            if (after is not null && change.Key.CompareTo(after) <= 0)
            {
                continue;
            }

            events.Add(change.Operation == ChangeOperation.Delete ? change with { Position = then } : change);
            if (events.Count >= _request.BatchSize)
            {
                yield return new ChangeBatch(_request.Schema, events, SnapshotPosition.Create(events[^1].Key, then));
                events = new List<ChangeEvent>(_request.BatchSize);
            }
        }

        yield return new ChangeBatch(_request.Schema, events, then);
    }

    private async IAsyncEnumerable<ChangeEvent> SnapshotRowsAsync(RecordKey? after, Position then)
    {
        await Task.CompletedTask.ConfigureAwait(false);
        using var statement = _mapper.OpenInKeyOrder(_connection, after);
        while (statement.Step())
        {
            yield return _mapper.Upsert(_mapper.ReadValues(statement), then, null);
        }
    }

    private IEnumerable<ChangeBatch> Changes(long after, CancellationToken cancellationToken)
    {
        var keyCount = _request.Schema.PrimaryKey.Count;
        var keyColumns = string.Join(", ", Enumerable.Range(1, keyCount).Select(i => $"k{i}"));
        using var statement = new RawStatement(
            _connection.Handle!,
            $"SELECT seq, op, changed_at, {keyColumns} FROM {ChangeTable} WHERE table_name = ?1 AND seq > ?2 ORDER BY seq");
        statement.Bind(1, _request.Schema.Name);
        statement.Bind(2, after);
        var pending = new List<(long Seq, char Op, Instant? At, RecordKey Key)>(_request.BatchSize);
        var yielded = false;
        Instant? highWaterMark = _request.HighWaterMark;
        while (statement.Step())
        {
            var key = new object?[keyCount];
            for (var i = 0; i < keyCount; i++)
            {
                key[i] = statement.GetValue(3 + i);
            }

            Instant? at = SourceTimestamp.TryParse(statement.GetText(2), DateTimeZone.Utc, out var instant, out _) ? instant : null;
            pending.Add((statement.GetInt64(0), statement.GetText(1)[0], at, new RecordKey(key)));
            if (pending.Count >= _request.BatchSize)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var batch = Resolve(pending, ref highWaterMark, after);
                after = pending[^1].Seq;
                yield return batch;
                yielded = true;
                pending.Clear();
            }
        }

        if (pending.Count > 0 || !yielded)
        {
            yield return Resolve(pending, ref highWaterMark, after);
        }
    }

    /// <summary>
    /// Turns a run of change rows into events: only the last change of each key matters, and what it means is decided by
    /// the row as it is now — present: an upsert of its current values; gone: a delete. Reading the state rather than
    /// replaying the operation keeps a replay idempotent even when a delete and a later re-insert of the same key fall
    /// into different batches.
    /// </summary>
    private ChangeBatch Resolve(List<(long Seq, char Op, Instant? At, RecordKey Key)> pending, ref Instant? highWaterMark, long currentSeq)
    {
        var last = new Dictionary<RecordKey, (long Seq, char Op, Instant? At)>();
        foreach (var change in pending)
        {
            last[change.Key] = (change.Seq, change.Op, change.At);
            if (change.At is { } at && (highWaterMark is null || at > highWaterMark))
            {
                highWaterMark = at;
            }
        }

        var current = ReadCurrent([.. last.Keys]);
        var events = new List<ChangeEvent>(last.Count);
        foreach (var (key, change) in last.OrderBy(kv => kv.Value.Seq))
        {
            var position = new Position(Kind, change.Seq.ToString(CultureInfo.InvariantCulture));
            events.Add(current.TryGetValue(key, out var values)
                ? _mapper.Upsert(values, position, change.At)
                : _mapper.Delete(key, position, change.At));
        }

        var end = new Position(Kind, (pending.Count == 0 ? currentSeq : pending[^1].Seq).ToString(CultureInfo.InvariantCulture));
        return new ChangeBatch(_request.Schema, events, end) { HighWaterMark = highWaterMark, InCommitOrder = true };
    }

    private Dictionary<RecordKey, object?[]> ReadCurrent(List<RecordKey> keys)
    {
        var rows = new Dictionary<RecordKey, object?[]>(keys.Count);
        var keyColumns = _request.Schema.PrimaryKey;
        for (var start = 0; start < keys.Count; start += KeysPerLookup)
        {
            var chunk = keys.GetRange(start, Math.Min(KeysPerLookup, keys.Count - start));
            var tuple = "(" + string.Join(", ", keyColumns.Select(SqliteSql.Quote)) + ")";
            var placeholders = string.Join(", ", chunk.Select((_, r) => "(" + string.Join(", ", keyColumns.Select((_, c) => $"?{(r * keyColumns.Count) + c + 1}")) + ")"));
            using var statement = new RawStatement(_connection.Handle!, _mapper.SelectFrom() + $" WHERE {tuple} IN (VALUES {placeholders})");
            var p = 1;
            foreach (var key in chunk)
            {
                foreach (var value in key.Values)
                {
                    statement.Bind(p++, value);
                }
            }

            while (statement.Step())
            {
                var values = _mapper.ReadValues(statement);
                rows[_request.Schema.KeyOf(values)] = values;
            }
        }

        return rows;
    }
}
