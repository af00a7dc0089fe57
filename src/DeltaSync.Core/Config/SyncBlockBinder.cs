using DeltaSync.Core.Time;
using NodaTime;

namespace DeltaSync.Core.Config;

/// <summary>Binds the <c>sync</c> block: the endpoints, their tables and how often and how much to sync.</summary>
internal static class SyncBlockBinder
{
    public const int DefaultBatchSize = 1000;
    public const int MaxBatchSize = 1_000_000;
    public const int DefaultMaxParallelTables = 4;

    /// <summary>The options, and <c>sync.name</c> when it is set.</summary>
    public static (SyncOptions Options, string? Name) Bind(YamlSection sync, CdcOptions cdc)
    {
        var name = sync.Text("name");
        var cdcMethod = sync.Choice("cdc_method", CdcMethod.Timestamp, ConfigChoices.CdcMethods);

        var sources = BindSources(sync, cdcMethod, cdc);
        var source = sources.Count > 0 ? sources[0] : new EndpointOptions("source", "database", string.Empty, []);
        var tables = sources.SelectMany(s => s.Tables).ToList();
        var destination = BindEndpoint(sync.Section("destination", ConfigKeys.Destination, required: true), "destination", ConfigChoices.DestinationTypes, []);

        var options = new SyncOptions(
            source,
            destination,
            cdcMethod,
            BindFrequency(sync, cdc.Polling.Interval),
            sync.Integer("batch_size", DefaultBatchSize, max: MaxBatchSize),
            sync.Integer("max_parallel_tables", DefaultMaxParallelTables))
        {
            Retry = BindRetry(sync.Section("retry", ConfigKeys.Retry), sync.Section("circuit_breaker", ConfigKeys.CircuitBreaker)),
            Relationships = BindRelationships(sync, tables),
            Sources = sources,
        };
        return (options, name);
    }

    /// <summary>
    /// <c>sync.relationships</c>: <c>[{parent: customers, child: orders, foreign_key: customer_id, on_delete: cascade}]</c>.
    /// Both tables must be synced (the child's rows at the destination are the ones the delete reaches).
    /// </summary>
    private static List<RelationshipOptions> BindRelationships(YamlSection sync, IReadOnlyList<TableOptions> tables)
    {
        var relationships = new List<RelationshipOptions>();
        var known = tables.Select(t => t.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var (node, path) in sync.Items("relationships", "a list of {parent, child, foreign_key, on_delete} mappings"))
        {
            var entry = sync.Reader.Section(node, path, ConfigKeys.Relationship, required: true);
            if (!entry.IsPresent)
            {
                continue;
            }

            var parent = entry.RequiredText("parent", "the referenced table, e.g. customers")?.Trim();
            var child = entry.RequiredText("child", "the referencing table, e.g. orders")?.Trim();
            var foreignKey = entry.Names("foreign_key");
            if (foreignKey is null or { Count: 0 })
            {
                entry.Report("foreign_key", "is required: the child's column(s) referencing the parent's primary key, e.g. customer_id");
            }

            var onDelete = entry.Choice("on_delete", DeleteAction.Cascade, ConfigChoices.DeleteActions);
            foreach (var (key, name) in new[] { ("parent", parent), ("child", child) })
            {
                if (name is not null && known.Count > 0 && !known.Contains(name))
                {
                    entry.Report(key, $"'{name}' is not one of the synced tables ({string.Join(", ", known.Order(StringComparer.Ordinal))})");
                }
            }

            if (parent is not null && child is not null && string.Equals(parent, child, StringComparison.OrdinalIgnoreCase))
            {
                entry.Report("child", "must differ from parent (a table referencing itself is not supported)");
            }

            if (parent is not null && child is not null && foreignKey is { Count: > 0 })
            {
                relationships.Add(new RelationshipOptions(parent, child, foreignKey, onDelete));
            }
        }

        return relationships;
    }

