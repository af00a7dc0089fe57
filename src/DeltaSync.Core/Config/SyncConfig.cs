using NodaTime;

namespace DeltaSync.Core.Config;

/// <summary>A loaded, validated configuration file. Code below the CLI sees only these records, never YAML.</summary>
/// <param name="Name">The sync's name (<c>sync.name</c>, else the config file's name): prefixes state and reports.</param>
/// <param name="ConfigPath">Absolute path of the configuration file; relative paths in it resolve from its folder.</param>
public sealed record SyncConfig(
    string Name,
    string ConfigPath,
    SyncOptions Sync,
    CdcOptions Cdc,
    ConflictResolutionOptions ConflictResolution,
    StateOptions State)
{
    public string BaseDirectory => Path.GetDirectoryName(ConfigPath) ?? Directory.GetCurrentDirectory();
}

/// <summary>The <c>sync</c> block.</summary>
public sealed record SyncOptions(
    EndpointOptions Source,
    EndpointOptions Destination,
    CdcMethod CdcMethod,
    SyncFrequency Frequency,
    int BatchSize,
    int MaxParallelTables)
{
    /// <summary><c>sync.retry</c> and <c>sync.circuit_breaker</c>: how failed destination writes are retried.</summary>
    public RetryOptions Retry { get; init; } = RetryOptions.Default;

    /// <summary><c>sync.relationships</c>: parent deletes carried to child tables at the destination.</summary>
    public IReadOnlyList<RelationshipOptions> Relationships { get; init; } = [];

    /// <summary>
    /// Every source: <c>sync.sources</c> when configured (several named sources meeting at one destination), else the
    /// single <c>sync.source</c>. <see cref="Source"/> is the first of them.
    /// </summary>
    public IReadOnlyList<EndpointOptions> Sources
    {
        get => _sources ?? [Source];
        init => _sources = value;
    }

    private readonly IReadOnlyList<EndpointOptions>? _sources;

    /// <summary>Whether several sources are configured (stream names then include the source's name).</summary>
    public bool IsMultiSource => Sources.Count > 1;

    /// <summary>The source named <paramref name="name"/>.</summary>
    /// <exception cref="InvalidOperationException">No source has that name.</exception>
    public EndpointOptions SourceNamed(string name) =>
        Sources.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.Ordinal))
        ?? throw new InvalidOperationException($"no source is named '{name}' (configured: {string.Join(", ", Sources.Select(s => s.Name))})");
}

/// <summary>
/// How a batch write that failed is handled, by error class: transient failures are retried up to
/// <paramref name="MaxAttempts"/> times with exponential back-off and jitter from <paramref name="InitialDelay"/> up to
/// <paramref name="MaxDelay"/>; permanent failures are not retried but split to isolate the record at fault; fatal ones
/// stop the table. <paramref name="BreakerFailureThreshold"/> failed writes in a row, from any table, open the
/// destination's circuit for <paramref name="BreakDuration"/>: writes then fail at once instead of piling up.
/// </summary>
public sealed record RetryOptions(int MaxAttempts, Duration InitialDelay, Duration MaxDelay, int BreakerFailureThreshold, Duration BreakDuration)
{
    public static RetryOptions Default { get; } = new(5, Duration.FromMilliseconds(500), Duration.FromSeconds(30), 5, Duration.FromSeconds(30));
}

/// <summary>A source or destination: <c>sync.source</c> / <c>sync.destination</c>.</summary>
/// <param name="Name">Its name in reports and the ledger (<c>name</c>, else "source"/"destination").</param>
/// <param name="Type"><c>database</c>, <c>api</c>, <c>file</c> or <c>data_warehouse</c>.</param>
/// <param name="Connection">A URI (<c>sqlite:path.db</c>, <c>postgresql://…</c>) or a driver connection string, after <c>${ENV}</c> interpolation.</param>
/// <param name="Tables">The tables to sync (source only; empty for a destination).</param>
public sealed record EndpointOptions(string Name, string Type, string Connection, IReadOnlyList<TableOptions> Tables)
{
    /// <summary>An entry of <c>sync.sources</c>: its <c>cdc_method</c>, overriding <c>sync.cdc_method</c> for its tables (null: inherit).</summary>
    public CdcMethod? CdcMethod { get; init; }

