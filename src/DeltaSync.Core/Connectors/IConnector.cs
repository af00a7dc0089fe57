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

    /// <summary>The CDC methods a source of this kind offers (as <see cref="ISource.SupportedMethods"/>); empty: it cannot be a source.</summary>
    IReadOnlyCollection<CdcMethod> SourceMethods => [];

    /// <summary>The change logs (<c>cdc.changelog.type</c>) a source of this kind reads.</summary>
    IReadOnlyCollection<string> ChangelogTypes => [];

    /// <summary>Whether rows can be written to this kind of system.</summary>
    bool IsDestination => true;

    /// <summary>What is wrong with a connection this connector accepts, found without connecting (null: nothing).</summary>
    string? ConnectionProblem(string connection) => null;
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

    /// <summary>
    /// What the configuration asks of the systems it names that they cannot do, found before anything is opened: a
    /// connection no connector handles, a system that cannot be a source or a destination, a CDC method or change log
    /// the source's kind does not offer. Each with the key that chose it.
    /// </summary>
    public IReadOnlyList<ConfigError> Check(SyncConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var errors = new List<ConfigError>();
        void Add(string key, string message)
        {
            if (!errors.Any(e => e.KeyPath == key && e.Message == message))
            {
                errors.Add(new ConfigError(config.ConfigPath, key, message));
            }
        }

        var sync = config.Sync;
        for (var i = 0; i < sync.Sources.Count; i++)
        {
            var source = sync.Sources[i];
            var at = sync.IsMultiSource ? $"sync.sources[{i}]" : "sync.source";
            if (Find(source.Connection) is not { } connector)
            {
                Add(at + ".connection", Unhandled(source.Connection));
                continue;
            }

            if (connector.ConnectionProblem(source.Connection) is { } problem)
            {
                Add(at + ".connection", problem);
            }

            if (connector.SourceMethods.Count == 0)
            {
                Add(at + ".connection", $"a {connector.Name} connection cannot be a source (it holds no rows to sync); use {SourceKinds()}");
                continue;
            }

            for (var t = 0; t < source.Tables.Count; t++)
            {
                var table = source.Tables[t];
                var method = table.CdcMethod ?? source.CdcMethod ?? sync.CdcMethod;
                var key = table.CdcMethod is not null ? $"{at}.tables[{t}].cdc_method" : source.CdcMethod is not null ? $"{at}.cdc_method" : "sync.cdc_method";
                var reading = method;
                if (method == CdcMethod.Hybrid)
                {
                    // Hybrid reads through its base: the configured one, or the source's default (always offered).
                    reading = config.Cdc.Hybrid.Base ?? CdcMethod.Hybrid;
                    key = config.Cdc.Hybrid.Base is null ? key : "cdc.hybrid.base";
                }

                if (!connector.SourceMethods.Contains(reading))
                {
                    Add(key, $"{Name(reading)} is not offered by a {connector.Name} source (table '{table.Name}'); it offers {string.Join(", ", connector.SourceMethods.Select(Name))}");
                }
                else if (reading == CdcMethod.Changelog && config.Cdc.Changelog.Type is { } type && !connector.ChangelogTypes.Contains(type, StringComparer.Ordinal))
                {
                    Add("cdc.changelog.type", $"'{type}' is not a change log a {connector.Name} source has (table '{table.Name}'); use {string.Join(" or ", connector.ChangelogTypes)}");
                }
            }
        }

        var destination = sync.Destination.Connection;
        if (Find(destination) is not { } target)
        {
            Add("sync.destination.connection", Unhandled(destination));
        }
        else if (!target.IsDestination)
        {
            Add("sync.destination.connection", $"a {target.Name} connection cannot be a destination of rows; use {string.Join(" or ", _connectors.Where(c => c.IsDestination).Select(c => c.Name))}");
        }
        else if (target.ConnectionProblem(destination) is { } problem)
        {
            Add("sync.destination.connection", problem);
        }

        var storage = config.State.Storage;
        if (storage.Type != StateStorageType.File)
        {
            var location = State.StateStores.Connection(storage);
            if (Find(location) is not { } store)
            {
                Add("state.storage.connection", $"no connector can hold state at '{ConnectionText.Redact(storage.Location)}'; use sqlite:FILE.db, postgresql://… or redis://… (or type: file with a path)");
            }
            else if (store.ConnectionProblem(location) is { } problem)
            {
                Add("state.storage.connection", problem);
            }
        }

        return errors;
    }

    private string Unhandled(string connection) =>
        $"no connector handles '{ConnectionText.Redact(connection)}'; use sqlite:FILE.db or postgresql://user:password@host:port/database (available: {string.Join(", ", _connectors.Select(c => c.Name))})";

    private string SourceKinds() => string.Join(" or ", _connectors.Where(c => c.SourceMethods.Count > 0).Select(c => c.Name));

    private static string Name(CdcMethod method) => method.ToString().ToLowerInvariant();
}
