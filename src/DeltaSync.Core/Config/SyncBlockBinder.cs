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

        var sourceSection = sync.Section("source", ConfigKeys.Source, required: true);
        var tables = TableListBinder.Bind(sourceSection, cdcMethod, cdc.Version, sync);
        var source = BindEndpoint(sourceSection, "source", ConfigChoices.SourceTypes, tables);
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
