using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.RegularExpressions;
using DeltaSync.Core.Capture;
using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Postgres.Source;
using Npgsql;
using Npgsql.Replication;
using Npgsql.Replication.PgOutput;
using Npgsql.Replication.PgOutput.Messages;
using NpgsqlTypes;
using NodaTime;

namespace DeltaSync.Postgres.Capture;

/// <summary>
/// Log-based capture from PostgreSQL's write-ahead log through logical replication (<c>pgoutput</c>). The table gets its
/// own publication and slot (created when absent). A new slot exports a snapshot: the table is copied in key order in
/// exactly that snapshot, and streaming starts at the slot's consistent point, so nothing is missed or doubled. Each pass
/// writes a logical-decoding marker and reads the log up to it, in whole source transactions; the checkpoint holds the
/// log position, and the slot is advanced only to what is checkpointed. A slot that disappeared, or whose WAL is gone,
/// is detected and the table re-snapshotted and compared with the ledger (deletes included): never a silent gap.
/// </summary>
internal sealed partial class PostgresWalCapture : IChangeCapture
{
    public const string Kind = "wal";
    private const string MarkerPrefix = "deltasync";

    private readonly NpgsqlDataSource _data;
    private readonly string _replicationConnection;
    private readonly CaptureRequest _request;
    private readonly PostgresRowMapper _initialMapper;
    private readonly string _slot;
    private readonly string _publication;
    private readonly IClock _clock;
    private readonly TableOptions _options;
    private PostgresRowMapper _mapper;

    private readonly WalStreams _streams;

    // The pass's replication stream: handed back to the source's idle streams once the pass is checkpointed at its
    // end, closed otherwise.
    private WalStream? _stream;

    // The snapshot being taken between reads of the log, when one is.
    private WalSnapshotChunks? _chunks;

    /// <summary>Test seam: runs after a chunk is selected and before its HIGH marker is written.</summary>
    internal Func<CancellationToken, Task>? ChunkSelected { get; set; }

    public PostgresWalCapture(NpgsqlDataSource data, string connection, CaptureRequest request, PgTable table, WalStreams streams, IClock clock)
    {
        _data = data;
        _streams = streams;
        var builder = PostgresConnectionFactory.Parse(connection);
        builder.ApplicationName = "deltasync wal";
        // As on every other connection (PostgresConnectionFactory.CreateDataSource): an array with a NULL element
        // reads as an array of nullable values instead of failing the stream.
        builder.ArrayNullabilityMode = ArrayNullabilityMode.PerInstance;
        // A stream in text (StreamsBinary) is parsed in the output these settings give.
        builder.Options = string.IsNullOrEmpty(builder.Options) ? PostgresTextValues.SessionOptions : builder.Options + " " + PostgresTextValues.SessionOptions;
        _replicationConnection = builder.ConnectionString;
        _request = request;
        _initialMapper = new PostgresRowMapper(table, request.Schema, request.Plan.SourceName);
        _mapper = _initialMapper;
        _slot = request.Plan.SlotName;
        _publication = request.Plan.PublicationName;
        _clock = clock;
        _options = request.Plan.ToTableOptions();
        if (_slot.Length == 0 || _publication.Length == 0)
        {
            throw new SyncException(ErrorClass.Fatal, $"table '{request.Plan.Table}': no replication slot or publication name for the log capture");
        }
    }

    public async IAsyncEnumerable<ChangeBatch> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var sql = await PostgresConnectionFactory.OpenAsync(_data, "source", cancellationToken).ConfigureAwait(false);
        await RequireLogicalWalAsync(sql, cancellationToken).ConfigureAwait(false);
        var republished = await EnsurePublicationAsync(sql, cancellationToken).ConfigureAwait(false);
        var slot = await SlotAsync(sql, cancellationToken).ConfigureAwait(false);
        var resume = _request.Resume;
        var warnings = new List<string>();
        if (!resume.IsNone && (slot is null || slot.Value.Lost))
        {
            warnings.Add(slot is null
                ? $"The replication slot '{_slot}' of '{_request.Plan.Table}' no longer exists (dropped outside DeltaSync?): the table was re-snapshotted and compared with what was synced, so changes made meanwhile, deletes included, were carried"
                : $"The replication slot '{_slot}' of '{_request.Plan.Table}' lost WAL it still needed (max_slot_wal_keep_size?): the slot was recreated and the table re-snapshotted and compared with what was synced");
            resume = Position.None;
        }
        else if (!resume.IsNone && slot?.Confirmed is { } confirmed && LogPosition(resume) is { } from && from < confirmed)
        {
            // The slot has acknowledged more than this checkpoint holds (the destination restored from an older backup, a
            // checkpoint rolled back): PostgreSQL streams only from what the slot confirmed, so the log in between can
            // no longer be read. Streaming on would skip it without a word; a re-snapshot compared with the ledger cannot.
            warnings.Add($"The replication slot '{_slot}' of '{_request.Plan.Table}' has already confirmed {confirmed}, beyond the checkpoint's position {from} (the destination restored from an older backup, or a checkpoint rolled back?): the log in between can no longer be read, so the table was re-snapshotted and compared with what was synced");
            resume = Position.None;
        }
        else if (!resume.IsNone && republished is not null)
        {
            // The slot's log from its position on is decoded through the publications as they were then: a publication
            // created again now is "missing" there for good, and changes made while the table was not published are not
            // in it. Only a new slot and a re-snapshot close the gap.
            warnings.Add($"The publication '{_publication}' of '{_request.Plan.Table}' {republished} (changed outside DeltaSync?): it was repaired, the replication slot recreated and the table re-snapshotted and compared with what was synced, so changes made meanwhile, deletes included, were carried");
            resume = Position.None;
        }

