using DeltaSync.Core.Config;
using NodaTime;

namespace DeltaSync.Core.Tests.Config;

public sealed class ConfigLoaderTests
{
    private const string Full = """
        sync:
          name: shop_sync
          source:
            name: shop_db
            type: api
            connection: "sqlite:source.db"
            tables:
              - customers
              - name: orders
                primary_key: [id, line]
                cdc_method: trigger
                updated_at_field: modified_at
                created_at_field: created
                version_field: v
                sequence_field: seq
                priority: critical
              - {name: products, primary_key: sku, priority: low}
          destination:
            name: warehouse
            type: data_warehouse
            connection: "sqlite:dest.db"
          cdc_method: version
          frequency: 10 minutes
          batch_size: 5000
          max_parallel_tables: 8
        cdc:
          timestamp:
            updated_at_field: changed_at
            created_at_field: born_at
            timezone: Europe/Berlin
            tolerance_window: 10 minutes
            safety_margin: 2s
            max_future_skew: 1 hour
          version:
            version_field: row_version
            sequence_field: seq_id
          changelog:
            type: postgres_wal
            position: "0/16B3748"
          polling:
            interval: 30 sec
            query: "SELECT * FROM t WHERE updated_at > :last_sync"
          trigger:
            change_table: _changes
            prune: false
        conflict_resolution:
          default_strategy: manual_review
          strategies:
            - field: email
              strategy: source_wins
              source_priority: [system_a, system_b]
            - field: status
              strategy: manual_review
          tolerance:
            time_window: 1 hour
            manual_review_threshold: 0.75
        state:
          storage:
            type: redis
            connection: "localhost:6379"
          checkpointing:
            frequency: every_n_records
            interval: 250
          recovery:
            validate_on_start: false
            auto_repair: false
            reset_on_corruption: true
        """;

    [Fact]
    public void Full_config_binds_every_key()
    {
        var config = ConfigText.Parse(Full);

        Assert.Equal("shop_sync", config.Name);
        Assert.Equal(ConfigText.FilePath, config.ConfigPath);
        Assert.Equal(ConfigText.Folder, config.BaseDirectory);

        var sync = config.Sync;
        Assert.Equal(new EndpointOptions("shop_db", "api", "sqlite:source.db", sync.Source.Tables), sync.Source);
        Assert.Equal(
            [
                new TableOptions("customers"),
                new TableOptions("orders", ["id", "line"], CdcMethod.Trigger, "modified_at", "created", "v", "seq", TablePriority.Critical),
                new TableOptions("products", ["sku"], Priority: TablePriority.Low),
            ],
            sync.Source.Tables,
            TableComparer.Instance);
        Assert.Equal("warehouse", sync.Destination.Name);
        Assert.Equal("data_warehouse", sync.Destination.Type);
        Assert.Equal("sqlite:dest.db", sync.Destination.Connection);
        Assert.Empty(sync.Destination.Tables);
        Assert.Equal(CdcMethod.Version, sync.CdcMethod);
        Assert.Equal(SyncFrequency.Every(Duration.FromMinutes(10)), sync.Frequency);
        Assert.Equal(5000, sync.BatchSize);
        Assert.Equal(8, sync.MaxParallelTables);

        Assert.Equal(
            new TimestampCdcOptions("changed_at", "born_at", "Europe/Berlin", Duration.FromMinutes(10), Duration.FromSeconds(2), Duration.FromHours(1)),
            config.Cdc.Timestamp);
        Assert.Equal(new VersionCdcOptions("row_version", "seq_id"), config.Cdc.Version);
        Assert.Equal(new ChangelogCdcOptions("postgres_wal", "0/16B3748"), config.Cdc.Changelog);
        Assert.Equal(new PollingCdcOptions(Duration.FromSeconds(30), "SELECT * FROM t WHERE updated_at > :last_sync"), config.Cdc.Polling);
        Assert.Equal(new TriggerCdcOptions("_changes", false), config.Cdc.Trigger);

        var conflicts = config.ConflictResolution;
        Assert.Equal("manual_review", conflicts.DefaultStrategy);
        Assert.Collection(
            conflicts.Strategies,
            s =>
            {
                Assert.Equal(("email", "source_wins"), (s.Field, s.Strategy));
                Assert.Equal(["system_a", "system_b"], s.SourcePriority);
            },
            s =>
            {
                Assert.Equal(("status", "manual_review"), (s.Field, s.Strategy));
                Assert.Empty(s.SourcePriority);
            });
        Assert.Equal(Duration.FromHours(1), conflicts.ToleranceTimeWindow);
        Assert.Equal(0.75, conflicts.ManualReviewThreshold);

        Assert.Equal(new StateStorageOptions(StateStorageType.Redis, "localhost:6379"), config.State.Storage);
        Assert.Equal(new CheckpointingOptions(CheckpointFrequency.EveryNRecords, 250), config.State.Checkpointing);
        Assert.Equal(new RecoveryOptions(false, false, true), config.State.Recovery);
    }

