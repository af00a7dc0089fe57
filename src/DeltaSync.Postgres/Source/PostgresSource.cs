using System.Collections.Concurrent;
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
    private readonly ConcurrentDictionary<string, PgTable> _tables = new(StringComparer.Ordinal);
    private readonly WalStreams _streams;

    public PostgresSource(string connection, IClock clock)
    {
        _connection = connection;
        _clock = clock;
        _data = PostgresConnectionFactory.CreateDataSource(connection, CommitHorizon.CaptureApplicationName);
        _streams = new WalStreams(_data);
    }

    public IReadOnlyCollection<CdcMethod> SupportedMethods { get; } =
        [CdcMethod.Timestamp, CdcMethod.Version, CdcMethod.Polling, CdcMethod.Changelog, CdcMethod.Trigger];

    public async Task<TableSchema> DescribeTableAsync(TableOptions table, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(table);
        await using var connection = await PostgresConnectionFactory.OpenAsync(_data, "source", cancellationToken).ConfigureAwait(false);
        var (pg, schema) = await PostgresCatalog.DescribeAsync(connection, table, "source", cancellationToken).ConfigureAwait(false);
        _tables[schema.Name] = pg;
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
        if (!_tables.TryGetValue(request.Schema.Name, out var table))
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

    public async ValueTask DisposeAsync()
    {
        // Open log streams first: closing them advances their slots, which needs the data source.
        await _streams.DisposeAsync().ConfigureAwait(false);
        await _data.DisposeAsync().ConfigureAwait(false);
    }

    private static DateTimeZone Zone(string id) => DateTimeZoneProviders.Tzdb.GetZoneOrNull(id) ?? DateTimeZone.Utc;
}