    private static RetryOptions BindRetry(YamlSection retry, YamlSection breaker)
    {
        var defaults = RetryOptions.Default;
        var initial = retry.Duration("initial_delay", defaults.InitialDelay);
        var max = retry.Duration("max_delay", defaults.MaxDelay);
        if (max < initial)
        {
            retry.Report("max_delay", $"must not be shorter than initial_delay ({initial.TotalSeconds:0.###} s)");
        }

        return new RetryOptions(
            retry.Integer("max_attempts", defaults.MaxAttempts, min: 0, max: 100),
            initial,
            max,
            breaker.Integer("failure_threshold", defaults.BreakerFailureThreshold, min: 2, max: 1000),
            breaker.Duration("break_duration", defaults.BreakDuration));
    }

    /// <summary>
    /// <c>sync.source</c> (one source) or <c>sync.sources</c> (several named sources, each with its own connection,
    /// tables, <c>cdc_method</c>, <c>key_map</c> and <c>clock_offset</c>): exactly one of the two.
    /// </summary>
    private static List<EndpointOptions> BindSources(YamlSection sync, CdcMethod cdcMethod, CdcOptions cdc)
    {
        var hasSingle = sync.IsPresent && !ConfigReader.IsNull(sync["source"]);
        var hasList = sync.IsPresent && !ConfigReader.IsNull(sync["sources"]);
        if (hasSingle && hasList)
        {
            sync.Report("sources", "set either sync.source (one source) or sync.sources (several named sources), not both");
            return [];
        }

        if (!hasList)
        {
            var sourceSection = sync.Section("source", ConfigKeys.Source, required: true);
            var tables = TableListBinder.Bind(sourceSection, cdcMethod, cdc.Version, sync);
            return [BindEndpoint(sourceSection, "source", ConfigChoices.SourceTypes, tables)];
        }

        var sources = new List<EndpointOptions>();
        var firstPathByName = new Dictionary<string, string>(StringComparer.Ordinal);
        var items = sync.Items("sources", "a list of {name, connection, tables} mappings");
        if (items.Count == 0 && sync["sources"] is YamlDotNet.RepresentationModel.YamlSequenceNode)
        {
            sync.Report("sources", "is empty: list at least one source, e.g. [{name: crm, connection: 'sqlite:crm.db', tables: [customers]}]");
        }

        foreach (var (node, path) in items)
        {
            var entry = sync.Reader.Section(node, path, ConfigKeys.SourceEntry, required: true);
            if (!entry.IsPresent)
            {
                continue;
            }

            var name = entry.RequiredText("name", "the source's name, used in the ledger, reports and source_priority, e.g. crm")?.Trim();
            if (name is not null && string.Equals(name, Conflicts.RecordVersion.DestinationSource, StringComparison.Ordinal))
            {
                entry.Report("name", $"'{name}' is reserved for edits made at the destination itself; choose another name");
            }
            else if (name is not null && !firstPathByName.TryAdd(name, path))
            {
                entry.Report("name", $"duplicate source name '{name}'; it is already used at {firstPathByName[name]}");
            }

            var method = entry.OptionalChoice("cdc_method", ConfigChoices.CdcMethods);
            var tables = TableListBinder.Bind(entry, method ?? cdcMethod, cdc.Version, sync);
            var endpoint = BindEndpoint(entry, "source", ConfigChoices.SourceTypes, tables) with
            {
                Name = name ?? string.Empty,
                CdcMethod = method,
                KeyMap = BindKeyMap(entry, tables),
                ClockOffset = BindClockOffset(entry),
            };
            sources.Add(endpoint);
        }

        return sources;
    }

