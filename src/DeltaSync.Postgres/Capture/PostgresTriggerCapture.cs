using System.Data;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Runtime.CompilerServices;
using DeltaSync.Core.Capture;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Postgres.Source;
using Npgsql;
using NpgsqlTypes;
using NodaTime;

namespace DeltaSync.Postgres.Capture;

/// <summary>
/// Trigger CDC on PostgreSQL: a row trigger and a TRUNCATE trigger append each changed key (as jsonb), the writing
/// transaction's id and the time to a change table in the <c>deltasync</c> schema. Like the SQLite trigger capture it is
/// state-based: a changed key is resolved by reading the row as it is now, in the same REPEATABLE READ snapshot as the
/// change rows (present: an upsert; gone: a delete), so replays are idempotent. The snapshot reads the table and the
/// change table's high mark in one snapshot, with the triggers already installed: nothing is missed or doubled.
/// <para>
/// Commit-aware (DESIGN.md, invariant 4): <c>seq</c> is taken before commit, so a transaction still open during a pass
/// can commit later with seqs below what the pass read. The position therefore keeps, with the highest seq read, the
/// transactions the pass's snapshot could not see; their rows at or below it are read once they have committed.
/// </para>
/// </summary>
internal sealed class PostgresTriggerCapture : IChangeCapture
{
    public const string Kind = "pgtrigger";
    private const string DefaultSchema = "deltasync";
    private const string PresentColumn = "?deltasync_present";

    private readonly NpgsqlDataSource _data;
    private readonly CaptureRequest _request;
    private readonly PostgresRowMapper _mapper;
    private readonly ChangeTable _changes;
    private readonly PgColumn[] _keyColumns;
    private uint _oid;
    private long _recordedProgress = -1;

    public PostgresTriggerCapture(NpgsqlDataSource data, CaptureRequest request, PgTable table)
    {
        _data = data;
        _request = request;
        _mapper = new PostgresRowMapper(table, request.Schema, request.Plan.SourceName);
        _changes = ChangeTable.Of(request.Plan);
        _keyColumns = request.Schema.PrimaryKey.Select(_mapper.Column).ToArray();
    }

    private string Table => _mapper.Table.QualifiedName;

    public async IAsyncEnumerable<ChangeBatch> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var connection = await PostgresConnectionFactory.OpenAsync(_data, "source", cancellationToken).ConfigureAwait(false);
        var triggersCreated = await InstallAsync(connection, cancellationToken).ConfigureAwait(false);
        var resume = _request.Resume;
        string? warning = null;
        if (triggersCreated && !resume.IsNone)
        {
            warning = $"the change triggers of '{_request.Plan.Table}' were missing (the table was recreated, or they were dropped), so changes made meanwhile were not recorded; the table was re-read in full";
            resume = Position.None;
        }

        TriggerCursor? cursor;
        if (resume.IsNone || resume.Kind == SnapshotPosition.Kind)
        {
            RecordKey? after = null;
            TriggerCursor? then = null;
            if (SnapshotPosition.TryParse(resume, out var lastKey, out var thenPosition) && TriggerCursor.TryParse(thenPosition, out var resumed))
            {
                after = lastKey;
                then = resumed;
            }

            var done = Position.None;
            await foreach (var batch in SnapshotAsync(connection, after, then, warning, cancellationToken).ConfigureAwait(false))
            {
                done = batch.CheckpointPosition;
                yield return batch;
            }

            if (!TriggerCursor.TryParse(done, out cursor))
            {
                throw new InvalidOperationException($"table '{_request.Plan.Table}': the snapshot ended at '{done}', not at a trigger position");
            }
        }
        else if (!TriggerCursor.TryParse(resume, out cursor))
        {
            throw new SyncException(ErrorClass.Fatal, $"table '{_request.Plan.Table}': checkpoint position '{resume}' is not a PostgreSQL trigger position");
        }

