using DeltaSync.Core.Config;

namespace DeltaSync.Core.Tests.Config;

public sealed class ConfigValidationTests
{
    [Fact]
    public void Malformed_config_reports_every_problem_with_its_key_path()
    {
        const string yaml = """
            sync:
              source:
                connection: "sqlite:source.db"
                tables:
                  - customers
                  - name: orders
                    priority: urgent
              destination:
                type: database
              batchsize: 100
              max_parallel_tables: abc
            cdc:
              timestamp:
                timezone: Mars/Olympus_Mons
            state:
              checkpointing:
                frequency: every_batch
                interval: -5
            """;

        var errors = ConfigText.Errors(yaml);

        Assert.Equal(
            [
                ("sync.source.tables[1].priority", 7),
                ("sync.destination.connection", 8),
                ("sync.batchsize", 10),
                ("sync.max_parallel_tables", 11),
                ("cdc.timestamp.timezone", 14),
                ("state.checkpointing.interval", 18),
            ],
            errors.Select(e => (e.KeyPath, e.Line ?? 0)));
        Assert.All(errors, e => Assert.Equal(ConfigText.FilePath, e.File));
        Assert.Equal("expected one of critical, high, normal or low, got 'urgent'", errors[0].Message);
        Assert.StartsWith("is required", errors[1].Message, StringComparison.Ordinal);
        Assert.Equal("unknown key 'batchsize'; did you mean 'batch_size'?", errors[2].Message);
        Assert.Equal("expected a positive integer, got 'abc'", errors[3].Message);
        Assert.Contains("Mars/Olympus_Mons", errors[4].Message, StringComparison.Ordinal);
        Assert.Equal("expected a positive integer, got '-5'", errors[5].Message);
    }

