using DeltaSync.Core.Config;
using DeltaSync.Core.Pipeline;
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

    /// <summary>The change log read by <see cref="CdcMethod.Changelog"/> (<c>postgres_wal</c>…), when configured.</summary>
    public string? ChangelogType { get; init; }

    /// <summary>The replication slot this table's log capture uses (PostgreSQL): unique per sync, table and destination.</summary>
    public string SlotName { get; init; } = "";

    /// <summary>The publication this table's log capture reads (PostgreSQL).</summary>
    public string PublicationName { get; init; } = "";

    /// <summary>Rows per chunk of a log capture's initial snapshot, taken between reads of the log (<c>cdc.changelog.snapshot_chunk_size</c>).</summary>
    public int SnapshotChunkSize { get; init; } = Config.ChangelogCdcOptions.DefaultSnapshotChunkSize;

    /// <summary>The table's <c>soft_delete</c> settings; null when deletes are only hard deletes.</summary>
    public SoftDeleteOptions? SoftDelete { get; init; }

    /// <summary>
    /// The tables referencing this one (<c>sync.relationships</c>, nested for grandchildren): what a delete of this
    /// table's rows does to theirs at the destination.
    /// </summary>
    public IReadOnlyList<ChildRelation> Children { get; init; } = [];

    /// <summary>
    /// <c>key_map</c>: destination key column → this source's column, for a source naming key columns differently;
    /// empty when the names agree.
    /// </summary>
    public IReadOnlyDictionary<string, string> KeyMap { get; init; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

    /// <summary>How far the source's clock runs ahead of true time (<c>clock_offset</c>); conflict decisions subtract it.</summary>
    public Duration ClockOffset { get; init; }

    /// <summary>
    /// Resolves every table of a config: one plan per (source, table). With several sources the stream is
    /// <c>sync/source/table</c>; a single source keeps <c>sync/table</c>, so state written before sources existed still applies.
    /// </summary>
    public static IReadOnlyList<TablePlan> FromConfig(SyncConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var cdc = config.Cdc;
        var multi = config.Sync.IsMultiSource;
        var plans = new List<TablePlan>();
        foreach (var source in config.Sync.Sources)
        {
            var tables = source.Tables;
            foreach (var t in tables)
            {
                var stream = multi ? StreamName(config.Name, source.Name + "/" + t.Name) : StreamName(config.Name, t.Name);
                var logTable = multi ? source.Name + "_" + t.Name : t.Name;
                plans.Add(new TablePlan(
                    stream,
                    source.Name,
                    t.Name,
                    t.Name,
                    t.PrimaryKey,
                    t.CdcMethod ?? source.CdcMethod ?? config.Sync.CdcMethod,
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
                    Consumer = $"{stream}@{DestinationDigest(config.Sync.Destination.Connection)}",
                    ChangelogType = cdc.Changelog.Type,
                    SlotName = LogObjectName(cdc.Changelog.SlotName, config, logTable, tables.Count),
                    PublicationName = LogObjectName(cdc.Changelog.PublicationName ?? cdc.Changelog.SlotName, config, logTable, tables.Count),
                    SnapshotChunkSize = cdc.Changelog.SnapshotChunkSize,
                    SoftDelete = t.SoftDelete,
                    Children = ChildrenOf(config, source.Name, t.Name, new HashSet<string>()),
                    KeyMap = source.KeyMap.TryGetValue(t.Name, out var keyMap) ? keyMap : new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase),
                    ClockOffset = source.ClockOffset,
                });
            }
        }

        return plans;
    }

    /// <summary>
    /// Destination tables written by more than one source: their records go through conflict detection
    /// (<see cref="Conflicts.ConflictEngine"/>); every other table keeps the single-source path.
    /// </summary>
    public static IReadOnlySet<string> SharedDestinationTables(IEnumerable<TablePlan> plans) =>
        plans.GroupBy(p => p.DestinationTable, StringComparer.OrdinalIgnoreCase)
            .Where(g => g.Select(p => p.SourceName).Distinct(StringComparer.Ordinal).Count() > 1)
            .Select(g => g.Key)
            .ToHashSet(StringComparer.OrdinalIgnoreCase);

    /// <summary>The relationships whose parent is <paramref name="table"/>, each with its own children (a cycle stops where it closes).</summary>
    private static List<ChildRelation> ChildrenOf(SyncConfig config, string sourceName, string table, IReadOnlySet<string> visited)
    {
        var seen = new HashSet<string>(visited, StringComparer.OrdinalIgnoreCase) { table };
        return config.Sync.Relationships
            .Where(r => string.Equals(r.Parent, table, StringComparison.OrdinalIgnoreCase) && !seen.Contains(r.Child))
            .Select(r => new ChildRelation(
                r.Child,
                new Ledger.LedgerScope(r.Child, sourceName),
                r.ForeignKey,
                r.OnDelete,
                ChildrenOf(config, sourceName, r.Child, seen)))
            .ToList();
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

    /// <summary>
    /// A replication slot or publication name: the configured one (with the table appended when several tables share
    /// the config), else <c>deltasync_&lt;sync&gt;_&lt;table&gt;_&lt;destination digest&gt;</c>. Slot names allow only
    /// lower-case letters, digits and underscores, up to 63 characters.
    /// </summary>
    private static string LogObjectName(string? configured, SyncConfig config, string table, int tableCount)
    {
        var name = configured is { Length: > 0 }
            ? tableCount == 1 ? configured : $"{configured}_{table}"
            : $"deltasync_{Clip(config.Name, 20)}_{Clip(table, 20)}_{DestinationDigest(config.Sync.Destination.Connection)[..8]}";
        var clean = new string(name.ToLowerInvariant().Select(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_' ? c : '_').ToArray());
        return clean.Length <= 63 ? clean : clean[..63];
    }

    private static string Clip(string text, int length) => text.Length <= length ? text : text[..length];

    /// <summary>The state key of a table within a sync.</summary>
    public static string StreamName(string syncName, string table) => $"{syncName}/{table}";

    /// <summary>
    /// How a table's stream is named to people: <c>customers</c>, or <c>customers (crm)</c> when a source is given — with
    /// several sources a table name may be read by more than one.
    /// </summary>
    public static string Label(string table, string? source) => source is null ? table : $"{table} ({source})";

    /// <summary><see cref="Label(string, string?)"/> of this plan: with its source when <paramref name="multiSource"/>.</summary>
    public string Label(bool multiSource) => Label(Table, multiSource ? SourceName : null);

    public TableOptions ToTableOptions() => new(Table, PrimaryKey, Method, UpdatedAtField, CreatedAtField, VersionField, SequenceField, Priority);
}
