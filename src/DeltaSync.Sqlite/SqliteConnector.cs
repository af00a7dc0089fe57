using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.State;
using DeltaSync.Sqlite.Destination;
using DeltaSync.Sqlite.Source;
using DeltaSync.Sqlite.State;
using NodaTime;

namespace DeltaSync.Sqlite;

/// <summary>The SQLite connector: source (timestamp, version, trigger, polling), destination and state store.</summary>
public sealed class SqliteConnector : IConnector
{
    private readonly IClock _clock;

    public SqliteConnector(IClock? clock = null)
    {
        _clock = clock ?? SystemClock.Instance;
    }

    public string Name => "sqlite";

    public bool Accepts(string connection) => SqliteConnectionFactory.Accepts(connection);

    public IReadOnlyCollection<CdcMethod> SourceMethods => SqliteSource.Methods;

    public Task<ISource> OpenSourceAsync(EndpointOptions endpoint, SyncConfig config, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(config);
        var path = SqliteConnectionFactory.ResolvePath(endpoint.Connection, config.BaseDirectory);
        return Task.FromResult<ISource>(new SqliteSource(path, _clock));
    }

    public Task<IDestination> OpenDestinationAsync(EndpointOptions endpoint, SyncConfig config, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(config);
        var path = SqliteConnectionFactory.ResolvePath(endpoint.Connection, config.BaseDirectory);
        return Task.FromResult<IDestination>(new SqliteDestination(path));
    }

    public Task<IStateStore>? OpenStateStoreAsync(string connection, SyncConfig config, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(config);
        var path = SqliteConnectionFactory.ResolvePath(connection, config.BaseDirectory);
        return Task.FromResult<IStateStore>(new SqliteStateStore(path));
    }
}
