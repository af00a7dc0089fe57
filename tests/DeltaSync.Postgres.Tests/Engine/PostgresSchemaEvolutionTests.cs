using DeltaSync.Core.Reporting;

namespace DeltaSync.Postgres.Tests.Engine;

/// <summary>
/// A PostgreSQL source's table changing shape under a PostgreSQL destination: column types the source widened are
/// widened at the destination (and the table re-read), values a column cannot hold are dead-lettered, never cut or
/// rounded; generated columns travel as plain values, or are left to a destination that generates them itself.
/// </summary>
public sealed class PostgresSchemaEvolutionTests
{
    private static readonly Dictionary<string, string> Tables = new()
    {
        ["polling"] = "{name: t, cdc_method: polling}",
        ["timestamp"] = "{name: t, cdc_method: timestamp}",
        ["changelog"] = "{name: t, cdc_method: changelog}",
    };

    private const string Dump = "SELECT id, v::text FROM t ORDER BY id";

    private static TableReport Table(SyncReport report) => Assert.Single(report.Tables);

    private static Task<string> TypeOfAsync(PgDatabase database, string table, string column) =>
        database.ScalarAsync<string>("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2", table, column);

    private static Core.Config.SyncConfig Config(PgSyncWorkspace w, string method) =>
        w.Config(Tables[method], blocks: method == "changelog" ? "cdc: {changelog: {type: postgres_wal}}" : "");

    [Theory]
    [InlineData("polling", "varchar(3)", "'abc'", "varchar(100)", "'abcdefghij'")]
    [InlineData("timestamp", "varchar(3)", "'abc'", "varchar(100)", "'abcdefghij'")]
    [InlineData("changelog", "varchar(3)", "'abc'", "varchar(100)", "'abcdefghij'")]
    [InlineData("polling", "varchar(3)", "'abc'", "text", "'abcdefghij'")]
    [InlineData("polling", "numeric(10,2)", "1.23", "numeric(12,4)", "1.2345")]
    [InlineData("timestamp", "numeric(10,2)", "1.23", "numeric", "1.23456789")]
    [InlineData("changelog", "numeric(10,2)", "1.23", "numeric(12,4)", "1.2345")]
    [InlineData("polling", "char(3)", "'abc'", "char(6)", "'abcdef'")]
    [InlineData("timestamp", "smallint", "1", "integer", "100000")]
    [InlineData("polling", "integer", "1", "bigint", "9000000000")]
    [InlineData("changelog", "integer", "1", "bigint", "9000000000")]
    [InlineData("polling", "real", "1.5", "double precision", "1.000000000001")]
    public async Task A_type_widened_at_the_source_is_widened_at_the_destination_and_values_arrive_whole(string method, string type, string value, string wider, string widerValue)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync($"CREATE TABLE t (id int PRIMARY KEY, v {type}, updated_at timestamptz NOT NULL DEFAULT now()); INSERT INTO t (id, v) VALUES (1, {value}), (2, {value});");
        var config = Config(w, method);
        await w.RunCompletedAsync(config);
        await w.AssertSameAsync(Dump);

        await w.Source.ExecuteAsync($"ALTER TABLE t ALTER COLUMN v TYPE {wider}; UPDATE t SET v = {widerValue}, updated_at = now() WHERE id = 1;");
        var report = await w.RunCompletedAsync(config);

        Assert.Equal(await TypeOfAsync(w.Source, "t", "v"), await TypeOfAsync(w.Destination, "t", "v"));
        Assert.Contains(report.Warnings, x => x.Contains("column 'v' widened from", StringComparison.Ordinal));
        Assert.Contains(report.Warnings, x => x.Contains("re-read in full", StringComparison.Ordinal));
        Assert.Equal(0, Table(report).RecordsDeadLettered);
        await w.AssertSameAsync(Dump);

