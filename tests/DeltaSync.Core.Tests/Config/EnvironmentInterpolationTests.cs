using DeltaSync.Core.Config;

namespace DeltaSync.Core.Tests.Config;

public sealed class EnvironmentInterpolationTests
{
    private static readonly Func<string, string?> Environment =
        ConfigText.Environment(("HOST", "db.internal"), ("PORT", "5432"), ("EMPTY", ""));

    [Theory]
    [InlineData("plain text", "plain text")]
    [InlineData("${HOST}", "db.internal")]
    [InlineData("postgresql://${HOST}:${PORT}/shop", "postgresql://db.internal:5432/shop")]
    [InlineData("${MISSING:-fallback}", "fallback")]
    [InlineData("${HOST:-fallback}", "db.internal")]
    [InlineData("${EMPTY:-fallback}", "fallback")]
    [InlineData("${EMPTY}", "")]
    [InlineData("${MISSING:-}", "")]
    [InlineData("${MISSING:-a:b/c d}", "a:b/c d")]
    [InlineData("$${HOST}", "${HOST}")]
    [InlineData("cost: $5", "cost: $5")]
    [InlineData("$$", "$$")]
    public void References_are_replaced_and_escapes_kept_literal(string text, string expected)
    {
        Assert.True(EnvironmentInterpolation.TryInterpolate(text, Environment, out var result, out var problems));

        Assert.Equal(expected, result);
        Assert.Empty(problems);
    }

    [Fact]
    public void Missing_variable_without_default_is_named_in_the_problem()
    {
        Assert.False(EnvironmentInterpolation.TryInterpolate("${A}-${HOST}-${B}", Environment, out _, out var problems));

        Assert.Equal(["environment variable A is not set", "environment variable B is not set"], problems);
    }

    [Theory]
    [InlineData("${HOST")]
    [InlineData("${}")]
    [InlineData("${1ABC}")]
    [InlineData("${HO ST}")]
    public void Malformed_reference_is_a_problem(string text)
    {
        Assert.False(EnvironmentInterpolation.TryInterpolate(text, Environment, out _, out var problems));

        Assert.Single(problems);
    }

    [Fact]
    public void Loader_interpolates_values_before_validating_them()
    {
        var environment = ConfigText.Environment(("SOURCE_CONNECTION", "postgresql://u:p@h/db"), ("BATCH", "250"), ("METHOD", "trigger"));

        var config = ConfigText.Parse(
            """
            sync:
              source:
                connection: ${SOURCE_CONNECTION}
                tables: ["${TABLE:-customers}", "orders_$${literal}"]
              destination:
                connection: "${DEST_CONNECTION:-sqlite:dest.db}"
              batch_size: ${BATCH}
              cdc_method: '${METHOD}'
            """,
            environment);

        Assert.Equal("postgresql://u:p@h/db", config.Sync.Source.Connection);
        Assert.Equal(["customers", "orders_${literal}"], config.Sync.Source.Tables.Select(t => t.Name));
        Assert.Equal("sqlite:dest.db", config.Sync.Destination.Connection);
        Assert.Equal(250, config.Sync.BatchSize);
        Assert.Equal(CdcMethod.Trigger, config.Sync.CdcMethod);
    }

    [Fact]
    public void Loader_reports_a_missing_variable_at_its_key_path_and_line()
    {
        var errors = ConfigText.Errors("""
            sync:
              source:
                connection: "${SOURCE_CONNECTION}"
                tables: [customers]
              destination:
                connection: "${DEST_CONNECTION}"
            """);

        Assert.Equal(
            [
                new ConfigError(ConfigText.FilePath, "sync.source.connection", "environment variable SOURCE_CONNECTION is not set", 3),
                new ConfigError(ConfigText.FilePath, "sync.destination.connection", "environment variable DEST_CONNECTION is not set", 6),
            ],
            errors);
    }

    [Fact]
    public void Interpolated_value_that_is_invalid_is_reported_like_a_written_one()
    {
        var error = ConfigText.SingleError(ConfigText.Minimal + "\n  batch_size: ${BATCH}", ConfigText.Environment(("BATCH", "lots")));

        Assert.Equal(("sync.batch_size", "expected a positive integer up to 1000000, got 'lots'"), (error.KeyPath, error.Message));
    }

    [Fact]
    public void Empty_default_unsets_a_key_so_its_default_applies()
    {
        var config = ConfigText.Parse(ConfigText.Minimal + "\n  batch_size: ${BATCH:-}");

        Assert.Equal(1000, config.Sync.BatchSize);
    }
}