    /// <summary>
    /// <c>key_map</c> of a <c>sync.sources</c> entry: per table, destination key column → this source's column, for
    /// sources that name key columns differently (records meet by primary key at the destination).
    /// </summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>> KeyMap { get; init; } = NoKeyMap;

    // One shared empty map, so endpoints without key_map stay equal as records.
    private static readonly IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>> NoKeyMap =
        new Dictionary<string, IReadOnlyDictionary<string, string>>(StringComparer.OrdinalIgnoreCase);

    /// <summary><c>clock_offset</c>: how far this source's clock runs ahead of true time (negative: behind); conflict decisions subtract it.</summary>
    public Duration ClockOffset { get; init; }
}

/// <summary>One entry of <c>sync.source.tables</c>; unset fields fall back to the <c>sync</c>/<c>cdc</c> defaults.</summary>
public sealed record TableOptions(
    string Name,
    IReadOnlyList<string>? PrimaryKey = null,
    CdcMethod? CdcMethod = null,
    string? UpdatedAtField = null,
    string? CreatedAtField = null,
    string? VersionField = null,
    string? SequenceField = null,
    TablePriority Priority = TablePriority.Normal)
{
    /// <summary><c>soft_delete</c>: the column marking a row deleted while it stays in the source; null when the table has none.</summary>
    public SoftDeleteOptions? SoftDelete { get; init; }
}

/// <summary>What a soft-deleted row means at the destination.</summary>
public enum SoftDeleteMode
{
    /// <summary>The row is deleted at the destination (the default).</summary>
    Propagate,
    /// <summary>The row is copied with its flag, like any other column.</summary>
    Keep,
}

/// <summary>
/// A table's <c>soft_delete</c>: the row counts as deleted when <paramref name="Field"/> is non-NULL (a <c>deleted_at</c>
/// column), or, with <paramref name="DeletedValues"/>, when it equals one of them (<c>is_deleted</c> in <c>[1, true]</c>).
/// </summary>
public sealed record SoftDeleteOptions(string Field, IReadOnlyList<string>? DeletedValues, SoftDeleteMode Mode);

/// <summary>What a parent's delete does to its children at the destination (<c>sync.relationships[].on_delete</c>).</summary>
public enum DeleteAction
{
    /// <summary>The children are deleted too.</summary>
    Cascade,
    /// <summary>The children's foreign key is set to NULL.</summary>
    SetNull,
    /// <summary>A parent with children at the destination is not deleted: the delete goes to the dead-letter queue.</summary>
    Restrict,
}

/// <summary>
/// One entry of <c>sync.relationships</c>: <paramref name="Child"/>'s <paramref name="ForeignKey"/> columns reference
/// <paramref name="Parent"/>'s primary key, and a parent's delete is carried to the children at the destination as the
/// source's foreign key would.
/// </summary>
public sealed record RelationshipOptions(string Parent, string Child, IReadOnlyList<string> ForeignKey, DeleteAction OnDelete);

/// <summary>How changes are found at the source.</summary>
public enum CdcMethod
{
    Timestamp,
    Version,
    Changelog,
    Trigger,
    Polling,
    Hybrid,
}

/// <summary>Which waiting table gets a free slot first.</summary>
public enum TablePriority
{
    Critical = 0,
    High = 1,
    Normal = 2,
    Low = 3,
}

/// <summary><c>sync.frequency</c>: <c>realtime</c> (continuous, polling at <c>cdc.polling.interval</c>) or a fixed interval.</summary>
public sealed record SyncFrequency(bool IsRealtime, Duration Interval)
{
    public static SyncFrequency Realtime(Duration pollInterval) => new(true, pollInterval);

    public static SyncFrequency Every(Duration interval) => new(false, interval);
}

/// <summary>The <c>cdc</c> block.</summary>
public sealed record CdcOptions(
    TimestampCdcOptions Timestamp,
    VersionCdcOptions Version,
    ChangelogCdcOptions Changelog,
    PollingCdcOptions Polling,
    TriggerCdcOptions Trigger)
{
    /// <summary><c>cdc.hybrid</c>.</summary>
    public HybridCdcOptions Hybrid { get; init; } = new(null, Duration.FromHours(1));
}

