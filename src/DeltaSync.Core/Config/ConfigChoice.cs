namespace DeltaSync.Core.Config;

/// <summary>The spellings allowed for one enumerated configuration value, in the order they are listed to users.</summary>
internal sealed class ConfigChoice<T>
{
    private readonly (string Name, T Value)[] choices;

    public ConfigChoice(params (string Name, T Value)[] choices)
    {
        this.choices = choices;
        Names = choices.Length switch
        {
            1 => choices[0].Name,
            _ => string.Join(", ", choices[..^1].Select(c => c.Name)) + " or " + choices[^1].Name,
        };
    }

    /// <summary>"a, b or c", for messages.</summary>
    public string Names { get; }

    public IEnumerable<string> AllNames => choices.Select(c => c.Name);

    public bool TryGet(string text, out T value)
    {
        foreach (var (name, candidate) in choices)
        {
            if (string.Equals(name, text.Trim(), StringComparison.OrdinalIgnoreCase))
            {
                value = candidate;
                return true;
            }
        }

        value = default!;
        return false;
    }
}

/// <summary>The enumerations of the configuration file, as written in YAML (and in <c>schema/deltasync.schema.json</c>).</summary>
internal static class ConfigChoices
{
    public static readonly ConfigChoice<CdcMethod> CdcMethods = new(
        ("timestamp", CdcMethod.Timestamp),
        ("version", CdcMethod.Version),
        ("changelog", CdcMethod.Changelog),
        ("trigger", CdcMethod.Trigger),
        ("polling", CdcMethod.Polling),
        ("hybrid", CdcMethod.Hybrid));

    public static readonly ConfigChoice<TablePriority> Priorities = new(
        ("critical", TablePriority.Critical),
        ("high", TablePriority.High),
        ("normal", TablePriority.Normal),
        ("low", TablePriority.Low));

    public static readonly ConfigChoice<SoftDeleteMode> SoftDeleteModes = new(
        ("propagate", SoftDeleteMode.Propagate),
        ("keep", SoftDeleteMode.Keep));

    public static readonly ConfigChoice<DeleteAction> DeleteActions = new(
        ("cascade", DeleteAction.Cascade),
        ("set_null", DeleteAction.SetNull),
        ("restrict", DeleteAction.Restrict));

    public static readonly ConfigChoice<string> SourceTypes = Strings("database", "api", "file");

    public static readonly ConfigChoice<string> DestinationTypes = Strings("database", "api", "data_warehouse");

    public static readonly ConfigChoice<string> ChangelogTypes = Strings("postgres_wal", "mysql_binlog", "mongo_oplog");

    public static readonly ConfigChoice<string> ConflictStrategies = Strings("last_write_wins", "source_wins", "manual_review", "custom");

    public static readonly ConfigChoice<string> ConflictRules = Strings("max", "min", "prefer_non_null", "concat_unique", "sum_deltas", "plugin");

    public static readonly ConfigChoice<string> ToleranceFallbacks = Strings("source_wins", "manual_review");

    public static readonly ConfigChoice<StateStorageType> StorageTypes = new(
        ("database", StateStorageType.Database),
        ("file", StateStorageType.File),
        ("redis", StateStorageType.Redis));

    public static readonly ConfigChoice<CheckpointFrequency> CheckpointFrequencies = new(
        ("every_batch", CheckpointFrequency.EveryBatch),
        ("every_n_records", CheckpointFrequency.EveryNRecords),
        ("time_based", CheckpointFrequency.TimeBased));

    private static ConfigChoice<string> Strings(params string[] names) =>
        new(names.Select(n => (n, n)).ToArray());
}
