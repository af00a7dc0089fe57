using DeltaSync.Core.Config;
using DeltaSync.Core.State;

namespace DeltaSync.Core.Connectors;

/// <summary>Everything about one kind of system. One assembly per connector.</summary>
public interface IConnector
{
    /// <summary>A short name for messages (<c>sqlite</c>, <c>postgresql</c>).</summary>
    string Name { get; }

    /// <summary>Whether this connector handles the connection (by URI scheme or native connection string shape).</summary>
    bool Accepts(string connection);

    Task<ISource> OpenSourceAsync(EndpointOptions endpoint, SyncConfig config, CancellationToken cancellationToken);

    Task<IDestination> OpenDestinationAsync(EndpointOptions endpoint, SyncConfig config, CancellationToken cancellationToken);

    /// <summary>A state store in this system; null when the system cannot host one.</summary>
    Task<IStateStore>? OpenStateStoreAsync(string connection, SyncConfig config, CancellationToken cancellationToken);
}

/// <summary>The connectors this process knows, chosen by connection string.</summary>
public sealed class ConnectorRegistry
{
    private readonly List<IConnector> _connectors = [];

    public ConnectorRegistry Add(IConnector connector)
    {
        _connectors.Add(connector);
        return this;
    }

    public IReadOnlyList<IConnector> Connectors => _connectors;

    public IConnector? Find(string connection) => _connectors.FirstOrDefault(c => c.Accepts(connection));
}
