using System.Globalization;
using System.Runtime.CompilerServices;
using DeltaSync.Core.Capture;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Postgres.Source;
using Npgsql;
using NodaTime;

namespace DeltaSync.Postgres.Capture;

/// <summary>
/// Polling CDC (row hash) and per-row version CDC on PostgreSQL: each pass reads the table in key order in one
/// snapshot and merges it with the ledger (<see cref="LedgerDiff"/>), finding inserts, updates and hard deletes.
/// A full pass sees every committed row, so rows committed late are simply found by the next pass.
/// </summary>
internal sealed class PostgresDiffCapture : IChangeCapture
{
    private readonly NpgsqlDataSource _data;
    private readonly CaptureRequest _request;
    private readonly PostgresRowMapper _mapper;
    private readonly DiffMode _mode;
    private readonly int _versionIndex = -1;
    private readonly IClock _clock;

    public PostgresDiffCapture(NpgsqlDataSource data, CaptureRequest request, PgTable table, DiffMode mode, IClock clock)
    {
        _data = data;
        _request = request;
        _mapper = new PostgresRowMapper(table, request.Schema, request.Plan.SourceName);
        _mode = mode;
        _clock = clock;
        if (mode == DiffMode.Version)
        {
            var field = request.Plan.VersionField ?? "version";
            _versionIndex = request.Schema.IndexOf(field);
            if (_versionIndex < 0)
            {
                throw new SyncException(ErrorClass.Fatal, $"table '{request.Plan.Table}': version_field '{field}' is not a column");
            }
        }
    }

    /// <summary>
    /// Whether the pass compares by the source's digests alone: a polling pass over a scope whose ledger holds them (a
    /// bulk load built it). The table is then read as keys and digests, and whole rows only for the keys that differ.
    /// </summary>
    private bool ByDigest => _request.SourceDigests && _mode == DiffMode.RowHash && _mapper.RowIdIndex < 0;

    public IAsyncEnumerable<ChangeBatch> ReadAsync(CancellationToken cancellationToken)
    {
        var filter = (Func<IAsyncEnumerable<Core.Ledger.LedgerEntry>, IAsyncEnumerable<Core.Ledger.LedgerEntry>>)(entries =>
            LedgerKeyValues.Prepare(entries, _request.Schema.PrimaryKey.Select(_mapper.Column).ToList()));
        var now = _clock.GetCurrentInstant();
        return ByDigest
            ? LedgerDiff.PassAsync(ByDigestAsync, _request, now, cancellationToken, filter)
            : LedgerDiff.PassAsync(SourceRowsAsync(cancellationToken), _request, _mode, now, cancellationToken, filter);
    }

