using DeltaSync.Core.Config;
using NodaTime;

namespace DeltaSync.Core.Connectors;

/// <summary>
/// One table's resolved settings: the table options merged with the <c>sync</c> and <c>cdc</c> defaults.
/// </summary>
public sealed record TablePlan(
    string Stream,
    string SourceName,
    string Table,
    string DestinationTable,
    IReadOnlyList<string>? PrimaryKey,
    CdcMethod Method,
    TablePriority Priority,
    string UpdatedAtField,
    string? CreatedAtField,
    string? VersionField,
    string? SequenceField,
    Duration ToleranceWindow,
    Duration SafetyMargin,
    string Timezone,
    string TriggerChangeTable,
    bool PruneChanges)
{
    /// <summary>
    /// Who reads this table's changes: the stream plus a digest of the destination, so two syncs of one source table
    /// (different configs or destinations) each keep their own progress in a shared change table.
    /// </summary>
    public string Consumer { get; init; } = Stream;

    /// <summary>Resolves every table of a config.</summary>
    public static IReadOnlyList<TablePlan> FromConfig(SyncConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var cdc = config.Cdc;
        return config.Sync.Source.Tables.Select(t => new TablePlan(
            StreamName(config.Name, t.Name),
            config.Sync.Source.Name,
            t.Name,
            t.Name,
            t.PrimaryKey,
            t.CdcMethod ?? config.Sync.CdcMethod,
            t.Priority,
            t.UpdatedAtField ?? cdc.Timestamp.UpdatedAtField,
            t.CreatedAtField ?? cdc.Timestamp.CreatedAtField,
            t.VersionField ?? cdc.Version.VersionField,
            t.SequenceField ?? cdc.Version.SequenceField,
            cdc.Timestamp.ToleranceWindow,
            cdc.Timestamp.SafetyMargin,
            cdc.Timestamp.Timezone,
            cdc.Trigger.ChangeTable,
            cdc.Trigger.Prune)
        {
            Consumer = $"{StreamName(config.Name, t.Name)}@{DestinationDigest(config.Sync.Destination.Connection)}",
        }).ToList();
    }

    /// <summary>
    /// The plans of the named tables (all when <paramref name="tables"/> is empty); an unknown name is a usage error
    /// reported like a configuration problem, with the configured names.
    /// </summary>
    public static IReadOnlyList<TablePlan> Select(SyncConfig config, IReadOnlyList<string>? tables)
    {
        var plans = FromConfig(config);
        if (tables is null || tables.Count == 0)
        {
            return plans;
        }

        var unknown = tables.Where(t => !plans.Any(p => string.Equals(p.Table, t, StringComparison.OrdinalIgnoreCase))).ToList();
        if (unknown.Count > 0)
        {
            throw new ConfigException([new ConfigError(config.ConfigPath, "--table", $"unknown table(s) {string.Join(", ", unknown)}; configured: {string.Join(", ", plans.Select(p => p.Table))}")]);
        }

        return plans.Where(p => tables.Contains(p.Table, StringComparer.OrdinalIgnoreCase)).ToList();
    }

    private static string DestinationDigest(string connection) =>
        Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(connection)))[..12];

    /// <summary>The state key of a table within a sync.</summary>
    public static string StreamName(string syncName, string table) => $"{syncName}/{table}";

    public TableOptions ToTableOptions() => new(Table, PrimaryKey, Method, UpdatedAtField, CreatedAtField, VersionField, SequenceField, Priority);
}
