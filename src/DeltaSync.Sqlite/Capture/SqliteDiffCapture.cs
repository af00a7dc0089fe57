using System.Globalization;
using System.Runtime.CompilerServices;
using DeltaSync.Core.Capture;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using DeltaSync.Sqlite.Raw;
using DeltaSync.Sqlite.Source;
using Microsoft.Data.Sqlite;
using NodaTime;

namespace DeltaSync.Sqlite.Capture;

/// <summary>
/// Polling CDC (row hash) and per-row version CDC: each pass reads the table in key order and merges it with the
/// ledger (<see cref="LedgerDiff"/>), finding inserts, updates and hard deletes without a change column.
/// </summary>
internal sealed class SqliteDiffCapture : IChangeCapture
{
    private readonly SqliteConnection _connection;
    private readonly CaptureRequest _request;
    private readonly SqliteRowMapper _mapper;
    private readonly DiffMode _mode;
    private readonly int _versionIndex;
    private readonly IClock _clock;

    public SqliteDiffCapture(SqliteConnection connection, CaptureRequest request, DiffMode mode, IClock clock)
    {
        _connection = connection;
        _request = request;
        _mapper = new SqliteRowMapper(request.Schema, request.Plan.SourceName);
        _mode = mode;
        _clock = clock;
        _versionIndex = -1;
        if (mode == DiffMode.Version)
        {
            var field = request.Plan.VersionField ?? "version";
            _versionIndex = request.Schema.IndexOf(field);
            if (_versionIndex < 0)
            {
                throw new Core.Pipeline.SyncException(ErrorClass.Fatal, $"table '{request.Plan.Table}': version_field '{field}' is not a column");
            }
        }
    }

    public IAsyncEnumerable<ChangeBatch> ReadAsync(CancellationToken cancellationToken) =>
        LedgerDiff.PassAsync(SourceRowsAsync(cancellationToken), _request, _mode, _clock.GetCurrentInstant(), cancellationToken);

    private async IAsyncEnumerable<ChangeEvent> SourceRowsAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.Yield();
        using var statement = _mapper.OpenInKeyOrder(_connection, after: null);
        var count = 0;
        while (statement.Step())
        {
            if (++count % 4096 == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }

            var values = _mapper.ReadValues(statement);
            var position = _mode == DiffMode.Version
                ? new Position(LedgerDiff.VersionKind, Convert.ToString(values[_versionIndex], CultureInfo.InvariantCulture) ?? "")
                : Position.None;
            yield return _mapper.Upsert(values, position, null);
        }
    }

    public ValueTask OnCheckpointedAsync(Position position, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask DisposeAsync()
    {
        _connection.Dispose();
        return ValueTask.CompletedTask;
    }
}
