using System.Globalization;
using Microsoft.Data.Sqlite;

namespace DeltaSync.Postgres.Tests.Engine;

/// <summary>PostgreSQL → SQLite and SQLite → PostgreSQL: types mapped both ways, changes and deletes carried.</summary>
public sealed class CrossSystemTests
{
    [Fact]
    public async Task Postgres_to_sqlite_keeps_values_in_portable_form()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TABLE accounts (
              id integer PRIMARY KEY, name varchar(40), balance numeric(12,2), active boolean, opened date,
              seen timestamptz, ref uuid, tags int[], doc jsonb, raw bytea, ratio real);
            INSERT INTO accounts VALUES
              (1, 'Ada', 10.50, true, '2024-02-29', '2025-01-02 03:04:05.123456+00', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,2,NULL}', '{"a": [1, 2]}', '\x00ff', 0.5),
              (2, 'Bob', NULL, false, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
            """);
        var config = w.Config("{name: accounts, cdc_method: polling}", destination: "sqlite:dest.db");
        await w.RunCompletedAsync(config);
        await w.Source.ExecuteAsync("UPDATE accounts SET name = 'Robert' WHERE id = 2; DELETE FROM accounts WHERE id = 1; INSERT INTO accounts (id, name) VALUES (3, 'Cy')");
        var report = await w.RunCompletedAsync(config);

        Assert.Equal((1L, 1L, 1L), (report.Statistics.RecordsInserted, report.Statistics.RecordsUpdated, report.Statistics.RecordsDeleted));
        Assert.Equal(["2|Robert|NULL|0", "3|Cy|NULL|NULL"], SqliteFile.Rows(w.SqlitePath("dest.db"), "SELECT id, name, balance, active FROM accounts ORDER BY id"));
    }

    /// <summary>
    /// A polling pass deletes, at a SQLite destination, the rows of date and time keys deleted at the source: the delete
    /// carries the key as a value (it carried the ledger key's text, which the stored ISO text never equalled, so the
    /// run reported the delete and the row stayed).
    /// </summary>
    [Theory]
    [InlineData("polling")]
    [InlineData("trigger")]
    public async Task Deletes_of_date_and_time_keys_reach_a_sqlite_destination(string method)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TABLE stamps (at timestamptz, day date, clock time, local timestamp, v text, PRIMARY KEY (at, day, clock, local));
            INSERT INTO stamps VALUES
              ('2024-01-01 00:00:00.25+00', '2024-01-01', '10:00:30.5', '2024-01-01 00:00:00.25', 'a'),
              ('2024-01-01 00:00:00.5+00', '2024-01-01', '10:00:31', '2024-01-01 00:00:00.5', 'b'),
              ('2023-12-31 23:00:00+00', '2023-12-31', '23:59:59.999999', '1850-06-01 12:00:00', 'c');
            """);
        var config = w.Config($"{{name: stamps, cdc_method: {method}}}", destination: "sqlite:dest.db");
        await w.RunCompletedAsync(config);
        await w.Source.ExecuteAsync("DELETE FROM stamps WHERE v IN ('a', 'c')");

        var report = await w.RunCompletedAsync(config);