        if (resume.IsNone)
        {
            // A stream of this slot kept from an earlier pass must let go of the slot before it can be recreated.
            await _streams.TakeAsync(_slot, Position.None).ConfigureAwait(false);
            if (slot is not null)
            {
                // A slot without a checkpoint (a first snapshot that never committed, or a lost one): its position means nothing to us.
                await DropSlotAsync(sql, cancellationToken).ConfigureAwait(false);
            }

            var then = Position.None;
            await using (var replication = new LogicalReplicationConnection(_replicationConnection))
            {
                await OpenReplicationAsync(replication, cancellationToken).ConfigureAwait(false);
                if (Keyless)
                {
                    // No key to cut chunks at: the whole table is copied in the slot's exported snapshot.
                    var created = await replication.CreatePgOutputReplicationSlot(_slot, temporarySlot: false, LogicalSlotSnapshotInitMode.Export, cancellationToken: cancellationToken).ConfigureAwait(false);
                    then = new Position(Kind, created.ConsistentPoint.ToString());
                    await foreach (var batch in SnapshotAsync(sql, created.SnapshotName, after: null, then, warnings, cancellationToken).ConfigureAwait(false))
                    {
                        yield return batch;
                    }
                }
                else
                {
                    // The snapshot is taken in chunks between reads of the log, from the slot's start on.
                    var created = await replication.CreatePgOutputReplicationSlot(_slot, temporarySlot: false, LogicalSlotSnapshotInitMode.NoExport, cancellationToken: cancellationToken).ConfigureAwait(false);
                    then = SnapshotPosition.Create(null, new Position(Kind, created.ConsistentPoint.ToString()));
                }
            }

            resume = then;
        }

        WalSnapshotChunks? chunks = null;
        if (SnapshotPosition.TryParse(resume, out var lastKey, out var continuation))
        {
            if (Keyless)
            {
                // Written by an older version: the rest of the keys in a fresh snapshot, then the log from the slot's start.
                await foreach (var batch in SnapshotAsync(sql, snapshotName: null, lastKey, continuation, warnings, cancellationToken).ConfigureAwait(false))
                {
                    yield return batch;
                }
            }
            else
            {
                // A snapshot in progress (or one an older version copied in the exported snapshot and that was cut
                // short: the same thing): the log from where it stands, the chunks after the last key copied.
                chunks = _chunks = new WalSnapshotChunks(lastKey, _request.Plan.SnapshotChunkSize, ct => LedgerKeyValues.Prepare(_request.Ledger.ScanAsync(_request.Scope, ct), KeyColumns()));
            }

            resume = continuation;
        }

        if (resume.Kind != Kind || !NpgsqlLogSequenceNumber.TryParse(resume.Value, out var start))
        {
            throw new SyncException(ErrorClass.Fatal, $"table '{_request.Plan.Table}': checkpoint position '{resume}' is not a log position");
        }