    [Fact]
    public void Minimal_config_gets_the_documented_defaults()
    {
        var config = ConfigText.Parse(ConfigText.Minimal);

        Assert.Equal("shop", config.Name);
        Assert.Equal(new EndpointOptions("source", "database", "sqlite:source.db", config.Sync.Source.Tables), config.Sync.Source);
        Assert.Equal(new TableOptions("customers"), Assert.Single(config.Sync.Source.Tables), TableComparer.Instance);
        Assert.Equal(new EndpointOptions("destination", "database", "sqlite:dest.db", config.Sync.Destination.Tables), config.Sync.Destination);
        Assert.Equal(CdcMethod.Timestamp, config.Sync.CdcMethod);
        Assert.Equal(SyncFrequency.Every(Duration.FromHours(1)), config.Sync.Frequency);
        Assert.Equal(1000, config.Sync.BatchSize);
        Assert.Equal(4, config.Sync.MaxParallelTables);

        Assert.Equal(
            new TimestampCdcOptions("updated_at", "created_at", "UTC", Duration.FromMinutes(5), Duration.FromSeconds(5), Duration.FromMinutes(5)),
            config.Cdc.Timestamp);
        Assert.Equal(new VersionCdcOptions(null, null), config.Cdc.Version);
        Assert.Equal(new ChangelogCdcOptions(null, null), config.Cdc.Changelog);
        Assert.Equal(new PollingCdcOptions(Duration.FromMinutes(1), null), config.Cdc.Polling);
        Assert.Equal(new TriggerCdcOptions("_deltasync_changes", true), config.Cdc.Trigger);

        Assert.Equal("last_write_wins", config.ConflictResolution.DefaultStrategy);
        Assert.Empty(config.ConflictResolution.Strategies);
        Assert.Null(config.ConflictResolution.ToleranceTimeWindow);
        Assert.Null(config.ConflictResolution.ManualReviewThreshold);

        var stateDb = Path.Combine(ConfigText.Folder, "shop.state.db");
        Assert.Equal(new StateStorageOptions(StateStorageType.Database, "sqlite:" + stateDb), config.State.Storage);
        Assert.Equal(new CheckpointingOptions(CheckpointFrequency.EveryBatch, 1000), config.State.Checkpointing);
        Assert.Equal(new RecoveryOptions(true, true, false), config.State.Recovery);
    }

    [Theory]
    [InlineData("deltasync.yaml", "deltasync")]
    [InlineData("shop.prod.yml", "shop")]
    [InlineData(".hidden.yaml", "hidden")]
    public void Sync_name_defaults_to_the_file_name_without_extensions(string fileName, string expected)
    {
        var config = ConfigLoader.Parse(ConfigText.Minimal, Path.Combine(ConfigText.Folder, fileName), ConfigText.Environment());

        Assert.Equal(expected, config.Name);
    }

    [Fact]
    public void Table_names_and_table_mappings_can_be_mixed()
    {
        var config = ConfigText.Parse("""
            sync:
              source:
                connection: "sqlite:source.db"
                tables:
                  - customers
                  - {name: orders, primary_key: order_id}
                  - name: "public.products"
                    cdc_method: polling
                    priority: High
              destination: {connection: "sqlite:dest.db"}
            """);

        Assert.Equal(
            [
                new TableOptions("customers"),
                new TableOptions("orders", ["order_id"]),
                new TableOptions("public.products", CdcMethod: CdcMethod.Polling, Priority: TablePriority.High),
            ],
            config.Sync.Source.Tables,
            TableComparer.Instance);
    }

    [Theory]
    [InlineData("hourly", false, 60)]
    [InlineData("daily", false, 24 * 60)]
    [InlineData("\"10 minutes\"", false, 10)]
    [InlineData("1h30m", false, 90)]
    [InlineData("realtime", true, 2)]
    [InlineData("Realtime", true, 2)]
    public void Frequency_is_realtime_at_the_polling_interval_or_a_fixed_interval(string frequency, bool realtime, int minutes)
    {
        var config = ConfigText.Parse(ConfigText.Minimal + $"""

              frequency: {frequency}
            cdc:
              polling:
                interval: 2 minutes
            """);

        Assert.Equal(new SyncFrequency(realtime, Duration.FromMinutes(minutes)), config.Sync.Frequency);
    }

