using DeltaSync.Core.Capture;
using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Sqlite.Capture;
using DeltaSync.Sqlite.Raw;
using NodaTime;

namespace DeltaSync.Sqlite.Source;

/// <summary>
/// A SQLite database as a source. SQLite has no server: its clock is this machine's, and each capture gets its own
/// connection so tables are read in parallel.
/// </summary>
internal sealed class SqliteSource : ISource
{
    private readonly string _path;
    private readonly IClock _clock;

    /// <summary>Timestamp cursors here hold epoch milliseconds.</summary>
    public Instant? CursorTime(Position position) =>
        CursorPosition.TryParse(position, out var cursor) && cursor.Kind == CursorPosition.TimestampKind ? Instant.FromUnixTimeMilliseconds(cursor.Value) : null;

    public SqliteSource(string path, IClock clock)
    {
        _path = path;
        _clock = clock;
        using var probe = SqliteConnectionFactory.Open(path, mustExist: true, "source");
    }

    /// <summary>The CDC methods a SQLite source offers.</summary>
    internal static IReadOnlyCollection<CdcMethod> Methods { get; } =
        [CdcMethod.Timestamp, CdcMethod.Version, CdcMethod.Trigger, CdcMethod.Polling, CdcMethod.Hybrid];

    public IReadOnlyCollection<CdcMethod> SupportedMethods => Methods;

    public Task<TableSchema> DescribeTableAsync(TableOptions table, CancellationToken cancellationToken)
    {
        using var connection = SqliteConnectionFactory.Open(_path, mustExist: true, "source");
        return Task.FromResult(SqliteCatalog.Describe(connection, table, "source"));
    }

    public Task<Instant> GetClockAsync(CancellationToken cancellationToken) => Task.FromResult(_clock.GetCurrentInstant());

    public IChangeCapture CreateCapture(CaptureRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var plan = request.Plan;
        var connection = SqliteConnectionFactory.Open(_path, mustExist: true, "source");
        try
        {
            return plan.Method switch
            {
                CdcMethod.Timestamp => new SqliteCursorCapture(connection, request, isTimestamp: true, plan.UpdatedAtField, Zone(plan.Timezone), _clock),
                CdcMethod.Version when plan.SequenceField is not null => new SqliteCursorCapture(connection, request, isTimestamp: false, plan.SequenceField, DateTimeZone.Utc, _clock),
                CdcMethod.Version => new SqliteDiffCapture(connection, request, DiffMode.Version, _clock),
                CdcMethod.Polling => new SqliteDiffCapture(connection, request, DiffMode.RowHash, _clock),
                CdcMethod.Trigger => new SqliteTriggerCapture(connection, request, _clock),
                _ => throw new SyncException(
                    ErrorClass.Fatal,
                    $"table '{plan.Table}': cdc_method '{plan.Method.ToString().ToLowerInvariant()}' is not available for SQLite sources (SQLite has no change log); use trigger, timestamp, version or polling"),
            };
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The snapshot of <paramref name="request"/> as a copy a SQLite destination makes over an attached source file, or
    /// null with the reason it cannot be made: only cursor captures (timestamp, sequence) snapshot as a plain copy.
    /// </summary>
    internal SqliteSnapshotCopy? SnapshotCopy(CaptureRequest request, Instant? futureLimit, out string reason)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Plan.Method is not (CdcMethod.Timestamp or CdcMethod.Version) || (request.Plan.Method == CdcMethod.Version && request.Plan.SequenceField is null))
        {
            reason = $"cdc_method {request.Plan.Method.ToString().ToLowerInvariant()} snapshots its own way";
            return null;
        }

        reason = "";
        var capture = (SqliteCursorCapture)CreateCapture(request);
        return new SqliteSnapshotCopy(_path, capture, request) { FutureLimit = futureLimit };
    }

    public Task UninstallAsync(TablePlan plan, CancellationToken cancellationToken)
    {
        using var connection = SqliteConnectionFactory.Open(_path, mustExist: true, "source");
        SqliteTriggerCapture.Uninstall(connection, plan);
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<KeyedRow>> ReadRowsAsync(TableSchema schema, IReadOnlyList<RecordKey> keys, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(keys);
        using var connection = SqliteConnectionFactory.Open(_path, mustExist: true, "source");
        var mapper = new SqliteRowMapper(schema, "");
        var where = string.Join(" AND ", schema.PrimaryKey.Select((k, i) => $"{SqliteSql.Quote(k)} = ?{i + 1}"));
        using var statement = new RawStatement(connection.Handle!, $"{mapper.SelectFrom()} WHERE {where}");
        var rows = new List<KeyedRow>(keys.Count);
        foreach (var key in keys)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var values = new object?[key.Values.Count];
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = KeyValue(schema.Columns[schema.KeyIndexes[i]], key.Values[i]);
                statement.Bind(i + 1, values[i]);
            }

            if (statement.Step())
            {
                var row = mapper.ReadValues(statement);
                rows.Add(new KeyedRow(schema.KeyOf(row), row));
            }
            else
            {
                rows.Add(new KeyedRow(new RecordKey(values), null));
            }

            statement.Reset();
        }

        return Task.FromResult<IReadOnlyList<KeyedRow>>(rows);
    }

    public Task<IRangeDigests?> OpenRangeDigestsAsync(TableSchema schema, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(schema);
        return Task.FromResult(Reconcile.SqliteRangeDigests.Open(_path, schema.Name, schema, "source"));
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>A key value in its portable form as the column stores it: blobs travel as base64 text.</summary>
    private static object? KeyValue(ColumnSchema column, object? value)
    {
        if (column.Kind == DataKind.Blob && value is string text)
        {
            var bytes = new byte[(text.Length * 3 / 4) + 3];
            if (Convert.TryFromBase64String(text, bytes, out var written))
            {
                return bytes[..written];
            }
        }

        return value;
    }

    private static DateTimeZone Zone(string id) => Core.Time.TimeZones.Get(id);
}