/// <summary><c>cdc.hybrid</c>: a capture method plus periodic reconciliation of source and destination.</summary>
/// <param name="Base">The method between reconciliations; default: changelog where the source has a log, else timestamp.</param>
/// <param name="ReconcileInterval">How often a pass also reconciles the table with the destination (0: every pass).</param>
public sealed record HybridCdcOptions(CdcMethod? Base, Duration ReconcileInterval)
{
    /// <summary><c>cdc.hybrid.ranges</c>: top-level key ranges a differing table is cut into (also used by <c>reconcile</c>).</summary>
    public int Ranges { get; init; } = Capture.RangeReconcileOptions.DefaultRanges;

    /// <summary><c>cdc.hybrid.leaf_rows</c>: a differing range this small is compared row by row.</summary>
    public int LeafRows { get; init; } = Capture.RangeReconcileOptions.DefaultLeafRows;

    /// <summary>The reconciler's options.</summary>
    public Capture.RangeReconcileOptions Reconcile => new(Ranges, LeafRows);
}

/// <summary><c>cdc.timestamp</c>.</summary>
/// <param name="ToleranceWindow">Every run re-reads this far behind the cursor; the ledger drops what is already applied.</param>
/// <param name="SafetyMargin">The cursor never advances past the source's clock minus this.</param>
/// <param name="MaxFutureSkew">Timestamps further ahead of the source's clock than this are flagged.</param>
public sealed record TimestampCdcOptions(
    string UpdatedAtField,
    string? CreatedAtField,
    string Timezone,
    Duration ToleranceWindow,
    Duration SafetyMargin,
    Duration MaxFutureSkew);

/// <summary><c>cdc.version</c>: <c>sequence_field</c> is a table-wide increasing number (a cursor); <c>version_field</c> a per-row counter.</summary>
public sealed record VersionCdcOptions(string? VersionField, string? SequenceField);

/// <summary><c>cdc.changelog</c>.</summary>
/// <param name="Type">The log (<c>postgres_wal</c>…).</param>
/// <param name="Position">Where to start reading the log when there is no checkpoint yet (informational for the WAL: a new slot starts at its creation).</param>
/// <param name="SlotName">The replication slot (PostgreSQL); default: one per table, named after the sync and table.</param>
/// <param name="PublicationName">The publication (PostgreSQL); default: one per table, named like the slot.</param>
public sealed record ChangelogCdcOptions(string? Type, string? Position, string? SlotName = null, string? PublicationName = null)
{
    /// <summary>The default of <see cref="SnapshotChunkSize"/>.</summary>
    public const int DefaultSnapshotChunkSize = 50_000;

    /// <summary>
    /// Rows per chunk of a log capture's initial snapshot (<c>snapshot_chunk_size</c>): the table is copied in key-ordered
    /// chunks interleaved with the log, so the slot never holds WAL for the whole copy.
    /// </summary>
    public int SnapshotChunkSize { get; init; } = DefaultSnapshotChunkSize;
}

/// <summary><c>cdc.polling</c>.</summary>
public sealed record PollingCdcOptions(Duration Interval, string? Query);

/// <summary><c>cdc.trigger</c>: the change table the engine installs in the source.</summary>
public sealed record TriggerCdcOptions(string ChangeTable, bool Prune);

/// <summary>The <c>conflict_resolution</c> block (applied when several sources meet; see the conflicts feature).</summary>
public sealed record ConflictResolutionOptions(
    string DefaultStrategy,
    IReadOnlyList<FieldStrategyOptions> Strategies,
    Duration? ToleranceTimeWindow,
    double? ManualReviewThreshold)
{
    /// <summary>Every option at its default: last-write-wins everywhere, no window, no threshold, no plug-in, no notifications.</summary>
    public static ConflictResolutionOptions Default { get; } = new("last_write_wins", [], null, null);

    /// <summary>
    /// <c>conflict_resolution.source_priority</c>: sources in order of precedence for every field without its own list
    /// (<c>source_wins</c>, the window's fallback, and last-write-wins ties).
    /// </summary>
    public IReadOnlyList<string> SourcePriority { get; init; } = [];

    /// <summary>
    /// <c>conflict_resolution.tolerance.fallback</c>: what decides writes closer than the time window, where clocks
    /// cannot order them (<c>source_wins</c> or <c>manual_review</c>, the default).
    /// </summary>
    public string ToleranceFallback { get; init; } = "manual_review";

    /// <summary><c>conflict_resolution.plugin</c>: an <c>IConflictResolver</c> loaded from an assembly; null when absent.</summary>
    public ConflictPluginOptions? Plugin { get; init; }

    /// <summary><c>conflict_resolution.notifications</c>: null when absent (no webhook, no threshold).</summary>
    public ConflictNotificationOptions? Notifications { get; init; }
}

