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
    /// The digest pass: one statement streams the table's keys and row digests in key order
    /// (<see cref="PostgresRowMapper.DigestSql"/>, computed by the server while the client merges what came before; no
    /// column value crosses the wire), merged with the ledger; the whole rows of the keys whose digest differs from
    /// their entry are read by key a batch at a time on a second connection. A table where nothing changed costs the
    /// client one key and one number per row.
    /// </summary>
    /// <remarks>
    /// The rows are read after the keys, so a row may have changed again meanwhile: it is applied as it is then, with
    /// that digest (the ledger records what was applied). A row deleted meanwhile is not found and left to the next
    /// pass, which no longer sees its key and deletes it.
    /// </remarks>
    private async IAsyncEnumerable<ChangeEvent> ByDigestAsync(IAsyncEnumerable<Core.Ledger.LedgerEntry> ledger, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        NpgsqlConnection? rows = null;
        var changed = new List<ChangeEvent>(_request.BatchSize);
        async Task<IReadOnlyList<ChangeEvent>> ReadChangedAsync()
        {
            rows ??= await PostgresConnectionFactory.OpenAsync(_data, "source", cancellationToken).ConfigureAwait(false);
            var read = await RowsAsync(rows, changed, cancellationToken).ConfigureAwait(false);
            changed.Clear();
            return read;
        }

        try
        {
            await foreach (var change in LedgerDiff.DiffAsync(DigestsAsync(cancellationToken), ledger, DiffMode.RowHash, _request.Schema.Name, _request.Plan.SourceName, cancellationToken).ConfigureAwait(false))
            {
                if (change.Operation == ChangeOperation.Delete)
                {
                    yield return change;
                    continue;
                }

                changed.Add(change);
                if (changed.Count >= _request.BatchSize)
                {
                    foreach (var row in await ReadChangedAsync().ConfigureAwait(false))
                    {
                        yield return row;
                    }
                }
            }

            if (changed.Count > 0)
            {
                foreach (var row in await ReadChangedAsync().ConfigureAwait(false))
                {
                    yield return row;
                }
            }
        }
        finally
        {
            if (rows is not null)
            {
                await rows.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>The table's keys and digests in key order, as probes: a key and a digest, no values.</summary>
    private async IAsyncEnumerable<ChangeEvent> DigestsAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var keyCount = _request.Schema.PrimaryKey.Count;
        await using var connection = await PostgresConnectionFactory.OpenAsync(_data, "source", cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(
            $"SELECT {_mapper.KeySelectList()}, {_mapper.DigestSql()} FROM {_mapper.Table.QualifiedName} ORDER BY {_mapper.KeyOrder()}",
            connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            // Only compared with the ledger, then read in full if it differs.
            yield return new ChangeEvent(_request.Schema.Name, _mapper.ReadKey(reader), ChangeOperation.Upsert, null, Position.None, null, _request.Plan.SourceName)
            {
                SourceDigest = reader.GetInt64(keyCount),
            };
        }
    }

    /// <summary>The whole rows of <paramref name="probes"/>' keys that still exist, with their digests, in the same order.</summary>
    private async Task<IReadOnlyList<ChangeEvent>> RowsAsync(NpgsqlConnection connection, IReadOnlyList<ChangeEvent> probes, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(_mapper.RowsByKeySql(_ => ", " + _mapper.DigestSql("t"), keepMissing: false), connection);
        _mapper.AddKeyParameters(command, probes.Select(p => p.Key).ToList());
        var rows = new List<ChangeEvent>(probes.Count);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            rows.Add(_mapper.Upsert(_mapper.ReadValues(reader), Position.None, null, _mapper.ReadDigest(reader)));
        }

        return rows;
    }

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
