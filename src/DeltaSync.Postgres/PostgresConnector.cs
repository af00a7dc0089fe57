using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.State;
using DeltaSync.Postgres.Destination;
using DeltaSync.Postgres.Source;
using DeltaSync.Postgres.State;
using NodaTime;

namespace DeltaSync.Postgres;

/// <summary>The PostgreSQL connector: source (timestamp, version, polling), destination and state store.</summary>
public sealed class PostgresConnector : IConnector
{
    private readonly IClock _clock;

    public PostgresConnector(IClock? clock = null)
    {
        _clock = clock ?? SystemClock.Instance;
    }

    public string Name => "postgresql";

    public bool Accepts(string connection) => PostgresConnectionFactory.Accepts(connection);

    public IReadOnlyCollection<CdcMethod> SourceMethods => PostgresSource.Methods;

    public IReadOnlyCollection<string> ChangelogTypes { get; } = ["postgres_wal"];

    public string? ConnectionProblem(string connection)
    {
        try
        {
            PostgresConnectionFactory.Parse(connection);
            return null;
        }
        catch (Core.Pipeline.SyncException e)
        {
            return e.Message;
        }
    }

    public Task<ISource> OpenSourceAsync(EndpointOptions endpoint, SyncConfig config, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        return Task.FromResult<ISource>(new PostgresSource(endpoint.Connection, _clock).WarmUp());
    }

    public Task<IDestination> OpenDestinationAsync(EndpointOptions endpoint, SyncConfig config, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        return Task.FromResult<IDestination>(new PostgresDestination(endpoint.Connection).WarmUp());
    }

    public Task<IStateStore>? OpenStateStoreAsync(string connection, SyncConfig config, CancellationToken cancellationToken) =>
        Task.FromResult<IStateStore>(new PostgresStateStore(connection));
}