/// <summary>One entry of <c>conflict_resolution.strategies</c>.</summary>
public sealed record FieldStrategyOptions(string Field, string Strategy, IReadOnlyList<string> SourcePriority)
{
    /// <summary>
    /// For <c>strategy: custom</c>: <c>max</c>, <c>min</c>, <c>prefer_non_null</c>, <c>concat_unique</c>,
    /// <c>sum_deltas</c> or <c>plugin</c>; null for the other strategies.
    /// </summary>
    public string? Rule { get; init; }
}

/// <summary><c>conflict_resolution.plugin</c>: <paramref name="AssemblyPath"/> is absolute (resolved from the config's folder).</summary>
public sealed record ConflictPluginOptions(string AssemblyPath, string TypeName);

/// <summary>
/// <c>conflict_resolution.notifications</c>: a run whose conflicts need attention (any held for manual review, or more
/// than <paramref name="ThresholdPerRun"/> of them) is posted to <paramref name="Webhook"/> and logged as a warning.
/// </summary>
public sealed record ConflictNotificationOptions(WebhookOptions? Webhook, int? ThresholdPerRun);

/// <summary>
/// <c>conflict_resolution.notifications.webhook</c>: a JSON POST to <paramref name="Url"/> with <paramref name="Headers"/>,
/// tried at most <paramref name="MaxAttempts"/> times (network errors, timeouts, 408, 429 and 5xx are tried again).
/// </summary>
public sealed record WebhookOptions(Uri Url, IReadOnlyDictionary<string, string> Headers, int MaxAttempts)
{
    public const int DefaultMaxAttempts = 4;
}

/// <summary>The <c>state</c> block.</summary>
public sealed record StateOptions(StateStorageOptions Storage, CheckpointingOptions Checkpointing, RecoveryOptions Recovery)
{
    /// <summary><c>state.backup</c>; null (no backups) when the block is absent.</summary>
    public StateBackupOptions? Backup { get; init; }
}

/// <summary>Where state lives.</summary>
public enum StateStorageType
{
    /// <summary>A database given by <c>connection</c> (a SQLite file by default).</summary>
    Database,
    /// <summary>JSON files in the folder given by <c>path</c> (or <c>connection</c>).</summary>
    File,
    /// <summary>A Redis server.</summary>
    Redis,
}

/// <summary><c>state.storage</c>. <paramref name="Location"/> is a connection URI for databases, a folder for files.</summary>
public sealed record StateStorageOptions(StateStorageType Type, string Location);

/// <summary>When checkpoints are written.</summary>
public enum CheckpointFrequency
{
    EveryBatch,
    EveryNRecords,
    TimeBased,
}

/// <summary><c>state.checkpointing</c>; <paramref name="Interval"/> is records or seconds depending on the frequency.</summary>
public sealed record CheckpointingOptions(CheckpointFrequency Frequency, long Interval);

/// <summary><c>state.recovery</c>.</summary>
public sealed record RecoveryOptions(bool ValidateOnStart, bool AutoRepair, bool ResetOnCorruption);

/// <summary><c>state.backup</c>: after a run, the state is exported when the newest backup is older than <paramref name="Interval"/>.</summary>
/// <param name="Interval">The least time between two backups.</param>
/// <param name="Keep">How many backups are kept (the oldest beyond are deleted).</param>
/// <param name="Folder">Absolute path of the folder holding them.</param>
public sealed record StateBackupOptions(Duration Interval, int Keep, string Folder);
