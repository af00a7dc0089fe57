using NodaTime;

namespace DeltaSync.Core.Config;

/// <summary>Binds the <c>cdc</c> block: per-method settings shared by every table that uses the method.</summary>
internal static class CdcBlockBinder
{
    public static readonly Duration DefaultPollingInterval = Duration.FromMinutes(1);

    public static CdcOptions Bind(YamlSection cdc) => new(
        BindTimestamp(cdc.Section("timestamp", ConfigKeys.Timestamp)),
        BindVersion(cdc.Section("version", ConfigKeys.Version)),
        BindChangelog(cdc.Section("changelog", ConfigKeys.Changelog)),
        BindPolling(cdc.Section("polling", ConfigKeys.Polling)),
        BindTrigger(cdc.Section("trigger", ConfigKeys.Trigger)))
    {
        Hybrid = BindHybrid(cdc.Section("hybrid", ConfigKeys.Hybrid)),
    };

    private static HybridCdcOptions BindHybrid(YamlSection hybrid)
    {
        CdcMethod? baseMethod = hybrid["base"] is null ? null : hybrid.Choice("base", CdcMethod.Timestamp, ConfigChoices.CdcMethods);
        if (baseMethod is CdcMethod.Hybrid or CdcMethod.Polling)
        {
            hybrid.Report("base", "the base of hybrid capture is changelog, timestamp, version or trigger (reconciliation already compares every row)");
        }

        return new HybridCdcOptions(baseMethod, hybrid.Duration("reconcile_interval", Duration.FromHours(1), allowZero: true))
        {
            Ranges = hybrid.Integer("ranges", Capture.RangeReconcileOptions.DefaultRanges, min: 2, max: 4096),
            LeafRows = hybrid.Integer("leaf_rows", Capture.RangeReconcileOptions.DefaultLeafRows, min: 1, max: 100_000),
        };
    }

    private static TimestampCdcOptions BindTimestamp(YamlSection timestamp)
    {
        var timezone = timestamp.Text("timezone", "UTC");
        if (Time.TimeZones.Find(timezone) is null)
        {
            timestamp.Report("timezone", $"unknown time zone {ConfigReader.Quote(timezone)}; expected an IANA id such as 'UTC' or 'Europe/Berlin'");
        }

        return new TimestampCdcOptions(
            timestamp.Text("updated_at_field", "updated_at"),
            // An explicit null says "the tables have no creation column", unlike leaving the key out.
            timestamp["created_at_field"] is null ? "created_at" : timestamp.Text("created_at_field"),
            timezone,
            timestamp.Duration("tolerance_window", Duration.FromMinutes(5), allowZero: true),
            timestamp.Duration("safety_margin", Duration.FromSeconds(5), allowZero: true),
            timestamp.Duration("max_future_skew", Duration.FromMinutes(5), allowZero: true));
    }

    private static VersionCdcOptions BindVersion(YamlSection version) =>
        new(version.Text("version_field"), version.Text("sequence_field"));

    private static ChangelogCdcOptions BindChangelog(YamlSection changelog) =>
        new(changelog.OptionalName("type", ConfigChoices.ChangelogTypes), changelog.Text("position"), changelog.Text("slot_name"), changelog.Text("publication_name"))
        {
            SnapshotChunkSize = changelog.Integer("snapshot_chunk_size", ChangelogCdcOptions.DefaultSnapshotChunkSize, min: 1, max: 10_000_000),
        };

    private static PollingCdcOptions BindPolling(YamlSection polling) =>
        new(polling.Duration("interval", DefaultPollingInterval), polling.Text("query"));

    private static TriggerCdcOptions BindTrigger(YamlSection trigger) =>
        new(trigger.Text("change_table", "_deltasync_changes"), trigger.Boolean("prune", true));
}
