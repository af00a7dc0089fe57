namespace DeltaSync.Postgres.Tests.Engine;

/// <summary>
/// Values arrive at a PostgreSQL destination as the source holds them, whichever capture read them: arrays with NULL
/// elements, numerics beyond <see cref="decimal"/>, and types Npgsql does not map, from the table and from the log.
/// </summary>
public sealed class PostgresValueFidelityTests
{
    private const string Wal = "cdc: {changelog: {type: postgres_wal}}";

    [Fact]
    public async Task Log_rows_with_a_null_array_element_sync()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("CREATE TABLE arr (id int PRIMARY KEY, nums int[], note text); INSERT INTO arr VALUES (1, ARRAY[1, NULL, 3], 'a');");
        var config = w.Config("{name: arr, cdc_method: changelog}", blocks: Wal);
        await w.RunCompletedAsync(config);
        await w.Source.ExecuteAsync("UPDATE arr SET note = 'b' WHERE id = 1; INSERT INTO arr VALUES (2, ARRAY[NULL]::int[], 'c')");
        await w.RunCompletedAsync(config);
        await w.AssertSameAsync("SELECT id, nums::text, note FROM arr ORDER BY id");
    }

    [Theory]
    [InlineData("timestamp", "")]
    [InlineData("polling", "")]
    [InlineData("changelog", Wal)]
    public async Task Numerics_beyond_decimal_are_carried_exactly_and_not_rewritten_when_unchanged(string method, string blocks)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TABLE nt (id int PRIMARY KEY, n numeric, fixed numeric(30,10), updated_at timestamptz NOT NULL DEFAULT now());
            INSERT INTO nt (id, n, fixed) VALUES (1, 1.0, 1);
            """);
        var config = w.Config($"{{name: nt, cdc_method: {method}}}", blocks: blocks);
        await w.RunCompletedAsync(config);

        // After the first run, so they are read by the capture (not copied by a bulk load).
        await w.Source.ExecuteAsync("""
            INSERT INTO nt (id, n, fixed) VALUES
              (2, 'NaN', 12345678901234567890.0123456789),
              (3, 12345678901234567890.123456789012345678901234567890, -0.0000000001),
              (4, 1.5, 1.5),
              (5, 'Infinity', NULL),
              (6, '-Infinity', 0),
              (7, 1.50, 99999999999999999999.9999999999),
              (8, 0.000000000000000000000000000000001, NULL);
            UPDATE nt SET n = 'NaN', fixed = 31415926535897932384.6264338327, updated_at = now() WHERE id = 1;
            """);
        var report = await w.RunCompletedAsync(config);
        Assert.Equal(8, PgSyncWorkspace.Writes(report));
        await w.AssertSameAsync("SELECT id, n::text, fixed::text FROM nt ORDER BY id");

        var again = await w.RunCompletedAsync(config);
        Assert.Equal(0, PgSyncWorkspace.Writes(again));

        await w.Source.ExecuteAsync("UPDATE nt SET n = 2.25, updated_at = now() WHERE id = 2; UPDATE nt SET n = 'NaN', updated_at = now() WHERE id = 4");
        var changed = await w.RunCompletedAsync(config);
        Assert.Equal(2, PgSyncWorkspace.Writes(changed));
        await w.AssertSameAsync("SELECT id, n::text, fixed::text FROM nt ORDER BY id");

        // The range digests of both sides agree on these values too: nothing to repair.
        Assert.Equal(0, PgSyncWorkspace.Writes(await w.RunCompletedAsync(config, reconcile: true)));
    }

    [Fact]
    public async Task Numerics_reach_sqlite_as_decimals_when_they_fit_and_as_text_otherwise()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TABLE nt (id int PRIMARY KEY, n numeric);
            INSERT INTO nt VALUES (1, 10.50), (2, 'NaN'), (3, 12345678901234567890.123456789012345678901234567890);
            """);
        var config = w.Config("{name: nt, cdc_method: polling}", destination: "sqlite:dest.db");
        await w.RunCompletedAsync(config);

        // NUMERIC affinity turns numeric text into a number as it can (15 digits); NaN stays text.
        Assert.Equal(
            ["1|10.5|real", "2|NaN|text", "3|1.2345678901234567E+19|real"],
            SqliteFile.Rows(w.SqlitePath("dest.db"), "SELECT id, n, typeof(n) FROM nt ORDER BY id"));
        Assert.Equal(0, PgSyncWorkspace.Writes(await w.RunCompletedAsync(config)));
    }
}
