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

    public IAsyncEnumerable<ChangeBatch> ReadAsync(CancellationToken cancellationToken) =>
        LedgerDiff.PassAsync(
            SourceRowsAsync(cancellationToken),
            _request,
            _mode,
            _clock.GetCurrentInstant(),
            cancellationToken,
            entries => LedgerKeyValues.Prepare(entries, _request.Schema.PrimaryKey.Select(_mapper.Column).ToList()));

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