        // After a snapshot too: changes committed while it was read are picked up in this run.
        await foreach (var batch in PassAsync(connection, cursor, cancellationToken).ConfigureAwait(false))
        {
            yield return batch;
        }
    }

    /// <summary>
    /// Records how far this consumer has read, then prunes the change rows every consumer of the table has read: another
    /// sync reading the same table keeps the changes it has not seen yet.
    /// </summary>
    public async ValueTask OnCheckpointedAsync(Position position, CancellationToken cancellationToken)
    {
        var cursor = TriggerCursor.TryParse(position, out var parsed)
            ? parsed
            : SnapshotPosition.TryParse(position, out _, out var then) && TriggerCursor.TryParse(then, out var continuation) ? continuation : null;
        if (cursor is null || _oid == 0 || cursor.Progress == _recordedProgress)
        {
            return;
        }

        try
        {
            await using var connection = await PostgresConnectionFactory.OpenAsync(_data, "source", cancellationToken).ConfigureAwait(false);
            await using (var progress = new NpgsqlCommand(
                $"INSERT INTO {_changes.Consumers} (consumer, table_oid, seq) VALUES ($1, $2, $3) " +
                "ON CONFLICT (consumer) DO UPDATE SET table_oid = excluded.table_oid, seq = excluded.seq",
                connection))
            {
                progress.Parameters.Add(new NpgsqlParameter { Value = _request.Plan.Consumer });
                progress.Parameters.Add(Oid(_oid));
                progress.Parameters.Add(new NpgsqlParameter { Value = cursor.Progress });
                await progress.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            if (_request.Plan.PruneChanges)
            {
                await using var prune = new NpgsqlCommand(
                    $"DELETE FROM {_changes.Changes} WHERE table_oid = $1 AND seq <= (SELECT min(seq) FROM {_changes.Consumers} WHERE table_oid = $1)",
                    connection);
                prune.Parameters.Add(Oid(_oid));
                await prune.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (NpgsqlException e)
        {
            throw PostgresConnectionFactory.Classify(e, $"table '{_request.Plan.Table}': cannot record trigger CDC progress in {_changes.Consumers}");
        }

        _recordedProgress = cursor.Progress;
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>
    /// Creates what is missing (schema, change and consumers tables, trigger function, triggers) and registers this
    /// consumer, under an advisory lock so two runs installing at once do not trip over each other.
    /// </summary>
    /// <returns>Whether the triggers had to be created (changes before now were not recorded).</returns>
    private async Task<bool> InstallAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        try
        {
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            await LockAsync(connection, _changes, cancellationToken).ConfigureAwait(false);
            bool schemaExists, changesExist, consumersExist;
            char relkind;
            await using (var look = new NpgsqlCommand(
                "SELECT to_regnamespace($1) IS NOT NULL, to_regclass($2) IS NOT NULL, to_regclass($3) IS NOT NULL, c.oid, c.relkind " +
                "FROM pg_class AS c WHERE c.oid = to_regclass($4)",
                connection))
            {
                look.Parameters.Add(new NpgsqlParameter { Value = PostgresSql.Quote(_changes.Schema) });
                look.Parameters.Add(new NpgsqlParameter { Value = _changes.Changes });
                look.Parameters.Add(new NpgsqlParameter { Value = _changes.Consumers });
                look.Parameters.Add(new NpgsqlParameter { Value = Table });
                await using var reader = await look.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    throw new SyncException(ErrorClass.Fatal, $"table '{_request.Plan.Table}' ({Table}) no longer exists in the source database");
                }

                (schemaExists, changesExist, consumersExist, _oid, relkind) =
                    (reader.GetBoolean(0), reader.GetBoolean(1), reader.GetBoolean(2), reader.GetFieldValue<uint>(3), reader.GetChar(4));
            }

            if (relkind is not ('r' or 'p'))
            {
                throw new SyncException(ErrorClass.Fatal, $"table '{_request.Plan.Table}': trigger CDC needs a table; {Table} is a view or foreign table (use timestamp, version or polling)");
            }

            if (!schemaExists)
            {
                await ExecuteAsync(connection, $"CREATE SCHEMA IF NOT EXISTS {PostgresSql.Quote(_changes.Schema)}", cancellationToken).ConfigureAwait(false);
            }

            if (!changesExist)
            {
                // The sequence keeps the default CACHE 1: values are handed out in time order across sessions, which
                // the commit-aware position relies on.
                await ExecuteAsync(connection, $"""
                    CREATE TABLE IF NOT EXISTS {_changes.Changes} (
                      seq bigserial PRIMARY KEY,
                      table_oid oid NOT NULL,
                      op text NOT NULL CHECK (op IN ('I', 'U', 'D', 'T')),
                      key jsonb,
                      xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
                      changed_at timestamptz NOT NULL DEFAULT clock_timestamp())
                    """, cancellationToken).ConfigureAwait(false);
                await ExecuteAsync(connection, $"CREATE INDEX IF NOT EXISTS {PostgresSql.Quote(_changes.Name + "_by_table")} ON {_changes.Changes} (table_oid, seq)", cancellationToken).ConfigureAwait(false);
            }

            if (!consumersExist)
            {
                await ExecuteAsync(connection, $"CREATE TABLE IF NOT EXISTS {_changes.Consumers} (consumer text PRIMARY KEY, table_oid oid NOT NULL, seq bigint NOT NULL)", cancellationToken).ConfigureAwait(false);
            }

            var created = await InstallTriggersAsync(connection, cancellationToken).ConfigureAwait(false);

            // A new consumer holds pruning back until its first checkpoint; a table recreated under the same name starts over.
            await using (var register = new NpgsqlCommand(
                $"INSERT INTO {_changes.Consumers} AS c (consumer, table_oid, seq) VALUES ($1, $2, 0) " +
                "ON CONFLICT (consumer) DO UPDATE SET table_oid = excluded.table_oid, seq = 0 WHERE c.table_oid <> excluded.table_oid",
                connection))
            {
                register.Parameters.Add(new NpgsqlParameter { Value = _request.Plan.Consumer });
                register.Parameters.Add(Oid(_oid));
                await register.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
            return created;
        }
        catch (NpgsqlException e)
        {
            throw PostgresConnectionFactory.Classify(
                e,
                $"table '{_request.Plan.Table}': cannot install trigger CDC (the sync user needs CREATE on the source database, or an existing {PostgresSql.Quote(_changes.Schema)} schema it may write to, and must own the table)");
        }
    }

    /// <summary>The trigger function (replaced only when its body differs, e.g. after a key change) and the two triggers when missing.</summary>
    private async Task<bool> InstallTriggersAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var function = _changes.Function(_oid);
        var body = FunctionBody();
        string? current = null;
        var existing = new List<string>();
        await using (var look = new NpgsqlCommand(
            "SELECT (SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure($1)), " +
            "array(SELECT tgname::text FROM pg_trigger WHERE tgrelid = $2 AND tgname = ANY ($3) AND NOT tgisinternal)",
            connection))
        {
            look.Parameters.Add(new NpgsqlParameter { Value = function + "()" });
            look.Parameters.Add(Oid(_oid));
            look.Parameters.Add(new NpgsqlParameter { Value = new[] { _changes.RowTrigger, _changes.TruncateTrigger }, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            await using var reader = await look.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            current = reader.IsDBNull(0) ? null : reader.GetString(0);
            existing.AddRange(reader.GetFieldValue<string[]>(1));
        }

        if (current != body)
        {
            var tag = "$deltasync$";
            while (body.Contains(tag, StringComparison.Ordinal))
            {
                tag = tag.Insert(tag.Length - 1, "_");
            }

            // SECURITY DEFINER: the application's roles write the table, the sync user owns the change table.
            await ExecuteAsync(
                connection,
                $"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS {tag}{body}{tag}",
                cancellationToken).ConfigureAwait(false);
        }

        var created = false;
        if (!existing.Contains(_changes.RowTrigger))
        {
            await ExecuteAsync(connection, $"CREATE TRIGGER {PostgresSql.Quote(_changes.RowTrigger)} AFTER INSERT OR UPDATE OR DELETE ON {Table} FOR EACH ROW EXECUTE FUNCTION {function}()", cancellationToken).ConfigureAwait(false);
            created = true;
        }

        if (!existing.Contains(_changes.TruncateTrigger))
        {
            await ExecuteAsync(connection, $"CREATE TRIGGER {PostgresSql.Quote(_changes.TruncateTrigger)} AFTER TRUNCATE ON {Table} FOR EACH STATEMENT EXECUTE FUNCTION {function}()", cancellationToken).ConfigureAwait(false);
            created = true;
        }

        return created;
    }

    /// <summary>
    /// The trigger function: one change row per changed key (the key as a jsonb object named by column, so
    /// <c>jsonb_populate_record</c> turns it back into typed values), a delete of the old key when an update moves it,
    /// one 'T' row per TRUNCATE. The table's oid is written as a number: a partition firing the trigger has its own.
    /// </summary>
    private string FunctionBody()
    {
        string Key(string row) =>
            "(SELECT to_jsonb(k.*) FROM (SELECT " + string.Join(", ", _keyColumns.Select(c => $"{row}.{PostgresSql.Quote(c.Name)} AS {PostgresSql.Quote(c.Name)}")) + ") AS k)";
        var oid = _oid.ToString(CultureInfo.InvariantCulture);
        return $"""

            DECLARE
              _old jsonb;
              _new jsonb;
            BEGIN
              IF TG_OP = 'TRUNCATE' THEN
                INSERT INTO {_changes.Changes} (table_oid, op) VALUES ({oid}, 'T');
                RETURN NULL;
              END IF;
              IF TG_OP <> 'INSERT' THEN
                _old := {Key("OLD")};
              END IF;
              IF TG_OP <> 'DELETE' THEN
                _new := {Key("NEW")};
              END IF;
              IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND _old IS DISTINCT FROM _new) THEN
                INSERT INTO {_changes.Changes} (table_oid, op, key) VALUES ({oid}, 'D', _old);
              END IF;
              IF TG_OP <> 'DELETE' THEN
                INSERT INTO {_changes.Changes} (table_oid, op, key) VALUES ({oid}, CASE TG_OP WHEN 'INSERT' THEN 'I' ELSE 'U' END, _new);
              END IF;
              RETURN NULL;
            END

            """;
    }

    /// <summary>
    /// Forgets this consumer. When no other consumer reads the table, its triggers, trigger function and change rows go
    /// too; while one does, they stay (dropping them would lose the changes it has not read yet).
    /// </summary>
    internal static async Task UninstallAsync(NpgsqlDataSource data, TablePlan plan, CancellationToken cancellationToken)
    {
        var changes = ChangeTable.Of(plan);
        await using var connection = await PostgresConnectionFactory.OpenAsync(data, "source", cancellationToken).ConfigureAwait(false);
        try
        {
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
            bool changesExist, consumersExist;
            await using (var look = new NpgsqlCommand("SELECT to_regclass($1) IS NOT NULL, to_regclass($2) IS NOT NULL", connection))
            {
                look.Parameters.Add(new NpgsqlParameter { Value = changes.Changes });
                look.Parameters.Add(new NpgsqlParameter { Value = changes.Consumers });
                await using var reader = await look.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                (changesExist, consumersExist) = (reader.GetBoolean(0), reader.GetBoolean(1));
            }

            if (!changesExist && !consumersExist)
            {
                return;
            }

            await LockAsync(connection, changes, cancellationToken).ConfigureAwait(false);
            var oids = new List<uint>();
            if (consumersExist)
            {
                await using var forget = new NpgsqlCommand($"DELETE FROM {changes.Consumers} WHERE consumer = $1 RETURNING table_oid", connection);
                forget.Parameters.Add(new NpgsqlParameter { Value = plan.Consumer });
                if (await forget.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is uint recorded)
                {
                    oids.Add(recorded);
                }
            }

            if (await PostgresCatalog.FindAsync(connection, plan.Table, cancellationToken).ConfigureAwait(false) is { } found && !oids.Contains(found.Oid))
            {
                oids.Add(found.Oid);
            }

            foreach (var oid in oids)
            {
                if (consumersExist)
                {
                    await using var others = new NpgsqlCommand($"SELECT count(*) FROM {changes.Consumers} WHERE table_oid = $1", connection);
                    others.Parameters.Add(Oid(oid));
                    if ((long)(await others.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))! > 0)
                    {
                        continue;
                    }
                }

                await DropAsync(connection, changes, oid, changesExist, cancellationToken).ConfigureAwait(false);
            }

            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (NpgsqlException e)
        {
            throw PostgresConnectionFactory.Classify(e, $"table '{plan.Table}': cannot remove trigger CDC from the source database (the sync user must own the table)");
        }
    }

    private static async Task DropAsync(NpgsqlConnection connection, ChangeTable changes, uint oid, bool changesExist, CancellationToken cancellationToken)
    {
        string? table = null;
        await using (var name = new NpgsqlCommand("SELECT n.nspname::text, c.relname::text FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE c.oid = $1", connection))
        {
            name.Parameters.Add(Oid(oid));
            await using var reader = await name.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                table = PostgresSql.Qualified(reader.GetString(0), reader.GetString(1));
            }
        }

        if (table is not null)
        {
            await ExecuteAsync(connection, $"DROP TRIGGER IF EXISTS {PostgresSql.Quote(changes.RowTrigger)} ON {table}", cancellationToken).ConfigureAwait(false);
            await ExecuteAsync(connection, $"DROP TRIGGER IF EXISTS {PostgresSql.Quote(changes.TruncateTrigger)} ON {table}", cancellationToken).ConfigureAwait(false);
        }

        await ExecuteAsync(connection, $"DROP FUNCTION IF EXISTS {changes.Function(oid)}()", cancellationToken).ConfigureAwait(false);
        if (changesExist)
        {
            await using var delete = new NpgsqlCommand($"DELETE FROM {changes.Changes} WHERE table_oid = $1", connection);
            delete.Parameters.Add(Oid(oid));
            await delete.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The snapshot, merged with the ledger in key order (new or differing rows become upserts, ledger keys gone from the
    /// table deletes), in one snapshot with the change table's high mark. A resumed snapshot reads the keys after the
    /// last one copied and keeps the continuation it started with.
    /// </summary>
    private async IAsyncEnumerable<ChangeBatch> SnapshotAsync(NpgsqlConnection connection, RecordKey? after, TriggerCursor? resumed, string? warning, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var transaction = await BeginPassAsync(connection, cancellationToken).ConfigureAwait(false);
        var inProgress = await InProgressAsync(connection, cancellationToken).ConfigureAwait(false);
        var then = resumed ?? new TriggerCursor(await HighMarkAsync(connection, cancellationToken).ConfigureAwait(false), 0, inProgress);
        var position = then.ToPosition();
        var changes = LedgerDiff.DiffAsync(
            TableRowsAsync(connection, after, position, cancellationToken),
            LedgerKeyValues.Prepare(_request.Ledger.ScanAsync(_request.Scope, cancellationToken), _keyColumns),
            DiffMode.RowHash,
            _request.Schema.Name,
            _request.Plan.SourceName,
            cancellationToken);
        var events = new List<ChangeEvent>(_request.BatchSize);
        await foreach (var change in changes.ConfigureAwait(false))
        {
            // A resumed snapshot reads the table after its last key; the ledger's keys up to it are not "missing".
            if (after is not null && change.Key.CompareTo(after) <= 0)
            {
                continue;
            }

            events.Add(change.Operation == ChangeOperation.Delete ? change with { Position = position } : change);
            if (events.Count >= _request.BatchSize)
            {
                yield return new ChangeBatch(_request.Schema, events, SnapshotPosition.Create(events[^1].Key, position)) { Warnings = Said(warning) };
                events = new List<ChangeEvent>(_request.BatchSize);
            }
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        yield return new ChangeBatch(_request.Schema, events, position) { Warnings = Said(warning) };
    }

    /// <summary>
    /// One pass over the change rows after <paramref name="start"/>, in seq order, in batches, each resolved against the
    /// table in the same snapshot. Rows of transactions the previous pass could not see are read first, once visible.
    /// </summary>
    private async IAsyncEnumerable<ChangeBatch> PassAsync(NpgsqlConnection connection, TriggerCursor start, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var transaction = await BeginPassAsync(connection, cancellationToken).ConfigureAwait(false);
        var inProgress = await InProgressAsync(connection, cancellationToken).ConfigureAwait(false);
        var highWaterMark = _request.HighWaterMark;
        var checkpoint = start;
        var after = start.ScanFrom;
        var truncateResolved = false;
        Position? yielded = null;
        while (true)
        {
            var page = await ReadPageAsync(connection, start, after, cancellationToken).ConfigureAwait(false);
            if (page.Rows == 0)
            {
                break;
            }

            after = page.LastSeq;
            if (page.NewestChange is { } newest && (highWaterMark is null || newest > highWaterMark))
            {
                highWaterMark = newest;
            }

            // Below the previous high mark only rows of then-open transactions are read: the old position stands until past it.
            var end = page.LastSeq > start.Seq ? start.After(page.LastSeq, inProgress) : checkpoint;
            var events = page.Events;
            if (page.Truncate is { } truncate && !truncateResolved)
            {
                // Every event reflects the table as this snapshot sees it, so one reconciliation covers every TRUNCATE
                // of the pass. Until it is all applied, the checkpoint stays before this page: a crash redoes it.
                truncateResolved = true;
                var diff = LedgerDiff.DiffAsync(
                    TableRowsAsync(connection, null, truncate.Position, cancellationToken),
                    LedgerKeyValues.Prepare(_request.Ledger.ScanAsync(_request.Scope, cancellationToken), _keyColumns),
                    DiffMode.RowHash,
                    _request.Schema.Name,
                    _request.Plan.SourceName,
                    cancellationToken);
                await foreach (var change in diff.ConfigureAwait(false))
                {
                    events.Add(change.Operation == ChangeOperation.Delete ? change with { Position = truncate.Position, CommitTime = truncate.At } : change);
                    if (events.Count >= _request.BatchSize)
                    {
                        yield return new ChangeBatch(_request.Schema, events, checkpoint.ToPosition()) { HighWaterMark = highWaterMark, InCommitOrder = true };
                        yielded = checkpoint.ToPosition();
                        events = new List<ChangeEvent>(_request.BatchSize);
                    }
                }
            }

            yield return new ChangeBatch(_request.Schema, events, end.ToPosition()) { HighWaterMark = highWaterMark, InCommitOrder = true };
            yielded = end.ToPosition();
            checkpoint = end;
            if (page.Rows < _request.BatchSize)
            {
                break;
            }
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        var done = start.After(Math.Max(start.Seq, after), inProgress).ToPosition();
        if (yielded != done)
        {
            yield return new ChangeBatch(_request.Schema, [], done) { HighWaterMark = highWaterMark };
        }
    }

    /// <summary>
    /// A page of change rows with each key's current row: <c>jsonb_populate_record</c> types the recorded key as the
    /// table's columns, and the row is looked up by it (only for the last change of a key in the page).
    /// </summary>
    private async Task<Page> ReadPageAsync(NpgsqlConnection connection, TriggerCursor start, long after, CancellationToken cancellationToken)
    {
        var keysOfRow = string.Join(", ", _keyColumns.Select(c => "t." + PostgresSql.Quote(c.Name)));
        var keysOfChange = string.Join(", ", _keyColumns.Select(c => "k." + PostgresSql.Quote(c.Name)));
        var keySelect = string.Join(", ", _keyColumns.Select(c => "k." + PostgresSql.Quote(c.Name) + (PostgresRowMapper.SelectedAsText(c) ? "::text" : "")));
        var sql = $"""
            SELECT r.*, c.seq, c.op, c.changed_at, c.last, {keySelect}
            FROM (SELECT p.seq, p.op, p.key, p.changed_at, p.seq = max(p.seq) OVER (PARTITION BY p.key) AS last
                  FROM (SELECT seq, op, key, changed_at FROM {_changes.Changes}
                        WHERE table_oid = $1 AND seq > $2 AND (seq > $3 OR xid = ANY ($4::text[]::xid8[]))
                        ORDER BY seq LIMIT $5) AS p) AS c
            LEFT JOIN LATERAL jsonb_populate_record(NULL::{Table}, c.key) AS k ON c.op <> 'T' AND c.last
            LEFT JOIN LATERAL (SELECT {_mapper.SelectList("t")}, true AS {PostgresSql.Quote(PresentColumn)}
                               FROM {Table} AS t WHERE ({keysOfRow}) = ({keysOfChange})) AS r ON true
            ORDER BY c.seq
            """;
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.Add(Oid(_oid));
        command.Parameters.Add(new NpgsqlParameter { Value = after });
        command.Parameters.Add(new NpgsqlParameter { Value = start.Seq });
        command.Parameters.Add(new NpgsqlParameter { Value = start.Pending.ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter { Value = _request.BatchSize });
        var page = new Page();
        var n = _mapper.ColumnCount;
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            page.Rows++;
            var seq = reader.GetInt64(n + 1);
            var at = Instant.FromDateTimeUtc(reader.GetFieldValue<DateTime>(n + 3));
            var position = new Position(Kind, seq.ToString(CultureInfo.InvariantCulture));
            page.LastSeq = seq;
            if (page.NewestChange is null || at > page.NewestChange)
            {
                page.NewestChange = at;
            }

            if (reader.GetString(n + 2) == "T")
            {
                page.Truncate ??= (position, at);
                continue;
            }

            if (!reader.GetBoolean(n + 4))
            {
                continue;
            }

            if (!reader.IsDBNull(n))
            {
                page.Events.Add(_mapper.Upsert(_mapper.ReadValues(reader), position, at));
                continue;
            }

            var key = new object?[_keyColumns.Length];
            for (var i = 0; i < key.Length; i++)
            {
                key[i] = PostgresValues.Read(reader, n + 5 + i, _keyColumns[i]);
            }

            page.Events.Add(_mapper.Delete(new RecordKey(key), position, at));
        }

        return page;
    }

    private async IAsyncEnumerable<ChangeEvent> TableRowsAsync(NpgsqlConnection connection, RecordKey? after, Position position, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand { Connection = connection };
        var where = after is null ? "" : " WHERE " + _mapper.KeyAfter(after, command);
        command.CommandText = $"SELECT {_mapper.SelectList()} FROM {Table}{where} ORDER BY {_mapper.KeyOrder()}";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return _mapper.Upsert(_mapper.ReadValues(reader), position, null);
        }
    }

    /// <summary>
    /// A REPEATABLE READ transaction holding the table's ACCESS SHARE lock before its snapshot is taken: TRUNCATE is
    /// not MVCC-safe (a snapshot older than it sees the table empty), so none may commit while the pass reads.
    /// </summary>
    private async Task<NpgsqlTransaction> BeginPassAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var transaction = await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
        await ExecuteAsync(connection, $"LOCK TABLE {Table} IN ACCESS SHARE MODE", cancellationToken).ConfigureAwait(false);
        return transaction;
    }

    /// <summary>
    /// The transactions this pass's snapshot cannot see (the statement takes the snapshot), less those running in
    /// another database, which cannot write this table. One that ended just now is kept: it may have written it.
    /// </summary>
    private static async Task<string[]> InProgressAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        const string sql = """
            SELECT array(
              SELECT x::text FROM pg_snapshot_xip(pg_current_snapshot()) AS x
              WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity AS a WHERE a.backend_xid = x::xid AND a.datname <> current_database())
              ORDER BY x)
            """;
        await using var command = new NpgsqlCommand(sql, connection);
        return (string[])(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    private async Task<long> HighMarkAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand($"SELECT coalesce(max(seq), 0) FROM {_changes.Changes} WHERE table_oid = $1", connection);
        command.Parameters.Add(Oid(_oid));
        return (long)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
    }

    private static async Task LockAsync(NpgsqlConnection connection, ChangeTable changes, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = "deltasync trigger cdc " + changes.Changes });
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    private static NpgsqlParameter Oid(uint oid) => new() { Value = oid, NpgsqlDbType = NpgsqlDbType.Oid };

    private static IReadOnlyList<string> Said(string? warning) => warning is null ? [] : [warning];

    /// <summary>Change rows read by one query: their events (the last change of each key), and what the pass tracks.</summary>
    private sealed class Page
    {
        public List<ChangeEvent> Events { get; } = [];

        public int Rows { get; set; }

        public long LastSeq { get; set; }

        public Instant? NewestChange { get; set; }

        public (Position Position, Instant At)? Truncate { get; set; }
    }

    /// <summary>Where the change table, its consumers table, the trigger function and the triggers are named.</summary>
    private sealed record ChangeTable(string Schema, string Name)
    {
        public static ChangeTable Of(TablePlan plan)
        {
            var (schema, name) = PostgresSql.SplitName(plan.TriggerChangeTable);
            return new ChangeTable(schema is { Length: > 0 } ? schema : DefaultSchema, name);
        }

        public string Changes => PostgresSql.Qualified(Schema, Name);

        public string Consumers => PostgresSql.Qualified(Schema, Name + "_consumers");

        public string RowTrigger => Name + "_row";

        public string TruncateTrigger => Name + "_truncate";

        /// <summary>One function per table: its key columns and oid are written into the body.</summary>
        public string Function(uint oid) => PostgresSql.Qualified(Schema, Name + "_" + oid.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// The position: every change row visible so far up to <see cref="Seq"/> has been read, except rows of the
    /// <see cref="Pending"/> transactions (open when the last pass took its snapshot), which all lie above
    /// <see cref="Floor"/>. Serialized as <c>seq</c>, or <c>seq/floor/xid,xid…</c> while transactions are pending.
    /// </summary>
    private sealed record TriggerCursor(long Seq, long Floor, IReadOnlyList<string> Pending)
    {
        /// <summary>Change rows at or below this are read by this consumer (or belong to transactions that rolled back).</summary>
        public long Progress => Pending.Count == 0 ? Seq : Floor;

        /// <summary>Where a pass starts reading (the pending transactions' rows, then everything above <see cref="Seq"/>).</summary>
        public long ScanFrom => Progress;

        /// <summary>
        /// The cursor once a pass whose snapshot could not see <paramref name="inProgress"/> has read every visible row up
        /// to <paramref name="seq"/>. A transaction pending before and still open keeps the old floor; one that is newly
        /// open took no seq at or below the old <see cref="Seq"/> (it would have been open, thus pending, back then).
        /// </summary>
        public TriggerCursor After(long seq, IReadOnlyList<string> inProgress)
        {
            var floor = inProgress.Any(Pending.Contains) ? Floor : Seq;
            return new TriggerCursor(Math.Max(Seq, seq), floor, inProgress);
        }

        public Position ToPosition() => new(
            Kind,
            Pending.Count == 0
                ? Seq.ToString(CultureInfo.InvariantCulture)
                : string.Create(CultureInfo.InvariantCulture, $"{Seq}/{Floor}/{string.Join(',', Pending)}"));

        public static bool TryParse(Position position, [NotNullWhen(true)] out TriggerCursor? cursor)
        {
            cursor = null;
            if (position.Kind != Kind)
            {
                return false;
            }

            var parts = position.Value.Split('/');
            if (!long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var seq))
            {
                return false;
            }

            if (parts.Length == 1)
            {
                cursor = new TriggerCursor(seq, seq, []);
                return true;
            }

            var pending = parts.Length == 3 ? parts[2].Split(',', StringSplitOptions.RemoveEmptyEntries) : [];
            if (parts.Length != 3
                || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var floor)
                || floor > seq
                || pending.Any(x => !ulong.TryParse(x, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
            {
                return false;
            }

            cursor = new TriggerCursor(seq, floor, pending);
            return true;
        }
    }
}