    /// <summary><c>key_map: {customers: {id: customer_no}}</c>: per table, destination key column → source column.</summary>
    private static Dictionary<string, IReadOnlyDictionary<string, string>> BindKeyMap(YamlSection entry, IReadOnlyList<TableOptions> tables)
    {
        var map = new Dictionary<string, IReadOnlyDictionary<string, string>>(StringComparer.OrdinalIgnoreCase);
        var node = entry["key_map"];
        if (ConfigReader.IsNull(node))
        {
            return map;
        }

        if (node is not YamlDotNet.RepresentationModel.YamlMappingNode tablesNode)
        {
            entry.Report("key_map", "expected a mapping of table → {destination_key_column: source_column}, e.g. {customers: {id: customer_no}}");
            return map;
        }

        var known = tables.Select(t => t.Name).ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var (tableKey, columnsNode) in tablesNode.Children)
        {
            var table = (tableKey as YamlDotNet.RepresentationModel.YamlScalarNode)?.Value ?? string.Empty;
            var path = entry.PathOf("key_map") + "." + table;
            if (!known.Contains(table))
            {
                entry.Reader.Report(path, $"'{table}' is not one of this source's tables ({string.Join(", ", known.Order(StringComparer.Ordinal))})", tableKey);
                continue;
            }

            if (columnsNode is not YamlDotNet.RepresentationModel.YamlMappingNode columns || columns.Children.Count == 0)
            {
                entry.Reader.Report(path, "expected a mapping of destination_key_column: source_column, e.g. {id: customer_no}", columnsNode);
                continue;
            }

            var pairs = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (var (destinationColumn, sourceColumn) in columns.Children)
            {
                var to = (destinationColumn as YamlDotNet.RepresentationModel.YamlScalarNode)?.Value;
                var from = (sourceColumn as YamlDotNet.RepresentationModel.YamlScalarNode)?.Value;
                if (string.IsNullOrWhiteSpace(to) || string.IsNullOrWhiteSpace(from))
                {
                    entry.Reader.Report(path, "expected column names: destination_key_column: source_column", columnsNode);
                    continue;
                }

                pairs[to.Trim()] = from.Trim();
            }

            map[table] = pairs;
        }

        return map;
    }

    /// <summary><c>clock_offset</c>: a duration, negative when the source's clock runs behind (<c>"-2s"</c>).</summary>
    private static Duration BindClockOffset(YamlSection entry)
    {
        var text = entry.Text("clock_offset")?.Trim();
        if (string.IsNullOrEmpty(text))
        {
            return Duration.Zero;
        }

        var negative = text.StartsWith('-');
        if (DurationParser.TryParse(negative ? text[1..] : text, out var offset))
        {
            return negative ? -offset : offset;
        }

        entry.Report("clock_offset", $"expected a duration such as '2s' or '-500ms' (how far the source's clock runs ahead), got {ConfigReader.Quote(text)}");
        return Duration.Zero;
    }

    private static EndpointOptions BindEndpoint(YamlSection endpoint, string role, ConfigChoice<string> types, IReadOnlyList<TableOptions> tables) =>
        new(
            endpoint.Text("name", role),
            endpoint.Choice("type", "database", types),
            // Only ever "is required"/"not set" messages for this key: the value may carry an interpolated password.
            endpoint.RequiredText("connection", $"the {role}'s connection URI (e.g. sqlite:{role}.db) or driver connection string") ?? string.Empty,
            tables);

    private static SyncFrequency BindFrequency(YamlSection sync, Duration pollInterval)
    {
        var text = sync.Text("frequency");
        switch (text?.Trim().ToLowerInvariant())
        {
            case null or "hourly":
                return SyncFrequency.Every(Duration.FromHours(1));
            case "daily":
                return SyncFrequency.Every(Duration.FromDays(1));
            case "realtime":
                return SyncFrequency.Realtime(pollInterval);
        }

        if (DurationParser.TryParse(text, out var interval) && interval > Duration.Zero)
        {
            return SyncFrequency.Every(interval);
        }

        sync.Report("frequency", $"expected realtime, hourly, daily or a duration such as '10 minutes', got {ConfigReader.Quote(text)}");
        return SyncFrequency.Every(Duration.FromHours(1));
    }
}
