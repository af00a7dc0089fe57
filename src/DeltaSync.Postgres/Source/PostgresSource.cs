using System.Collections.Concurrent;
using System.Globalization;
using DeltaSync.Core.Capture;
using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Postgres.Capture;
using Npgsql;
using NodaTime;

namespace DeltaSync.Postgres.Source;

/// <summary>
/// A PostgreSQL database as a source. Reads run on their own pooled connections (tables in parallel), each pass in one
/// REPEATABLE READ snapshot; the clock is the server's.
/// </summary>
internal sealed class PostgresSource : ISource
{
    private readonly NpgsqlDataSource _data;
    private readonly string _connection;
    private readonly IClock _clock;
    /// <summary>Described tables by their qualified name (two schemas may each have an <c>items</c>).</summary>
    private readonly ConcurrentDictionary<string, PgTable> _tables = new(StringComparer.Ordinal);
    private readonly WalStreams _streams;
    private ConnectionWarmUp? _warmUp;

    /// <summary>Timestamp cursors here hold epoch microseconds, PostgreSQL's own precision.</summary>
    public Instant? CursorTime(Position position) =>
        CursorPosition.TryParse(position, out var cursor) && cursor.Kind == CursorPosition.TimestampKind ? Instant.FromUnixTimeTicks(cursor.Value * 10) : null;

    public PostgresSource(string connection, IClock clock)
    {
        _connection = connection;
        _clock = clock;
        _data = PostgresConnectionFactory.CreateDataSource(connection, CommitHorizon.CaptureApplicationName);
        _streams = new WalStreams(_data);
    }

    /// <summary>Starts opening the first connection in the background (see <see cref="ConnectionWarmUp"/>).</summary>
    internal PostgresSource WarmUp()
    {
        _warmUp ??= ConnectionWarmUp.Start(ct => _data.OpenConnectionAsync(ct).AsTask());
        return this;
    }

    /// <summary>The CDC methods a PostgreSQL source offers.</summary>
    internal static IReadOnlyCollection<CdcMethod> Methods { get; } =
        [CdcMethod.Timestamp, CdcMethod.Version, CdcMethod.Polling, CdcMethod.Changelog, CdcMethod.Trigger, CdcMethod.Hybrid];

    public IReadOnlyCollection<CdcMethod> SupportedMethods => Methods;

    private static string Key(TableSchema schema) => schema.SourceTable ?? schema.Name;

    public async Task<TableSchema> DescribeTableAsync(TableOptions table, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(table);
        await using var connection = await PostgresConnectionFactory.OpenAsync(_data, "source", cancellationToken).ConfigureAwait(false);
        var (pg, schema) = await PostgresCatalog.DescribeAsync(connection, table, "source", cancellationToken).ConfigureAwait(false);
        _tables[Key(schema)] = pg;
        return schema;
    }