        // Widened once: the next run finds nothing to change and nothing to write.
        var next = await w.RunCompletedAsync(config);
        Assert.DoesNotContain(next.Warnings, x => x.Contains("widened", StringComparison.Ordinal));
        Assert.Equal(0, PgSyncWorkspace.Writes(next));
    }

    [Theory]
    [InlineData("varchar(3)", "'abc'", "varchar(100)", "'abcdefghij'")]
    [InlineData("char(3)", "'abc'", "char(6)", "'abcdef'")]
    [InlineData("numeric(10,2)", "1.23", "numeric(12,4)", "1.2345")]
    [InlineData("numeric(10,2)", "1.23", "numeric(12,2)", "1234567890.12")]
    [InlineData("integer", "1", "bigint", "9000000000")]
    public async Task A_value_a_column_that_could_not_be_widened_cannot_hold_is_dead_lettered_not_cut(string type, string value, string wider, string widerValue)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync($"CREATE TABLE t (id int PRIMARY KEY, v {type}); INSERT INTO t VALUES (1, {value}), (2, {value});");
        var config = Config(w, "polling");
        await w.RunCompletedAsync(config);
        // A view on the column: PostgreSQL refuses to change its type.
        await w.Destination.ExecuteAsync("CREATE VIEW t_view AS SELECT id, v FROM t");

        await w.Source.ExecuteAsync($"ALTER TABLE t ALTER COLUMN v TYPE {wider}; UPDATE t SET v = {widerValue} WHERE id = 1;");
        var report = await w.RunAsync(config);

        Assert.Equal(type.Replace("varchar", "character varying", StringComparison.Ordinal).Replace("char(3)", "character(3)", StringComparison.Ordinal), await TypeOfAsync(w.Destination, "t", "v"));
        Assert.Contains(report.Warnings, x => x.Contains("not made at the destination: column 'v' stays", StringComparison.Ordinal));
        Assert.Equal(1, Table(report).RecordsDeadLettered);
        // Row 1 as it was (not cut to fit), row 2 (unchanged at the source) too.
        var old = (await w.Destination.RowsAsync($"SELECT {value}::{type}::text")).Single();
        Assert.Equal([$"1\t{old}", $"2\t{old}"], await w.Destination.RowsAsync(Dump));
    }

    [Theory]
    [InlineData("numeric(10,2)", "1.23", "text", "'1.2345'")]
    [InlineData("numeric(10,2)", "1.23", "text", "'abc'")]
    [InlineData("varchar(10)", "'abc'", "varchar(3)", "'xyz'")]
    public async Task A_column_the_source_changed_to_a_narrower_or_other_type_is_left_as_it_is(string type, string value, string other, string otherValue)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync($"CREATE TABLE t (id int PRIMARY KEY, v {type}); INSERT INTO t VALUES (1, {value});");
        var config = Config(w, "polling");
        await w.RunCompletedAsync(config);
        var before = await TypeOfAsync(w.Destination, "t", "v");

        await w.Source.ExecuteAsync($"ALTER TABLE t ALTER COLUMN v TYPE {other}; UPDATE t SET v = {otherValue} WHERE id = 1;");
        var report = await w.RunAsync(config);

        Assert.Equal(before, await TypeOfAsync(w.Destination, "t", "v"));
        Assert.DoesNotContain(report.Warnings, x => x.Contains("widened", StringComparison.Ordinal));
        if (otherValue == "'xyz'")
        {
            // Narrowed at the source: every value still fits the destination's wider column.
            Assert.Equal("completed", report.Metadata.Status);
            await w.AssertSameAsync(Dump);
        }
        else
        {
            // '1.2345' would be rounded to 1.23, 'abc' is no number: refused, the destination keeps what it had.
            Assert.Equal(1, Table(report).RecordsDeadLettered);
            Assert.Equal(["1\t1.23"], await w.Destination.RowsAsync(Dump));
        }
    }

    [Fact]
    public async Task A_type_widened_after_a_binary_copy_initial_load_is_widened_and_later_passes_apply_changes()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TABLE t (id int PRIMARY KEY, v varchar(3), n numeric(10,2), updated_at timestamptz NOT NULL DEFAULT now());
            INSERT INTO t (id, v, n) SELECT g, 'a' || (g % 10), g / 7.0 FROM generate_series(1, 200) g;
            """);
        var config = Config(w, "timestamp");
        var first = await w.RunCompletedAsync(config);
        Assert.Equal("binary_copy", Table(first).InitialLoad);

        await w.Source.ExecuteAsync("ALTER TABLE t ALTER COLUMN v TYPE varchar(20), ALTER COLUMN n TYPE numeric(14,4); UPDATE t SET v = 'longer value ' || id, n = id / 7.0, updated_at = now() WHERE id <= 5;");
        var widened = await w.RunCompletedAsync(config);
        Assert.Equal(2, widened.Warnings.Count(x => x.Contains("widened from", StringComparison.Ordinal)));
        Assert.Equal("character varying(20)", await TypeOfAsync(w.Destination, "t", "v"));
        Assert.Equal("numeric(14,4)", await TypeOfAsync(w.Destination, "t", "n"));
        await w.AssertSameAsync("SELECT id, v, n::text FROM t ORDER BY id");

        await w.Source.ExecuteAsync("UPDATE t SET v = 'again ' || id, n = n + 0.0001, updated_at = now() WHERE id BETWEEN 100 AND 110; INSERT INTO t (id, v, n) VALUES (201, 'new', 1.0001)");
        var later = await w.RunCompletedAsync(config);
        Assert.Equal(0, Table(later).RecordsDeadLettered);
        Assert.Equal(12, PgSyncWorkspace.Writes(later));
        await w.AssertSameAsync("SELECT id, v, n::text FROM t ORDER BY id");
    }

    [Theory]
    [InlineData("polling", "DROP COLUMN must")]
    [InlineData("timestamp", "DROP COLUMN must")]
    [InlineData("changelog", "DROP COLUMN must")]
    [InlineData("changelog", "RENAME COLUMN must TO renamed")]
    public async Task A_not_null_column_the_source_no_longer_has_does_not_refuse_later_rows(string method, string alter)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("CREATE TABLE t (id int PRIMARY KEY, v text, must text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now()); INSERT INTO t (id, v, must) VALUES (1, 'a', 'x'), (2, 'b', 'y');");
        var config = Config(w, method);
        await w.RunCompletedAsync(config);
        Assert.Equal("NO", await w.Destination.ScalarAsync<string>("SELECT is_nullable FROM information_schema.columns WHERE table_name = 't' AND column_name = 'must'"));

        // The column created NOT NULL from the source's DDL is gone from the source: rows written from now on carry no
        // value for it, so the destination must stop requiring one instead of refusing every later row.
        var insert = alter.StartsWith("RENAME", StringComparison.Ordinal) ? "INSERT INTO t (id, v, renamed) VALUES (3, 'new', 'z')" : "INSERT INTO t (id, v) VALUES (3, 'new')";
        await w.Source.ExecuteAsync($"ALTER TABLE t {alter}; UPDATE t SET v = 'changed', updated_at = now() WHERE id = 1; {insert};");
        var report = await w.RunCompletedAsync(config);

        Assert.Equal(0, Table(report).RecordsDeadLettered);
        Assert.Contains(report.Warnings, x => x.Contains("column 'must' is no longer at the source", StringComparison.Ordinal));
        Assert.Equal("YES", await w.Destination.ScalarAsync<string>("SELECT is_nullable FROM information_schema.columns WHERE table_name = 't' AND column_name = 'must'"));
        Assert.Equal(["1\tchanged", "2\tb", "3\tnew"], await w.Destination.RowsAsync("SELECT id, v FROM t ORDER BY id"));
        // What the destination held for the column stays.
        Assert.Equal(["1\tx", "2\ty"], await w.Destination.RowsAsync("SELECT id, must FROM t WHERE must IS NOT NULL ORDER BY id"));
    }

    private const string Generated = """
        CREATE TABLE gen (id int PRIMARY KEY, price numeric(10,2), qty int, total numeric GENERATED ALWAYS AS (price * qty) STORED, updated_at timestamptz NOT NULL DEFAULT now());
        INSERT INTO gen (id, price, qty) SELECT g, g, g % 5 FROM generate_series(1, 50) g;
        """;

    private const string GeneratedDump = "SELECT id, price, qty, total FROM gen ORDER BY id";

    [Theory]
    [InlineData("{name: gen, cdc_method: polling}", "")]
    [InlineData("{name: gen, cdc_method: timestamp}", "")]
    [InlineData("{name: gen, cdc_method: changelog}", "cdc: {changelog: {type: postgres_wal}}")]
    public async Task A_stored_generated_column_arrives_as_a_plain_column_holding_the_sources_values(string table, string blocks)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Generated);
        var config = w.Config(table, blocks: blocks);
        await w.RunCompletedAsync(config);
        await w.AssertSameAsync(GeneratedDump);
        Assert.Equal("", await w.Destination.ScalarAsync<string>("SELECT attgenerated::text FROM pg_attribute WHERE attrelid = 'gen'::regclass AND attname = 'total'"));
        Assert.Equal(0L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum WHERE d.adrelid = 'gen'::regclass AND a.attname = 'total'"));

        await w.Source.ExecuteAsync("UPDATE gen SET price = price * 2, updated_at = now() WHERE id <= 10; INSERT INTO gen (id, price, qty) VALUES (51, 9.99, 3)");
        await w.RunCompletedAsync(config);
        await w.AssertSameAsync(GeneratedDump);
    }

    [Theory]
    [InlineData("{name: gen, cdc_method: timestamp}", "")]
    [InlineData("{name: gen, cdc_method: polling}", "DELETE FROM gen WHERE id = 20;")]
    public async Task A_column_the_destination_generates_itself_is_left_to_its_expression(string table, string delete)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Generated);
        // The destination made from the source's own DDL (pg_dump --schema-only, say): total is generated there too.
        await w.Destination.ExecuteAsync("CREATE TABLE gen (id int PRIMARY KEY, price numeric(10,2), qty int, total numeric GENERATED ALWAYS AS (price * qty) STORED, updated_at timestamptz NOT NULL DEFAULT now())");
        var config = w.Config(table);

        var first = await w.RunCompletedAsync(config);
        // COPY cannot write a generated column: the initial load goes through the pipeline.
        Assert.Null(Table(first).InitialLoad);
        Assert.Equal(50, first.Statistics.RecordsInserted);
        await w.AssertSameAsync(GeneratedDump);

        await w.Source.ExecuteAsync("UPDATE gen SET qty = qty + 1, updated_at = now() WHERE id <= 10; " + delete + " INSERT INTO gen (id, price, qty) VALUES (51, 9.99, 3)");
        await w.RunCompletedAsync(config);
        await w.AssertSameAsync(GeneratedDump);
    }
}