    [Fact]
    public void Exception_message_lists_each_problem_with_file_and_line()
    {
        var exception = Assert.Throws<ConfigException>(() => ConfigText.Parse(ConfigText.Minimal + "\n  batch_size: 0\n  frequency: sometimes"));

        var lines = exception.Message.Split(Environment.NewLine);
        Assert.Equal($"{ConfigText.FilePath}:7: sync.batch_size: expected a positive integer up to 1000000, got '0'", lines[0]);
        Assert.StartsWith($"{ConfigText.FilePath}:8: sync.frequency: expected realtime, hourly, daily or a duration", lines[1], StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_key_without_a_close_match_lists_the_allowed_keys()
    {
        var error = ConfigText.SingleError(ConfigText.Minimal + "\nextras: 1");

        Assert.Equal("extras", error.KeyPath);
        Assert.Equal("unknown key 'extras'; expected one of: sync, cdc, conflict_resolution, state", error.Message);
    }

    [Theory]
    [InlineData("cdc_method: timestmp", "sync.cdc_method", "expected one of timestamp, version, changelog, trigger, polling or hybrid, got 'timestmp'")]
    [InlineData("batch_size: 2000000", "sync.batch_size", "expected a positive integer up to 1000000, got '2000000'")]
    [InlineData("frequency: 0s", "sync.frequency", "expected realtime, hourly, daily or a duration such as '10 minutes', got '0s'")]
    [InlineData("cdc_mthod: version", "sync.cdc_mthod", "unknown key 'cdc_mthod'; did you mean 'cdc_method'?")]
    [InlineData("maxParallelTables: 3", "sync.maxParallelTables", "unknown key 'maxParallelTables'; did you mean 'max_parallel_tables'?")]
    public void Invalid_sync_value_is_reported_at_its_key(string line, string keyPath, string message)
    {
        var error = ConfigText.SingleError(ConfigText.Minimal + "\n  " + line);

        Assert.Equal((keyPath, message, 7), (error.KeyPath, error.Message, error.Line));
    }

    [Theory]
    [InlineData("cdc:\n  timestamp:\n    tolerance_window: soon", "cdc.timestamp.tolerance_window", "expected a duration such as '5 minutes', '30s', '1h30m' or 'PT5M', got 'soon'")]
    [InlineData("cdc:\n  polling:\n    interval: 0", "cdc.polling.interval", "must be longer than zero")]
    [InlineData("cdc:\n  changelog:\n    type: oracle_redo", "cdc.changelog.type", "expected one of postgres_wal, mysql_binlog or mongo_oplog, got 'oracle_redo'")]
    [InlineData("cdc:\n  trigger:\n    prune: maybe", "cdc.trigger.prune", "expected true or false, got 'maybe'")]
    [InlineData("cdc:\n  hybrid:\n    ranges: 1", "cdc.hybrid.ranges", "expected an integer from 2 to 4096, got '1'")]
    [InlineData("cdc:\n  hybrid:\n    leaf_rows: lots", "cdc.hybrid.leaf_rows", "expected a positive integer up to 100000, got 'lots'")]
    [InlineData("conflict_resolution:\n  tolerance:\n    manual_review_threshold: 1.5", "conflict_resolution.tolerance.manual_review_threshold", "expected a number between 0 and 1, got '1.5'")]
    [InlineData("conflict_resolution:\n  default_strategy: newest", "conflict_resolution.default_strategy", "expected one of last_write_wins, source_wins, manual_review or custom, got 'newest'")]
    [InlineData("conflict_resolution:\n  strategies:\n    - field: email", "conflict_resolution.strategies[0].strategy", "is required: one of last_write_wins, source_wins, manual_review or custom")]
    [InlineData("state:\n  storage:\n    type: s3", "state.storage.type", "expected one of database, file or redis, got 's3'")]
    [InlineData("state:\n  storage:\n    type: redis", "state.storage.connection", "is required for a redis store: the server, e.g. localhost:6379")]
    [InlineData("state:\n  storage:\n    type: file\n    connection: \"sqlite:state.db\"", "state.storage.connection", "a file store takes a folder path, and 'sqlite:state.db' is a connection URI: for a database use type: database, for Redis type: redis")]
    [InlineData("state:\n  storage:\n    type: file\n    connection: \"postgresql://sync:s3cret@db/state\"", "state.storage.connection", "a file store takes a folder path, and 'postgresql://sync:***@db/state' is a connection URI: for a database use type: database, for Redis type: redis")]
    [InlineData("state:\n  checkpointing:\n    frequency: weekly", "state.checkpointing.frequency", "expected one of every_batch, every_n_records or time_based, got 'weekly'")]
    [InlineData("state:\n  recovery: yes", "state.recovery", "expected a mapping of validate_on_start, auto_repair, reset_on_corruption, got 'yes'")]
    public void Invalid_block_value_is_reported_at_its_key(string block, string keyPath, string message)
    {
        var error = ConfigText.SingleError(ConfigText.Minimal + "\n" + block);

        Assert.Equal((keyPath, message), (error.KeyPath, error.Message));
        Assert.NotNull(error.Line);
    }

    [Fact]
    public void Empty_tables_list_is_an_error()
    {
        var error = ConfigText.SingleError("""
            sync:
              source: {connection: "sqlite:source.db", tables: []}
              destination: {connection: "sqlite:dest.db"}
            """);

        Assert.Equal(("sync.source.tables", 2), (error.KeyPath, error.Line));
        Assert.Contains("at least one table", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Duplicate_table_names_are_an_error()
    {
        var error = ConfigText.SingleError("""
            sync:
              source:
                connection: "sqlite:source.db"
                tables:
                  - orders
                  - customers
                  - name: Orders
                    priority: high
              destination: {connection: "sqlite:dest.db"}
            """);

        Assert.Equal(("sync.source.tables[2]", 7), (error.KeyPath, error.Line));
        Assert.Equal("duplicate table 'Orders'; it is already listed at sync.source.tables[0]", error.Message);
    }

    [Fact]
    public void Table_mapping_without_a_name_is_an_error()
    {
        var error = ConfigText.SingleError("""
            sync:
              source:
                connection: "sqlite:source.db"
                tables: [customers, {primary_key: id}]
              destination: {connection: "sqlite:dest.db"}
            """);

        Assert.Equal("sync.source.tables[1].name", error.KeyPath);
        Assert.StartsWith("is required", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Table_with_version_cdc_needs_a_version_or_sequence_field()
    {
        var error = ConfigText.SingleError("""
            sync:
              source:
                connection: "sqlite:source.db"
                tables:
                  - customers
                  - name: orders
                    cdc_method: version
              destination: {connection: "sqlite:dest.db"}
            """);

        Assert.Equal(("sync.source.tables[1].cdc_method", 7), (error.KeyPath, error.Line));
        Assert.Contains("version_field or sequence_field", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Version_cdc_for_every_table_needs_a_field_in_cdc_version_or_on_each_table()
    {
        var yaml = """
            sync:
              source:
                connection: "sqlite:source.db"
                tables: [customers, {name: orders, version_field: v}, products]
              destination: {connection: "sqlite:dest.db"}
              cdc_method: version
            """;

        var error = ConfigText.SingleError(yaml);
        Assert.Equal(("sync.cdc_method", 6), (error.KeyPath, error.Line));
        Assert.Contains("missing for customers, products", error.Message, StringComparison.Ordinal);

        var fixedConfig = ConfigText.Parse(yaml + "\ncdc:\n  version:\n    sequence_field: seq");
        Assert.Equal(CdcMethod.Version, fixedConfig.Sync.CdcMethod);
    }

    [Fact]
    public void Missing_blocks_are_reported_once_not_for_every_key_inside()
    {
        var errors = ConfigText.Errors("""
            sync:
              cdc_method: timestamp
            """);

        Assert.Equal(["sync.source", "sync.destination"], errors.Select(e => e.KeyPath));
        Assert.All(errors, e => Assert.Equal(1, e.Line));
    }

    [Fact]
    public void Empty_file_says_sync_is_required()
    {
        var error = ConfigText.SingleError("# nothing yet\n");

        Assert.Equal("sync", error.KeyPath);
    }

    [Fact]
    public void Invalid_yaml_is_one_error_with_its_line()
    {
        var error = ConfigText.SingleError("""
            sync:
              source:
                connection: x
               tables: [a]
            """);

        Assert.Equal("(yaml)", error.KeyPath);
        Assert.Equal(4, error.Line);
        Assert.StartsWith("not valid YAML", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Yaml_that_is_not_a_mapping_is_one_error()
    {
        var error = ConfigText.SingleError("- just\n- a list\n");

        Assert.Equal("(root)", error.KeyPath);
        Assert.Contains("got a list", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Duplicate_keys_are_an_error()
    {
        var error = ConfigText.SingleError(ConfigText.Minimal + "\n  batch_size: 1\n  batch_size: 2");

        Assert.Equal("(yaml)", error.KeyPath);
        Assert.Contains("Duplicate key", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Duplicate_field_strategies_are_an_error()
    {
        var error = ConfigText.SingleError(ConfigText.Minimal + """

            conflict_resolution:
              strategies:
                - {field: email, strategy: source_wins}
                - {field: email, strategy: manual_review}
            """);

        Assert.Equal("conflict_resolution.strategies[1]", error.KeyPath);
    }

    [Fact]
    public void Connection_errors_never_show_the_interpolated_value()
    {
        const string secret = "postgresql://admin:hunter2@db/shop";
        var environment = ConfigText.Environment(("SOURCE_CONNECTION", secret));

        var errors = ConfigText.Errors(
            """
            sync:
              source:
                connection:
                  url: "${SOURCE_CONNECTION}"
                tables: [customers]
              destination:
                connection: ["${SOURCE_CONNECTION}"]
            """,
            environment);

        Assert.Equal(["sync.source.connection", "sync.destination.connection"], errors.Select(e => e.KeyPath));
        Assert.All(errors, e => Assert.DoesNotContain("hunter2", e.ToString(), StringComparison.Ordinal));
    }
}