    public async Task<Instant> GetClockAsync(CancellationToken cancellationToken)
    {
        await using var connection = await PostgresConnectionFactory.OpenAsync(_data, "source", cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand("SELECT clock_timestamp()", connection);
        var now = (DateTime)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        return Instant.FromDateTimeUtc(now);
    }

    public IChangeCapture CreateCapture(CaptureRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var plan = request.Plan;
        if (!_tables.TryGetValue(Key(request.Schema), out var table))
        {
            throw new InvalidOperationException($"table '{plan.Table}' was not described before its capture was created");
        }

        var user = PostgresConnectionFactory.Parse(_connection).Username ?? "the sync user";
        return plan.Method switch
        {
            CdcMethod.Timestamp => new PostgresCursorCapture(_data, request, table, isTimestamp: true, plan.UpdatedAtField, Zone(plan.Timezone), _clock, user),
            CdcMethod.Version when plan.SequenceField is not null => new PostgresCursorCapture(_data, request, table, isTimestamp: false, plan.SequenceField, DateTimeZone.Utc, _clock, user),
            CdcMethod.Version => new PostgresDiffCapture(_data, request, table, DiffMode.Version, _clock),
            CdcMethod.Polling => new PostgresDiffCapture(_data, request, table, DiffMode.RowHash, _clock),
            CdcMethod.Trigger => new PostgresTriggerCapture(_data, request, table),
            CdcMethod.Changelog when plan.ChangelogType is null or "postgres_wal" => new PostgresWalCapture(_data, _connection, request, table, _streams, _clock),
            CdcMethod.Changelog => throw new SyncException(
                ErrorClass.Fatal,
                $"table '{plan.Table}': cdc.changelog.type '{plan.ChangelogType}' does not fit a PostgreSQL source; use postgres_wal"),
            _ => throw new SyncException(
                ErrorClass.Fatal,
                $"table '{plan.Table}': cdc_method '{plan.Method.ToString().ToLowerInvariant()}' is not available for PostgreSQL sources; use changelog, trigger, timestamp, version, polling or hybrid"),
        };
    }

    /// <summary>
    /// The table's snapshot as one raw binary COPY, for a PostgreSQL destination's bulk load; null (with the reason) when
    /// the capture's snapshot cannot be reproduced that way.
    /// </summary>
    internal PostgresSnapshotCopy? SnapshotCopy(CaptureRequest request, out string reason)
    {
        if (!_tables.TryGetValue(Key(request.Schema), out var table))
        {
            reason = "the table was not described";
            return null;
        }

        if (request.Plan.Method is not (CdcMethod.Timestamp or CdcMethod.Version or CdcMethod.Polling))
        {
            reason = $"cdc_method {request.Plan.Method.ToString().ToLowerInvariant()} copies its snapshot its own way";
            return null;
        }

        var capture = CreateCapture(request);
        return PostgresSnapshotCopy.Create(_data, request, table, capture, _clock, out reason);
    }

    public async Task UninstallAsync(TablePlan plan, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(plan);
        if (plan.Method == CdcMethod.Changelog)
        {
            await PostgresWalCapture.UninstallAsync(_data, plan, cancellationToken).ConfigureAwait(false);
        }

        // Whatever the method now: a table that used trigger CDC before keeps its triggers until this removes them.
        await PostgresTriggerCapture.UninstallAsync(_data, plan, cancellationToken).ConfigureAwait(false);
    }

    public Task<string?> DescribeCaptureAsync(TablePlan plan, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(plan);
        return plan.Method == CdcMethod.Changelog
            ? PostgresWalCapture.DescribeSlotAsync(_data, plan, cancellationToken)
            : Task.FromResult<string?>(null);
    }

    public async Task<IRangeDigests?> OpenRangeDigestsAsync(TableSchema schema, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(schema);
        // The described table's qualified name: the schema's name alone is the table's, which outside the search path
        // (sales."Order Items") matched nothing, so such tables fell back to streaming every row.
        var name = _tables.TryGetValue(Key(schema), out var table) ? table.QualifiedName : schema.Name;
        var connection = await PostgresConnectionFactory.OpenAsync(_data, "source", cancellationToken).ConfigureAwait(false);
        return await Reconcile.PostgresRangeDigests.OpenAsync(connection, name, schema, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One statement for every key (<see cref="PostgresRowMapper.RowsByKeySql"/>).</summary>
    public async Task<IReadOnlyList<KeyedRow>> ReadRowsAsync(TableSchema schema, IReadOnlyList<RecordKey> keys, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(keys);
        if (!_tables.TryGetValue(Key(schema), out var table))
        {
            throw new InvalidOperationException($"table '{schema.Name}' was not described before its rows were read");
        }

        var mapper = new PostgresRowMapper(table, schema, "");
        if (mapper.RowIdIndex >= 0)
        {
            throw new SyncException(ErrorClass.Fatal, $"table '{schema.Name}' has no primary key (its rows are identified by where the log inserted them), so its rows cannot be read again by key");
        }

        var keyColumns = schema.PrimaryKey.Select(mapper.Column).ToList();
        // The cast key is read back too, in the source's own values, for the keys that no longer have a row.
        var sql = mapper.RowsByKeySql(
            cast => ", " + string.Join(", ", keyColumns.Select((c, i) => PostgresRowMapper.SelectedAsText(c) ? cast[i] + "::text" : cast[i])) +
                $", t.{PostgresSql.Quote(keyColumns[0].Name)} IS NOT NULL",
            keepMissing: true);
        await using var connection = await PostgresConnectionFactory.OpenAsync(_data, "source", cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        mapper.AddKeyParameters(command, keys);

        var rows = new List<KeyedRow>(keys.Count);
        try
        {
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                if (reader.GetBoolean(mapper.ColumnCount + keyColumns.Count))
                {
                    var row = mapper.ReadValues(reader);
                    rows.Add(new KeyedRow(schema.KeyOf(row), row));
                    continue;
                }

                var key = new object?[keyColumns.Count];
                for (var i = 0; i < key.Length; i++)
                {
                    key[i] = PostgresValues.Read(reader, mapper.ColumnCount + i, keyColumns[i]);
                }

                rows.Add(new KeyedRow(new RecordKey(key), null));
            }
        }
        catch (PostgresException e) when (e.SqlState is "22P02" or "22007" or "22008" or "22003" or "22023")
        {
            // A key value that is not valid for its column's type (invalid text representation, date/time, range).
            throw new SyncException(ErrorClass.Fatal, $"table '{schema.Name}': a dead-lettered key does not fit the key column types ({e.MessageText})", e);
        }
        catch (NpgsqlException e)
        {
            throw PostgresConnectionFactory.Classify(e, $"cannot read rows of '{schema.Name}' by key");
        }

        return rows;
    }

    public async ValueTask DisposeAsync()
    {
        if (_warmUp is not null)
        {
            await _warmUp.DisposeAsync().ConfigureAwait(false);
        }

        // Open log streams first: closing them advances their slots, which needs the data source.
        await _streams.DisposeAsync().ConfigureAwait(false);
        await _data.DisposeAsync().ConfigureAwait(false);
    }

    private static DateTimeZone Zone(string id) => Core.Time.TimeZones.Get(id);
}
