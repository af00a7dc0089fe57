using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;

namespace DeltaSync.Core.State;

/// <summary>Opens the state store a configuration names (<c>state.storage</c>).</summary>
public static class StateStores
{
    public static async Task<IStateStore> OpenAsync(SyncConfig config, ConnectorRegistry connectors, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(connectors);
        var storage = config.State.Storage;
        IStateStore store;
        switch (storage.Type)
        {
            case StateStorageType.File:
                store = new FileStateStore(storage.Location);
                break;
            default:
                var location = Connection(storage);
                var connector = connectors.Find(location)
                    ?? throw new SyncException(ErrorClass.Fatal, $"no connector can hold state at '{ConnectionText.Redact(storage.Location)}'");
                var opening = connector.OpenStateStoreAsync(location, config, cancellationToken)
                    ?? throw new SyncException(ErrorClass.Fatal, $"the {connector.Name} connector cannot hold state");
                store = await opening.ConfigureAwait(false);
                break;
        }

        await store.InitializeAsync(cancellationToken).ConfigureAwait(false);
        return store;
    }

    /// <summary>
    /// The connection a database or Redis store is opened with: <c>type: redis</c> also takes the plain host:port form
    /// the config documents; connectors know redis:// URIs.
    /// </summary>
    public static string Connection(StateStorageOptions storage)
    {
        ArgumentNullException.ThrowIfNull(storage);
        return storage.Type == StateStorageType.Redis && !storage.Location.Contains("://", StringComparison.Ordinal)
            ? "redis://" + storage.Location
            : storage.Location;
    }

    /// <summary>The folder beside the state (reports go to its <c>reports/</c>).</summary>
    public static string Folder(SyncConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var storage = config.State.Storage;
        if (storage.Type == StateStorageType.File)
        {
            return storage.Location;
        }

        var location = storage.Location;
        if (location.StartsWith("sqlite:", StringComparison.OrdinalIgnoreCase))
        {
            var path = location["sqlite:".Length..];
            if (path.StartsWith("//", StringComparison.Ordinal))
            {
                path = path[2..];
            }

            return Path.GetDirectoryName(Path.GetFullPath(path, config.BaseDirectory)) ?? config.BaseDirectory;
        }

        return config.BaseDirectory;
    }

    public static string Describe(SyncConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config.State.Storage.Type == StateStorageType.File
            ? "file:" + config.State.Storage.Location
            : ConnectionText.Redact(config.State.Storage.Location);
    }
}