    [Fact]
    public void File_state_storage_resolves_its_folder_against_the_config_folder()
    {
        var config = ConfigText.Parse(ConfigText.Minimal + """

            state:
              storage: {type: file, path: .deltasync/state}
            """);

        Assert.Equal(new StateStorageOptions(StateStorageType.File, Path.Combine(ConfigText.Folder, ".deltasync", "state")), config.State.Storage);
    }

    [Fact]
    public void File_state_storage_accepts_connection_as_its_folder_and_keeps_absolute_paths()
    {
        var absolute = Path.Combine(Path.GetTempPath(), "elsewhere");
        var config = ConfigText.Parse(ConfigText.Minimal + $"""

            state:
              storage:
                type: file
                connection: "{absolute}"
            """);

        Assert.Equal(absolute, config.State.Storage.Location);
    }

    [Fact]
    public void Database_state_connection_is_kept_as_written()
    {
        var config = ConfigText.Parse(ConfigText.Minimal + """

            state:
              storage: {type: database, connection: "sqlite:state/sync.db"}
            """);

        Assert.Equal(new StateStorageOptions(StateStorageType.Database, "sqlite:state/sync.db"), config.State.Storage);
    }

    [Fact]
    public void Storage_without_a_connection_uses_the_default_state_database()
    {
        var config = ConfigText.Parse(ConfigText.Minimal + """

            state:
              checkpointing: {frequency: time_based, interval: 30s}
            """);

        Assert.Equal("sqlite:" + Path.Combine(ConfigText.Folder, "shop.state.db"), config.State.Storage.Location);
        Assert.Equal(new CheckpointingOptions(CheckpointFrequency.TimeBased, 30), config.State.Checkpointing);
    }

    [Fact]
    public void Explicit_null_created_at_field_means_the_tables_have_none()
    {
        var config = ConfigText.Parse(ConfigText.Minimal + """

            cdc:
              timestamp: {created_at_field: null}
            """);

        Assert.Null(config.Cdc.Timestamp.CreatedAtField);
    }

    [Fact]
    public void Version_cdc_is_valid_when_the_table_names_its_version_field()
    {
        var config = ConfigText.Parse("""
            sync:
              source:
                connection: "sqlite:source.db"
                tables: [{name: orders, cdc_method: version, sequence_field: seq}]
              destination: {connection: "sqlite:dest.db"}
            """);

        Assert.Equal("seq", config.Sync.Source.Tables[0].SequenceField);
    }

    [Fact]
    public void Numbers_may_group_digits_with_underscores()
    {
        var config = ConfigText.Parse(ConfigText.Minimal + "\n  batch_size: 1_000_000");

        Assert.Equal(1_000_000, config.Sync.BatchSize);
    }

    [Fact]
    public void Load_reads_the_file_and_records_its_absolute_path()
    {
        var folder = Directory.CreateTempSubdirectory("deltasync-load-");
        try
        {
            var file = Path.Combine(folder.FullName, "deltasync.yaml");
            File.WriteAllText(file, ConfigText.Minimal);

            var config = ConfigLoader.Load(file, ConfigText.Environment());

            Assert.Equal("deltasync", config.Name);
            Assert.Equal(file, config.ConfigPath);
            Assert.Equal("sqlite:" + Path.Combine(folder.FullName, "deltasync.state.db"), config.State.Storage.Location);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public void Load_of_a_missing_file_is_one_config_error()
    {
        var path = Path.Combine(ConfigText.Folder, "missing", "nope.yaml");

        var error = Assert.Single(Assert.Throws<ConfigException>(() => ConfigLoader.Load(path)).Errors);

        Assert.Equal(path, error.File);
        Assert.Contains("does not exist", error.Message, StringComparison.Ordinal);
    }

    /// <summary>Records hold lists, which compare by reference; tables are compared field by field.</summary>
    private sealed class TableComparer : IEqualityComparer<TableOptions>
    {
        public static readonly TableComparer Instance = new();

        public bool Equals(TableOptions? x, TableOptions? y) =>
            x is not null && y is not null
            && (x with { PrimaryKey = null }) == (y with { PrimaryKey = null })
            && (x.PrimaryKey ?? []).SequenceEqual(y.PrimaryKey ?? [])
            && (x.PrimaryKey is null) == (y.PrimaryKey is null);

        public int GetHashCode(TableOptions obj) => obj.Name.GetHashCode(StringComparison.Ordinal);
    }
}