        Assert.Equal(2, report.Statistics.RecordsDeleted);
        Assert.Equal(["b"], SqliteFile.Rows(w.SqlitePath("dest.db"), "SELECT v FROM stamps"));
    }

    [Theory]
    [InlineData("polling")]
    [InlineData("trigger")]
    public async Task Deletes_of_uuid_keys_reach_a_sqlite_destination(string method)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TABLE things (id uuid PRIMARY KEY, v text);
            INSERT INTO things VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'a'), ('b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'b');
            """);
        var config = w.Config($"{{name: things, cdc_method: {method}}}", destination: "sqlite:dest.db");
        await w.RunCompletedAsync(config);
        await w.Source.ExecuteAsync("DELETE FROM things WHERE v = 'a'");

        var report = await w.RunCompletedAsync(config);

        Assert.Equal(1, report.Statistics.RecordsDeleted);
        Assert.Equal(["b"], SqliteFile.Rows(w.SqlitePath("dest.db"), "SELECT v FROM things"));
    }

    [Fact]
    public async Task Postgres_values_land_in_sqlite_as_iso_text_json_and_numbers()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TABLE accounts (
              id integer PRIMARY KEY, balance numeric(12,2), active boolean, opened date,
              seen timestamptz, ref uuid, tags int[], doc jsonb, raw bytea, ratio real);
            INSERT INTO accounts VALUES
              (1, 10.50, true, '2024-02-29', '2025-01-02 03:04:05.123456+00', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{1,2,NULL}', '{"a": [1, 2]}', '\x00ff', 0.5);
            """);
        await w.RunCompletedAsync(w.Config("{name: accounts, cdc_method: polling}", destination: "sqlite:dest.db"));

        Assert.Equal(
            "1|10.5|1|2024-02-29|2025-01-02T03:04:05.123456Z|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|[1,2,null]|{\"a\": [1, 2]}|00FF|0.5",
            Assert.Single(SqliteFile.Rows(w.SqlitePath("dest.db"), "SELECT id, balance, active, opened, seen, ref, tags, doc, hex(raw), ratio FROM accounts")));
    }

    [Fact]
    public async Task Sqlite_to_postgres_maps_types_and_carries_changes()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        var path = w.SqlitePath("source.db");
        SqliteFile.Execute(path, """
            CREATE TABLE readings (
              id INTEGER PRIMARY KEY, sensor TEXT NOT NULL, value REAL, raw BLOB, ok BOOLEAN, taken TIMESTAMP, amount NUMERIC,
              updated_at TEXT NOT NULL);
            INSERT INTO readings VALUES
              (1, 'a', 1.5, x'0102', 1, '2025-03-04 05:06:07.250', 12.75, strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 minute')),
              (2, 'b', NULL, NULL, 0, NULL, NULL, strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 minute')),
              (3, 'c', -2, x'', 1, '2025-03-04T05:06:07Z', 3, strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 minute'));
            """);
        var config = w.Config("{name: readings, cdc_method: timestamp}", source: "sqlite:source.db");
        await w.RunCompletedAsync(config);
        SqliteFile.Execute(path, "UPDATE readings SET value = 9.25, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = 2");
        var report = await w.RunCompletedAsync(config);

        Assert.Equal(1, report.Statistics.RecordsUpdated);
        Assert.Equal(
            "bigint|text|double precision|bytea|boolean|timestamp with time zone|numeric|text",
            string.Join('|', await w.Destination.RowsAsync("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'readings'::regclass AND attnum > 0 ORDER BY attnum")));
        Assert.Equal(
            [
                "1\ta\t1.5\tAQI=\ttrue\t2025-03-04T05:06:07.25Z\t12.75",
                "2\tb\t9.25\tNULL\tfalse\tNULL\tNULL",
                "3\tc\t-2\t\ttrue\t2025-03-04T05:06:07Z\t3",
            ],
            await w.Destination.RowsAsync("SELECT id, sensor, value, raw, ok, taken, amount FROM readings ORDER BY id"));
    }

    /// <summary>
    /// A SQLite column declared without a type (<c>CREATE TABLE kv (k, v)</c>, or an expression column of <c>CREATE TABLE
    /// … AS SELECT</c>) holds numbers and text as they are. It became <c>bytea</c>, and 42 arrived as the bytes of the
    /// text "42" (<c>\x3432</c>): it is created as <c>text</c> holding each value's text.
    /// </summary>
    [Fact]
    public async Task A_sqlite_column_without_a_declared_type_reaches_postgres_as_the_values_text()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        var path = w.SqlitePath("source.db");
        SqliteFile.Execute(path, """
            CREATE TABLE kv (k TEXT PRIMARY KEY, v);
            INSERT INTO kv VALUES ('int', 42), ('text', 'two'), ('real', 3.5), ('null', NULL);
            """);
        var config = w.Config("{name: kv, cdc_method: polling}", source: "sqlite:source.db");
        await w.RunCompletedAsync(config);

        Assert.Equal("text", await w.Destination.ScalarAsync<string>("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'kv'::regclass AND attname = 'v'"));
        Assert.Equal(["int\t42", "null\tNULL", "real\t3.5", "text\ttwo"], await w.Destination.RowsAsync("SELECT k, v FROM kv ORDER BY k"));

        SqliteFile.Execute(path, "UPDATE kv SET v = 7 WHERE k = 'text'");
        var report = await w.RunCompletedAsync(config);
        Assert.Equal(1, report.Statistics.RecordsUpdated);
        Assert.Equal(["int\t42", "null\tNULL", "real\t3.5", "text\t7"], await w.Destination.RowsAsync("SELECT k, v FROM kv ORDER BY k"));
    }

    /// <summary>
    /// JSON arrays from SQLite (as a SQLite copy of a PostgreSQL table holds them), and array literals, into a PostgreSQL
    /// table whose columns are arrays: the text is read into the column's element type (every such row was dead-lettered:
    /// the text was sent to COPY as the array itself, "Writing values of 'System.String' is not supported for parameters having
    /// DataTypeName 'text[]'").
    /// </summary>
    [Theory]
    [InlineData("polling")]
    [InlineData("trigger")]
    [InlineData("timestamp")]
    public async Task Sqlite_json_arrays_reach_postgres_array_columns(string method)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        var path = w.SqlitePath("source.db");
        SqliteFile.Execute(path, """
            CREATE TABLE tagged (id INTEGER PRIMARY KEY, tags JSON, counts JSON, amounts JSON, grid JSON, raws JSON, updated_at TEXT NOT NULL);
            INSERT INTO tagged VALUES
              (1, '["a", "with space", "quo\"te", null, "comma,x"]', '[1, 2, null]', '[1.50, -0.0001]', '[[1, 2], [3, 4]]', '["AP8="]', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 minute')),
              (2, '[]', '[]', NULL, NULL, '[]', strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 minute')),
              (3, NULL, NULL, '[3]', NULL, NULL, strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 minute'));
            """);
        await w.Destination.ExecuteAsync("CREATE TABLE tagged (id bigint PRIMARY KEY, tags text[], counts int[], amounts numeric(10,4)[], grid int[], raws bytea[], updated_at text NOT NULL)");
        var config = w.Config($"{{name: tagged, cdc_method: {method}}}", source: "sqlite:source.db");
        await w.RunCompletedAsync(config);
        SqliteFile.Execute(path, """
            UPDATE tagged SET tags = '["b"]', counts = '[7]', updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = 3;
            UPDATE tagged SET tags = '{c,"d e",NULL}', raws = '{"\\x0102"}', updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = 2;
            """);
        var report = await w.RunCompletedAsync(config);

        Assert.Equal(2, report.Statistics.RecordsUpdated);
        Assert.Equal(
            [
                """1|{a,"with space","quo\"te",NULL,"comma,x"}|{1,2,NULL}|{1.5000,-0.0001}|{{1,2},{3,4}}|{"\\x00ff"}""",
                """2|{c,"d e",NULL}|{}|NULL|NULL|{"\\x0102"}""",
                "3|{b}|{7}|{3.0000}|NULL|NULL",
            ],
            await w.Destination.RowsAsync("SELECT id || '|' || coalesce(tags::text, 'NULL') || '|' || coalesce(counts::text, 'NULL') || '|' || coalesce(amounts::text, 'NULL') || '|' || coalesce(grid::text, 'NULL') || '|' || coalesce(raws::text, 'NULL') FROM tagged ORDER BY id"));
    }
}