        await foreach (var batch in StreamAsync(sql, start, chunks, warnings, cancellationToken).ConfigureAwait(false))
        {
            yield return batch;
        }
    }

    /// <summary>
    /// The pass is checkpointed: its stream, standing at the checkpoint, is kept for the next pass (which acknowledges
    /// the checkpoint through it as it starts); when the source is closed the slot is advanced to it.
    /// </summary>
    public async ValueTask OnCheckpointedAsync(Position position, CancellationToken cancellationToken)
    {
        var stream = _stream;
        _stream = null;
        if (stream is not null && stream.Position == position)
        {
            await _streams.ReturnAsync(_slot, stream).ConfigureAwait(false);
            return;
        }

        if (stream is not null)
        {
            await stream.DisposeAsync().ConfigureAwait(false);
        }

        if (position.Kind == Kind && NpgsqlLogSequenceNumber.TryParse(position.Value, out var lsn))
        {
            await WalStreams.AdvanceAsync(_data, _slot, lsn, cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_chunks is not null)
        {
            await _chunks.DisposeAsync().ConfigureAwait(false);
            _chunks = null;
        }

        if (_stream is not null)
        {
            await _stream.DisposeAsync().ConfigureAwait(false);
            _stream = null;
        }
    }

    /// <summary>Drops the slot and the publication (<c>state reset</c>).</summary>
    /// <summary>The table's key columns as the capture reads them (for <see cref="LedgerKeyValues"/>).</summary>
    private List<PgColumn> KeyColumns() => _request.Schema.PrimaryKey.Select(_mapper.Column).ToList();

    public static async Task UninstallAsync(NpgsqlDataSource data, TablePlan plan, CancellationToken cancellationToken)
    {
        await using var sql = await PostgresConnectionFactory.OpenAsync(data, "source", cancellationToken).ConfigureAwait(false);
        await using (var drop = new NpgsqlCommand("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", sql))
        {
            drop.Parameters.Add(new NpgsqlParameter<string> { TypedValue = plan.SlotName });
            await drop.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await using var publication = new NpgsqlCommand($"DROP PUBLICATION IF EXISTS {PostgresSql.Quote(plan.PublicationName)}", sql);
        await publication.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The slot's WAL retention and state, for <c>status</c>; null when it does not exist.</summary>
    public static async Task<string?> DescribeSlotAsync(NpgsqlDataSource data, TablePlan plan, CancellationToken cancellationToken)
    {
        await using var sql = await PostgresConnectionFactory.OpenAsync(data, "source", cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(
            "SELECT active, wal_status, confirmed_flush_lsn::text, pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) FROM pg_replication_slots WHERE slot_name = $1",
            sql);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = plan.SlotName });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            return $"slot {plan.SlotName}: missing (the next run re-snapshots the table)";
        }

        string? Text(int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);
        return DescribeSlot(plan.SlotName, reader.GetBoolean(0), Text(1), Text(2), Text(3));
    }

    /// <summary>
    /// A slot's line for <c>status</c>. A slot whose WAL was removed (<c>wal_status</c> lost, beyond
    /// <c>max_slot_wal_keep_size</c>) has no <c>restart_lsn</c>, so it retains nothing; the next run recreates it and
    /// re-snapshots the table.
    /// </summary>
    internal static string DescribeSlot(string slotName, bool active, string? walStatus, string? confirmed, string? retained)
    {
        var text = new StringBuilder().Append(CultureInfo.InvariantCulture, $"slot {slotName}: {(active ? "active" : "idle")}, wal_status {walStatus ?? "unknown"}");
        if (walStatus == "lost")
        {
            text.Append(" (the WAL it still needed was removed, max_slot_wal_keep_size?: the next run recreates the slot and re-snapshots the table)");
        }

        if (confirmed is not null)
        {
            text.Append(CultureInfo.InvariantCulture, $", confirmed {confirmed}");
        }

        if (retained is not null)
        {
            text.Append(CultureInfo.InvariantCulture, $", retains {retained} of WAL");
        }

        return text.ToString();
    }

    /// <summary>Log capture needs <c>wal_level = logical</c>; say so plainly instead of failing at slot creation.</summary>
    private async Task RequireLogicalWalAsync(NpgsqlConnection sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT current_setting('wal_level')", sql);
        var level = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string;
        if (level != "logical")
        {
            throw new SyncException(
                ErrorClass.Fatal,
                $"table '{_request.Plan.Table}': cdc_method changelog reads the write-ahead log, but the source server runs with wal_level = {level}; " +
                "set wal_level = logical (ALTER SYSTEM SET wal_level = logical, then restart the server) or choose another cdc_method (trigger, timestamp, version, polling)");
        }
    }

    /// <summary>
    /// Creates the table's publication, or adds the table to it, when needed; says what was missing (null when the table
    /// was published already, or a concurrent run published it).
    /// </summary>
    private async Task<string?> EnsurePublicationAsync(NpgsqlConnection sql, CancellationToken cancellationToken)
    {
        await using var exists = new NpgsqlCommand(
            "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1), EXISTS (SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 AND tablename = $3)",
            sql);
        exists.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _publication });
        exists.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _mapper.Table.Schema });
        exists.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _mapper.Table.Name });
        bool publication, member;
        await using (var reader = await exists.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            publication = reader.GetBoolean(0);
            member = reader.GetBoolean(1);
        }

        if (member)
        {
            return null;
        }

        // A table without a key publishes only inserts and TRUNCATE (unless it logs whole rows): publishing its updates
        // and deletes would make PostgreSQL refuse them for want of a replica identity.
        var insertOnly = Keyless && !_mapper.Table.ReplicaIdentityFull ? " WITH (publish = 'insert, truncate')" : "";
        var ddl = publication
            ? $"ALTER PUBLICATION {PostgresSql.Quote(_publication)} ADD TABLE {_mapper.Table.QualifiedName}"
            : $"CREATE PUBLICATION {PostgresSql.Quote(_publication)} FOR TABLE {_mapper.Table.QualifiedName}{insertOnly}";
        try
        {
            await using var create = new NpgsqlCommand(ddl, sql);
            await create.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState == "42710")
        {
            // Created by a concurrent run meanwhile.
            return null;
        }
        catch (PostgresException e)
        {
            throw PostgresConnectionFactory.Classify(e, $"cannot create publication '{_publication}' for '{_request.Plan.Table}' (the sync user must own the table, or create the publication beforehand)");
        }

        return publication ? "no longer included the table" : "no longer existed";
    }

    private async Task<(bool Lost, bool Active, NpgsqlLogSequenceNumber? Confirmed)?> SlotAsync(NpgsqlConnection sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT coalesce(wal_status, '') = 'lost', active, plugin, confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = $1", sql);
        command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _slot });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        if (!reader.IsDBNull(2) && reader.GetString(2) != "pgoutput")
        {
            throw new SyncException(ErrorClass.Fatal, $"replication slot '{_slot}' exists but uses the '{reader.GetString(2)}' plugin; DeltaSync needs pgoutput (set cdc.changelog.slot_name to another name)");
        }

        return (reader.GetBoolean(0), reader.GetBoolean(1), reader.IsDBNull(3) ? null : reader.GetFieldValue<NpgsqlLogSequenceNumber>(3));
    }

    /// <summary>The log position a checkpoint resumes the stream from (a snapshot in progress: its continuation).</summary>
    private static NpgsqlLogSequenceNumber? LogPosition(Position position)
    {
        var log = SnapshotPosition.TryParse(position, out _, out var continuation) ? continuation : position;
        return log.Kind == Kind && NpgsqlLogSequenceNumber.TryParse(log.Value, out var lsn) ? lsn : null;
    }

    private async Task DropSlotAsync(NpgsqlConnection sql, CancellationToken cancellationToken)
    {
        await using var drop = new NpgsqlCommand("SELECT pg_drop_replication_slot($1)", sql);
        drop.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _slot });
        try
        {
            await drop.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState == "55006")
        {
            throw new SyncException(ErrorClass.Transient, $"replication slot '{_slot}' is in use by another process; is another DeltaSync worker syncing '{_request.Plan.Table}'?", e);
        }
    }

    /// <summary>Drops the slot once the walsender that just stopped streaming it has let go of it (a moment at most).</summary>
    private async Task DropReleasedSlotAsync(NpgsqlConnection sql, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await DropSlotAsync(sql, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (SyncException) when (attempt < 25)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task OpenReplicationAsync(LogicalReplicationConnection replication, CancellationToken cancellationToken)
    {
        try
        {
            await replication.Open(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
        {
            throw PostgresConnectionFactory.Classify(e, $"cannot open a replication connection to {PostgresConnectionFactory.Describe(_replicationConnection)} (the user needs the REPLICATION attribute and pg_hba.conf must allow it)");
        }
    }

    /// <summary>
    /// Copies the table in key order — in the slot's exported snapshot when given — merged with the ledger, so a
    /// re-snapshot also finds rows deleted since they were synced.
    /// </summary>
    private async IAsyncEnumerable<ChangeBatch> SnapshotAsync(NpgsqlConnection sql, string? snapshotName, RecordKey? after, Position then, List<string> warnings, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (Keyless)
        {
            warnings.Add($"'{_request.Plan.Table}' has no primary key: rows are identified by where they were inserted ({PostgresCatalog.RowIdColumn} at the destination); only inserts and TRUNCATE are synced{(_mapper.Table.ReplicaIdentityFull ? ", updates and deletes are reported and skipped" : "")}");
        }

        var rows = SnapshotRowsAsync(sql, snapshotName, after, then, cancellationToken);
        var ledger = LedgerKeyValues.Prepare(_request.Ledger.ScanAsync(_request.Scope, cancellationToken), KeyColumns());
        if (after is not null)
        {
            ledger = ledger.Where(e => e.Key.CompareTo(after) > 0);
        }

        var changes = LedgerDiff.DiffAsync(rows, ledger, DiffMode.RowHash, _request.Schema.Name, _request.Plan.SourceName, cancellationToken);
        var events = new List<ChangeEvent>(_request.BatchSize);
        var last = after;
        await foreach (var change in changes.ConfigureAwait(false))
        {
            events.Add(change);
            last = change.Key;
            if (events.Count >= _request.BatchSize)
            {
                // A keyless table's snapshot cannot resume at a key: if cut short it is taken again (the ledger
                // comparison removes the rows of the first attempt).
                yield return Batch(events, Keyless ? Position.None : SnapshotPosition.Create(last, then), warnings);
                events = new List<ChangeEvent>(_request.BatchSize);
            }
        }

        yield return Batch(events, then, warnings);
    }

    private async IAsyncEnumerable<ChangeEvent> SnapshotRowsAsync(NpgsqlConnection sql, string? snapshotName, RecordKey? after, Position then, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var transaction = await sql.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
        if (snapshotName is not null)
        {
            // SET TRANSACTION SNAPSHOT takes no parameters: the name comes from the server and is checked to be one.
            if (!SnapshotName().IsMatch(snapshotName))
            {
                throw new SyncException(ErrorClass.Fatal, $"unexpected snapshot name '{snapshotName}' from the server");
            }

            await using var set = new NpgsqlCommand($"SET TRANSACTION SNAPSHOT '{snapshotName}'", sql, transaction);
            await set.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await using var command = new NpgsqlCommand { Connection = sql, Transaction = transaction };
        var where = after is null ? "" : " WHERE " + _mapper.KeyAfter(after, command);
        command.CommandText = $"SELECT {_mapper.SelectList()} FROM {_mapper.Table.QualifiedName}{where} ORDER BY {_mapper.KeyOrder()}";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var rowId = _mapper.RowIdIndex;
        var lsn = rowId >= 0 ? Lsn(then) : "";
        long ordinal = 0;
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var values = _mapper.ReadValues(reader);
            if (rowId >= 0)
            {
                values[rowId] = string.Create(CultureInfo.InvariantCulture, $"s:{lsn}:{++ordinal:D12}");
            }

            yield return _mapper.Upsert(values, Position.None, null);
        }
    }

    /// <summary>
    /// One pass of the log: from <paramref name="start"/> up to a marker written now, in whole transactions. With a
    /// snapshot in progress, its chunks are taken first, one after another between reads of the log, and the pass's
    /// marker is written once the last one is emitted.
    /// </summary>
    private async IAsyncEnumerable<ChangeBatch> StreamAsync(NpgsqlConnection sql, NpgsqlLogSequenceNumber start, WalSnapshotChunks? chunks, List<string> warnings, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string? marker = null;
        if (chunks is null)
        {
            marker = "pass " + Guid.NewGuid().ToString("N");
            await EmitMarkerAsync(sql, marker, cancellationToken).ConfigureAwait(false);
        }

        // The previous pass's stream when it stands exactly here (run --follow) in the format the table needs, else a
        // new one from the checkpoint.
        var stream = await _streams.TakeAsync(_slot, new Position(Kind, start.ToString())).ConfigureAwait(false);
        if (stream is not null && stream.Binary != StreamsBinary)
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            stream = null;
        }

        stream ??= await OpenStreamAsync(start, cancellationToken).ConfigureAwait(false);

        _stream = stream;
        // The stream outlives the pass; stopping the pass stops reading it (and it is then closed, not kept).
        using var stopReading = cancellationToken.Register(() => stream.Stop.Cancel());
        var replication = stream.Replication;
        var pending = new List<ChangeEvent>(_request.BatchSize);
        var transaction = new List<RowChange>();
        var truncated = false;
        var pendingTruncate = false;
        Position? last = null;
        Instant? highWaterMark = _request.HighWaterMark;
        var relationIds = stream.RelationIds;
        var columnMap = stream.ColumnMap;
        var enumerator = stream.Messages;
        var acknowledged = false;
        uint xid = 0;
        if (chunks is not null)
        {
            await TakeChunkAsync(sql, chunks, cancellationToken).ConfigureAwait(false);
        }

        // Until the snapshot is complete a checkpoint also says how far it got.
        Position Checkpoint(Position log) => chunks is null ? log : SnapshotPosition.Create(chunks.LastKey, log);

        while (true)
        {
            bool more;
            try
            {
                more = await enumerator.MoveNextAsync().ConfigureAwait(false);
            }
            catch (PostgresException e) when (e.SqlState == "42704" && e.MessageText.Contains($"\"{_publication}\"", StringComparison.Ordinal))
            {
                // The publication was dropped and created again outside DeltaSync: the slot decodes its log through the
                // publications as they were, where this one does not exist, and would fail so on every run. Only a new
                // slot (and so a re-snapshot, which the next pass takes on finding the slot gone) gets past it.
                _stream = null;
                await stream.DisposeAsync().ConfigureAwait(false);
                await DropReleasedSlotAsync(sql, cancellationToken).ConfigureAwait(false);
                throw new SyncException(
                    ErrorClass.Transient,
                    $"cannot stream the log of '{_request.Plan.Table}' from slot '{_slot}': the publication '{_publication}' did not exist at the slot's position (dropped and created again outside DeltaSync?); "
                    + "the slot was dropped, and the next run recreates it and re-snapshots the table",
                    e);
            }
            catch (PostgresException e)
            {
                throw PostgresConnectionFactory.Classify(e, $"cannot stream the log of '{_request.Plan.Table}' from slot '{_slot}'");
            }

            if (!more)
            {
                break;
            }

            if (!acknowledged)
            {
                // The resume position is checkpointed: say so at once, so the walsender can move the slot's restart
                // point on as it decodes (instead of every pass decoding again from an old restart point).
                replication.SetReplicationStatus(start);
                await replication.SendStatusUpdate(cancellationToken).ConfigureAwait(false);
                acknowledged = true;
            }

            switch (enumerator.Current)
            {
                case BeginMessage begin:
                    xid = begin.TransactionXid;
                    transaction.Clear();
                    truncated = false;
                    break;
                case RelationMessage relation when IsOurs(relation):
                    relationIds.Add(relation.RelationId);
                    if (!SameColumns(relation))
                    {
                        if (pending.Count > 0)
                        {
                            yield return Batch(pending, Checkpoint(last!.Value), warnings, highWaterMark, pendingTruncate);
                            pending = new List<ChangeEvent>(_request.BatchSize);
                            pendingTruncate = false;
                        }

                        var before = _mapper.Schema;
                        await RedescribeAsync(cancellationToken).ConfigureAwait(false);
                        chunks?.Discard();
                        // DDL inside a transaction: the changes read before it take the new shape too.
                        for (var r = 0; r < transaction.Count; r++)
                        {
                            transaction[r] = Reshape(transaction[r], before);
                        }
                    }

                    if (stream.Binary && !StreamsBinary)
                    {
                        // The table gained a column whose binary form has no faithful CLR value: read on in text,
                        // from the last transaction taken (this one is read again).
                        await stream.DisposeAsync().ConfigureAwait(false);
                        var from = last is { } taken && NpgsqlLogSequenceNumber.TryParse(taken.Value, out var takenLsn) ? takenLsn : start;
                        stream = _stream = await OpenStreamAsync(from, cancellationToken).ConfigureAwait(false);
                        replication = stream.Replication;
                        relationIds = stream.RelationIds;
                        columnMap = stream.ColumnMap;
                        enumerator = stream.Messages;
                        transaction.Clear();
                        truncated = false;
                        break;
                    }

                    // The log's columns by name into the schema's order (-1: not in the schema).
                    columnMap = stream.ColumnMap = relation.Columns.Select(c => _mapper.Schema.IndexOf(c.ColumnName)).ToArray();
                    break;
                case InsertMessage insert when relationIds.Contains(insert.Relation.RelationId):
                    transaction.Add(await ReadRowAsync(insert.NewRow, columnMap, ChangeOperation.Upsert, cancellationToken).ConfigureAwait(false));
                    break;
                case FullUpdateMessage full when relationIds.Contains(full.Relation.RelationId):
                    var oldRow = await ReadRowAsync(full.OldRow, columnMap, ChangeOperation.Delete, cancellationToken).ConfigureAwait(false);
                    var newRow = await ReadRowAsync(full.NewRow, columnMap, ChangeOperation.Upsert, cancellationToken).ConfigureAwait(false);
                    if (!oldRow.Key.Equals(newRow.Key))
                    {
                        transaction.Add(oldRow);
                    }

                    transaction.Add(newRow with { IsUpdate = true });
                    break;
                case IndexUpdateMessage keyed when relationIds.Contains(keyed.Relation.RelationId):
                    // The key changed: the old key's record goes away, the new one appears.
                    transaction.Add(await ReadRowAsync(keyed.Key, columnMap, ChangeOperation.Delete, cancellationToken).ConfigureAwait(false));
                    transaction.Add(await ReadRowAsync(keyed.NewRow, columnMap, ChangeOperation.Upsert, cancellationToken).ConfigureAwait(false) with { IsUpdate = true });
                    break;
                case UpdateMessage update when relationIds.Contains(update.Relation.RelationId):
                    transaction.Add(await ReadRowAsync(update.NewRow, columnMap, ChangeOperation.Upsert, cancellationToken).ConfigureAwait(false) with { IsUpdate = true });
                    break;
                case KeyDeleteMessage delete when relationIds.Contains(delete.Relation.RelationId):
                    transaction.Add(await ReadRowAsync(delete.Key, columnMap, ChangeOperation.Delete, cancellationToken).ConfigureAwait(false));
                    break;
                case FullDeleteMessage delete when relationIds.Contains(delete.Relation.RelationId):
                    transaction.Add(await ReadRowAsync(delete.OldRow, columnMap, ChangeOperation.Delete, cancellationToken).ConfigureAwait(false));
                    break;
                case TruncateMessage truncate when truncate.Relations.Any(r => relationIds.Contains(r.RelationId) || IsOurs(r)):
                    // Everything before it in this transaction is gone too; earlier transactions are applied first.
                    transaction.Clear();
                    truncated = true;
                    if (pending.Count > 0)
                    {
                        yield return Batch(pending, Checkpoint(last!.Value), warnings, highWaterMark, pendingTruncate);
                        pending = new List<ChangeEvent>(_request.BatchSize);
                        pendingTruncate = false;
                    }

                    break;
                case CommitMessage commit:
                    var logPosition = new Position(Kind, commit.TransactionEndLsn.ToString());
                    var position = Checkpoint(logPosition);
                    var committedAt = Instant.FromDateTimeUtc(DateTime.SpecifyKind(commit.TransactionCommitTimestamp, DateTimeKind.Utc));
                    if (transaction.Count > 0 || truncated)
                    {
                        if (truncated && pending.Count > 0)
                        {
                            yield return Batch(pending, Checkpoint(last!.Value), warnings, highWaterMark, pendingTruncate);
                            pending = new List<ChangeEvent>(_request.BatchSize);
                        }

                        pendingTruncate |= truncated;
                        chunks?.Consumed(xid);
                        if (Keyless)
                        {
                            IdentifyKeylessRows(transaction, commit.TransactionEndLsn, warnings);
                        }

                        await FillUnchangedToastAsync(sql, transaction, cancellationToken).ConfigureAwait(false);
                        if (truncated)
                        {
                            chunks?.Truncated();
                        }

                        foreach (var row in transaction)
                        {
                            // The log's version of a row of the open chunk is as new as the chunk's, or newer.
                            chunks?.Touch(row.Key);
                            pending.Add(row.ToEvent(_mapper, logPosition, committedAt));
                        }

                        if (highWaterMark is null || committedAt > highWaterMark)
                        {
                            highWaterMark = committedAt;
                        }
                    }

                    transaction.Clear();
                    truncated = false;
                    last = logPosition;
                    if (pending.Count >= _request.BatchSize)
                    {
                        yield return Batch(pending, position, warnings, highWaterMark, pendingTruncate);
                        pending = new List<ChangeEvent>(_request.BatchSize);
                        pendingTruncate = false;
                    }

                    break;
                case LogicalDecodingMessage message when message.Prefix == MarkerPrefix:
                    string text;
                    using (var reader = new StreamReader(message.Data))
                    {
                        text = await reader.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
                    }

                    var end = NpgsqlLogSequenceNumber.Larger(message.MessageLsn, last is { } l && NpgsqlLogSequenceNumber.TryParse(l.Value, out var lsn) ? lsn : start);
                    var endPosition = new Position(Kind, end.ToString());
                    if (chunks is not null && text == chunks.High)
                    {
                        // The chunk's HIGH marker: every change the log made to its rows since it was selected is
                        // read (and pending or applied), so the rest of the chunk is emitted now.
                        var isLast = chunks.IsLast;
                        var chunkEvents = chunks.Close(_request.Schema.Name, _request.Plan.SourceName, cancellationToken);
                        if (chunkEvents is not null)
                        {
                            await foreach (var change in chunkEvents.ConfigureAwait(false))
                            {
                                pending.Add(change);
                                if (pending.Count >= _request.BatchSize)
                                {
                                    yield return Batch(pending, SnapshotPosition.Create(change.Key, endPosition), warnings, highWaterMark, pendingTruncate);
                                    pending = new List<ChangeEvent>(_request.BatchSize);
                                    pendingTruncate = false;
                                }
                            }

                            if (isLast)
                            {
                                // The snapshot is complete: from here on the pass is a pass like any other.
                                if (chunks.Emitted > 1 || chunks.Resumed)
                                {
                                    warnings.Add(string.Create(
                                        CultureInfo.InvariantCulture,
                                        $"'{_request.Plan.Table}' was snapshotted in {chunks.Emitted} chunk(s) of up to {chunks.ChunkSize} rows{(chunks.Resumed ? " (continuing an interrupted snapshot)" : "")}, read between the log's transactions (low/high watermarks) so the slot held WAL for one chunk at a time"));
                                }

                                yield return Batch(pending, endPosition, warnings, highWaterMark, pendingTruncate);
                                pending = new List<ChangeEvent>(_request.BatchSize);
                                pendingTruncate = false;
                                await chunks.DisposeAsync().ConfigureAwait(false);
                                chunks = _chunks = null;
                                marker = "pass " + Guid.NewGuid().ToString("N");
                                await EmitMarkerAsync(sql, marker, cancellationToken).ConfigureAwait(false);
                                break;
                            }

                            yield return Batch(pending, SnapshotPosition.Create(chunks.LastKey, endPosition), warnings, highWaterMark, pendingTruncate);
                            pending = new List<ChangeEvent>(_request.BatchSize);
                            pendingTruncate = false;
                            await AcknowledgeAppliedAsync(replication, end, cancellationToken).ConfigureAwait(false);
                        }

                        await TakeChunkAsync(sql, chunks, cancellationToken).ConfigureAwait(false);
                        break;
                    }

                    if (marker is null || text != marker)
                    {
                        break;
                    }

                    // Caught up with the log as of the start of this pass.
                    stream.Position = endPosition;
                    yield return Batch(pending, stream.Position, warnings, highWaterMark, pendingTruncate);
                    yield break;
            }
        }
    }

    /// <summary>
    /// Whether the log can be streamed in binary: when every column's type is one Npgsql maps. Another type's binary
    /// form becomes a CLR value whose text is not PostgreSQL's (an inet's netmask, an interval's fields are lost), and
    /// pgoutput's format is one for the whole stream, so such a table's log comes as text, as its snapshot does.
    /// </summary>
    private bool StreamsBinary => _mapper.Table.Columns.All(c => c.IsVirtual || c.IsNative);

    /// <summary>A replication stream of the slot from <paramref name="start"/>, in the format the table needs now.</summary>
    private async Task<WalStream> OpenStreamAsync(NpgsqlLogSequenceNumber start, CancellationToken cancellationToken)
    {
        var connection = new LogicalReplicationConnection(_replicationConnection);
        try
        {
            await OpenReplicationAsync(connection, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        var binary = StreamsBinary;
        var options = new PgOutputReplicationOptions(_publication, PgOutputProtocolVersion.V1, binary: binary, messages: true);
        var streamStop = new CancellationTokenSource();
        var started = connection.StartReplication(new PgOutputReplicationSlot(_slot), options, streamStop.Token, start);
        return new WalStream(connection, started.GetAsyncEnumerator(streamStop.Token), streamStop, binary);
    }

    /// <summary>
    /// Writes a marker into the log. Transactional, and committed with synchronous_commit on: the commit flushes the
    /// WAL up to it, and logical decoding sends only flushed WAL, so a server running with synchronous_commit off
    /// does not hold the pass back until its WAL writer gets round to it. It is decoded in commit order, after every
    /// transaction that committed before it.
    /// </summary>
    private static async Task EmitMarkerAsync(NpgsqlConnection sql, string marker, CancellationToken cancellationToken)
    {
        await using var markerTransaction = await sql.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using (var flush = new NpgsqlCommand("SET LOCAL synchronous_commit = on", sql, markerTransaction))
        {
            await flush.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await using var emit = new NpgsqlCommand("SELECT pg_logical_emit_message(true, $1, $2)", sql, markerTransaction);
        emit.Parameters.Add(new NpgsqlParameter<string> { TypedValue = MarkerPrefix });
        emit.Parameters.Add(new NpgsqlParameter<string> { TypedValue = marker });
        await emit.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        await markerTransaction.CommitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Selects the next chunk of the snapshot between a LOW and a HIGH marker. Reading the log paused at a transaction
    /// boundary before the LOW marker; every transaction the chunk's statement cannot see commits after that point and
    /// before the HIGH marker (then the log's version replaces the chunk's) or after it (then it is applied after the
    /// chunk). The window from the pause to the LOW marker only holds transactions the chunk sees as well: taking
    /// their keys out of the chunk too just prefers the log's equal version.
    /// </summary>
    private async Task TakeChunkAsync(NpgsqlConnection sql, WalSnapshotChunks chunks, CancellationToken cancellationToken)
    {
        var id = Guid.NewGuid().ToString("N");
        await EmitMarkerAsync(sql, "low:" + id, cancellationToken).ConfigureAwait(false);
        var rows = new List<ChangeEvent>(Math.Min(chunks.ChunkSize, 4096));
        bool settled;
        await using (var transaction = await sql.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false))
        {
            // The chunk's snapshot, taken by this first statement, must see every transaction already read from the log.
            await using (var snapshot = new NpgsqlCommand(
                "SELECT pg_snapshot_xmin(s)::text::bigint, pg_snapshot_xmax(s)::text::bigint, ARRAY(SELECT x::text::bigint FROM pg_snapshot_xip(s) x) FROM pg_current_snapshot() s",
                sql,
                transaction))
            await using (var reader = await snapshot.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                var inProgress = reader.GetFieldValue<long[]>(2).Select(x => (ulong)x).ToHashSet();
                settled = chunks.Settle((ulong)reader.GetInt64(0), (ulong)reader.GetInt64(1), inProgress);
            }

            await using var command = new NpgsqlCommand { Connection = sql, Transaction = transaction };
            var where = chunks.LastKey is null ? "" : " WHERE " + _mapper.KeyAfter(chunks.LastKey, command);
            command.CommandText = string.Create(
                CultureInfo.InvariantCulture,
                $"SELECT {_mapper.SelectList()} FROM {_mapper.Table.QualifiedName}{where} ORDER BY {_mapper.KeyOrder()} LIMIT {chunks.ChunkSize}");
            await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    rows.Add(_mapper.Upsert(_mapper.ReadValues(reader), Position.None, null));
                }
            }

            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        if (ChunkSelected is { } selected)
        {
            await selected(cancellationToken).ConfigureAwait(false);
        }

        await EmitMarkerAsync(sql, "high:" + id, cancellationToken).ConfigureAwait(false);
        chunks.Open(rows, "high:" + id, settled);
    }

    /// <summary>
    /// Between chunks: once the pipeline has applied every batch yielded so far (their checkpoints commit with the
    /// data), the server is told it may let go of the WAL before <paramref name="lsn"/>, so the slot holds WAL for one
    /// chunk's window rather than for the whole snapshot. Without a way to know what is applied nothing is said; the
    /// slot then moves at the end of the pass, as always.
    /// </summary>
    private async Task AcknowledgeAppliedAsync(LogicalReplicationConnection replication, NpgsqlLogSequenceNumber lsn, CancellationToken cancellationToken)
    {
        if (_request.WaitForApplied is not { } applied)
        {
            return;
        }

        await applied(cancellationToken).ConfigureAwait(false);
        replication.SetReplicationStatus(lsn);
        await replication.SendStatusUpdate(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The table has no key: rows are identified by where they were inserted (<see cref="PostgresCatalog.RowIdColumn"/>).</summary>
    private bool Keyless => _mapper.RowIdIndex >= 0;

    private bool IsOurs(RelationMessage relation) =>
        relation.Namespace == _mapper.Table.Schema && relation.RelationName == _mapper.Table.Name;

    private bool SameColumns(RelationMessage relation) =>
        relation.Columns.Select(c => c.ColumnName).SequenceEqual(_mapper.Schema.Columns.Select(c => c.Name), StringComparer.Ordinal);

    /// <summary>
    /// Gives each insert of a keyless table its identity — the transaction's commit position and its place in it, the
    /// same on every replay — and drops updates and deletes, which cannot be matched to a row, with a warning.
    /// </summary>
    private void IdentifyKeylessRows(List<RowChange> transaction, NpgsqlLogSequenceNumber commit, List<string> warnings)
    {
        var rowId = _mapper.RowIdIndex;
        var lsn = ((ulong)commit).ToString("X16", CultureInfo.InvariantCulture);
        var n = 0;
        for (var i = 0; i < transaction.Count; i++)
        {
            var row = transaction[i];
            if (row.Operation == ChangeOperation.Delete || row.IsUpdate)
            {
                var warning = $"'{_request.Plan.Table}' has no primary key: updates and deletes on it cannot be matched to a destination row and were skipped";
                if (!warnings.Contains(warning))
                {
                    warnings.Add(warning);
                }

                transaction.RemoveAt(i--);
                continue;
            }

            row.Values[rowId] = string.Create(CultureInfo.InvariantCulture, $"w:{lsn}:{++n:D10}");
            transaction[i] = row with { Key = _mapper.Schema.KeyOf(row.Values) };
        }
    }

    private static string Lsn(Position position) =>
        NpgsqlLogSequenceNumber.TryParse(position.Value, out var lsn) ? ((ulong)lsn).ToString("X16", CultureInfo.InvariantCulture) : position.Value;

    /// <summary>A row read in an older shape of the table, in the current one: columns matched by name, new ones completed from the source.</summary>
    private RowChange Reshape(RowChange row, TableSchema before)
    {
        var schema = _mapper.Schema;
        var values = new object?[schema.Columns.Count];
        var unchanged = new List<int>();
        for (var c = 0; c < values.Length; c++)
        {
            var old = before.IndexOf(schema.Columns[c].Name);
            if (old >= 0 && row.Unchanged?.Contains(old) != true)
            {
                values[c] = row.Values[old];
            }
            else if (c != _mapper.RowIdIndex)
            {
                unchanged.Add(c);
            }
        }

        return row with { Values = values, Key = schema.KeyOf(values), Unchanged = unchanged };
    }

    /// <summary>The table changed shape in the log (a column added or dropped): read its new shape from the catalog.</summary>
    private async Task RedescribeAsync(CancellationToken cancellationToken)
    {
        await using var sql = await PostgresConnectionFactory.OpenAsync(_data, "source", cancellationToken).ConfigureAwait(false);
        var (table, schema) = await PostgresCatalog.DescribeAsync(sql, _options, "source", cancellationToken).ConfigureAwait(false);
        _mapper = new PostgresRowMapper(table, schema, _request.Plan.SourceName);
    }

    /// <summary>
    /// Reads a tuple (in the log's column order) into the schema's column order. Schema columns the tuple does not
    /// carry — an unchanged TOASTed value, or a column the log's older shape of the table lacked — are completed from
    /// the source before the transaction is handed on.
    /// </summary>
    private async Task<RowChange> ReadRowAsync(ReplicationTuple tuple, int[] columnMap, ChangeOperation operation, CancellationToken cancellationToken)
    {
        var schema = _mapper.Schema;
        var values = new object?[schema.Columns.Count];
        var seen = new bool[values.Length];
        List<int>? unchanged = null;
        var i = 0;
        await foreach (var value in tuple.WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            var target = i < columnMap.Length ? columnMap[i] : -1;
            i++;
            if (target < 0)
            {
                continue;
            }

            seen[target] = true;
            if (value.IsUnchangedToastedValue)
            {
                (unchanged ??= []).Add(target);
            }
            else
            {
                values[target] = await PostgresValues.ReadAsync(value, _mapper.ColumnAt(target), cancellationToken).ConfigureAwait(false);
            }
        }

        var rowId = _mapper.RowIdIndex;
        for (var c = 0; c < seen.Length; c++)
        {
            if (!seen[c] && c != rowId)
            {
                (unchanged ??= []).Add(c);
            }
        }

        return new RowChange(operation, schema.KeyOf(values), values, unchanged);
    }

    /// <summary>
    /// An update that left a large (TOASTed) value untouched does not carry it. The row is completed from the source;
    /// should the value have changed since, that later change is further on in the log and is applied after this one.
    /// </summary>
    private async Task FillUnchangedToastAsync(NpgsqlConnection sql, List<RowChange> rows, CancellationToken cancellationToken)
    {
        foreach (var row in rows.Where(r => r.Unchanged is { Count: > 0 } && r.Operation != ChangeOperation.Delete))
        {
            await using var command = new NpgsqlCommand { Connection = sql };
            command.CommandText = $"SELECT {_mapper.SelectList()} FROM {_mapper.Table.QualifiedName} WHERE {_mapper.KeyAfter(row.Key, command, "=")}";
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var current = _mapper.ReadValues(reader);
                foreach (var index in row.Unchanged!)
                {
                    row.Values[index] = current[index];
                }
            }
        }
    }

    private ChangeBatch Batch(List<ChangeEvent> events, Position position, List<string> warnings, Instant? highWaterMark = null, bool truncateFirst = false) =>
        new(_mapper.Schema, events, position)
        {
            HighWaterMark = highWaterMark ?? _request.HighWaterMark,
            Warnings = [.. warnings],
            TruncateFirst = truncateFirst,
            InCommitOrder = true,
        };

    [GeneratedRegex("^[0-9A-Fa-f]+(-[0-9A-Fa-f]+)+$")]
    private static partial Regex SnapshotName();

    /// <summary>One row change of a transaction still being read.</summary>
    private sealed record RowChange(ChangeOperation Operation, RecordKey Key, object?[] Values, List<int>? Unchanged)
    {
        /// <summary>The new row of an update (as opposed to an insert).</summary>
        public bool IsUpdate { get; init; }

        public ChangeEvent ToEvent(PostgresRowMapper mapper, Position position, Instant commitTime) =>
            Operation == ChangeOperation.Delete
                ? mapper.Delete(Key, position, commitTime)
                // Values completed from the source (unchanged TOAST) are keyed again; otherwise the key read with them stands.
                : mapper.Upsert(Values, position, commitTime, key: Unchanged is { Count: > 0 } ? null : Key);
    }
}
