using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.State;
using DeltaSync.Redis.State;

namespace DeltaSync.Redis;

/// <summary>The Redis connector: a state store (with leases) only; Redis is not a source or destination of rows.</summary>
public sealed class RedisConnector : IConnector
{
    public string Name => "redis";

    public bool Accepts(string connection) => RedisConnectionFactory.Accepts(connection);

    public bool IsDestination => false;

    public Task<ISource> OpenSourceAsync(EndpointOptions endpoint, SyncConfig config, CancellationToken cancellationToken) =>
        throw StateOnly(endpoint);

    public Task<IDestination> OpenDestinationAsync(EndpointOptions endpoint, SyncConfig config, CancellationToken cancellationToken) =>
        throw StateOnly(endpoint);

    public Task<IStateStore>? OpenStateStoreAsync(string connection, SyncConfig config, CancellationToken cancellationToken) =>
        Task.FromResult<IStateStore>(new RedisStateStore(connection));

    private static SyncException StateOnly(EndpointOptions endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        return new SyncException(
            ErrorClass.Fatal,
            $"redis can only hold state: '{RedisConnectionFactory.Describe(endpoint.Connection)}' cannot be a sync source or destination. Use it under state.storage (type: redis).");
    }
}