    /// <summary>
    /// The digest pass, in one REPEATABLE READ snapshot: a cursor over the table's keys and row digests in key order
    /// (<see cref="PostgresRowMapper.DigestSql"/>, computed by the server; no column value crosses the wire), merged
    /// with the ledger; then, a batch's worth at a time, the whole rows of the keys whose digest differs from their
    /// entry, read by key in the same snapshot. A table where nothing changed costs the client one key and one
    /// number per row.
    /// </summary>
    private async IAsyncEnumerable<ChangeEvent> ByDigestAsync(IAsyncEnumerable<Core.Ledger.LedgerEntry> ledger, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var connection = await PostgresConnectionFactory.OpenAsync(_data, "source", cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
        await using (var declare = new NpgsqlCommand(
            $"DECLARE deltasync_digests NO SCROLL CURSOR FOR SELECT {_mapper.KeySelectList()}, {_mapper.DigestSql()} FROM {_mapper.Table.QualifiedName} ORDER BY {_mapper.KeyOrder()}",
            connection,
            transaction))
        {
            await declare.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        var changed = new List<ChangeEvent>(_request.BatchSize);
        await foreach (var change in LedgerDiff.DiffAsync(DigestsAsync(connection, transaction, cancellationToken), ledger, DiffMode.RowHash, _request.Schema.Name, _request.Plan.SourceName, cancellationToken).ConfigureAwait(false))
        {
            if (change.Operation == ChangeOperation.Delete)
            {
                yield return change;
                continue;
            }

            changed.Add(change);
            if (changed.Count >= _request.BatchSize)
            {
                foreach (var row in await RowsAsync(connection, transaction, changed, cancellationToken).ConfigureAwait(false))
                {
                    yield return row;
                }

                changed.Clear();
            }
        }

        foreach (var row in await RowsAsync(connection, transaction, changed, cancellationToken).ConfigureAwait(false))
        {
            yield return row;
        }
    }

    /// <summary>Keys and digests from the pass's cursor, a fetch at a time (read whole, so the connection is free between fetches).</summary>
    private async IAsyncEnumerable<ChangeEvent> DigestsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var keyCount = _request.Schema.PrimaryKey.Count;
        var size = DigestFetch;
        var fetched = new List<ChangeEvent>(size);
        await using var fetch = new NpgsqlCommand($"FETCH FORWARD {size} FROM deltasync_digests", connection, transaction);
        while (true)
        {
            fetched.Clear();
            await using (var reader = await fetch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    // A probe: the key and the digest, no values (only compared with the ledger, then read in full if it differs).
                    fetched.Add(new ChangeEvent(_request.Schema.Name, _mapper.ReadKey(reader), ChangeOperation.Upsert, null, Position.None, null, _request.Plan.SourceName)
                    {
                        SourceDigest = reader.GetInt64(keyCount),
                    });
                }
            }

            foreach (var probe in fetched)
            {
                yield return probe;
            }

            if (fetched.Count < size)
            {
                yield break;
            }
        }
    }

    /// <summary>The whole rows of <paramref name="probes"/>' keys, with their digests, in the same snapshot and order.</summary>
    private async Task<IReadOnlyList<ChangeEvent>> RowsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<ChangeEvent> probes, CancellationToken cancellationToken)
    {
        if (probes.Count == 0)
        {
            return [];
        }

        await using var command = new NpgsqlCommand(_mapper.RowsByKeySql(_ => ", " + _mapper.DigestSql("t"), keepMissing: false), connection, transaction);
        _mapper.AddKeyParameters(command, probes.Select(p => p.Key).ToList());
        var rows = new List<ChangeEvent>(probes.Count);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            rows.Add(_mapper.Upsert(_mapper.ReadValues(reader), Position.None, null, _mapper.ReadDigest(reader)));
        }

        if (rows.Count != probes.Count)
        {
            // One snapshot: a key the cursor read has its row. Anything else would be lost silently, so it is an error.
            throw new SyncException(ErrorClass.Transient, $"table '{_request.Plan.Table}': {probes.Count - rows.Count} of {probes.Count} changed rows were not found again by key in the pass's snapshot");
        }

        return rows;
    }

    /// <summary>Keys and digests read per fetch of the digest pass's cursor (a batch's worth, within bounds).</summary>
    private int DigestFetch => Math.Clamp(_request.BatchSize, 1_000, 50_000);

    private async IAsyncEnumerable<ChangeEvent> SourceRowsAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var connection = await PostgresConnectionFactory.OpenAsync(_data, "source", cancellationToken).ConfigureAwait(false);
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand($"SELECT {_mapper.SelectList(_request.SourceDigests)} FROM {_mapper.Table.QualifiedName} ORDER BY {_mapper.KeyOrder()}", connection, transaction);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var values = _mapper.ReadValues(reader);
            var position = _mode == DiffMode.Version
                ? new Position(LedgerDiff.VersionKind, Convert.ToString(values[_versionIndex], CultureInfo.InvariantCulture) ?? "")
                : Position.None;
            yield return _mapper.Upsert(values, position, null, _mapper.ReadDigest(reader));
        }
    }

    public ValueTask OnCheckpointedAsync(Position position, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
