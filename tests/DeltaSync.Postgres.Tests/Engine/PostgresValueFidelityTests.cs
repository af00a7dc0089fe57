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
            CREATE TABLE nt (id int PRIMARY KEY, n numeric, f float8, m numeric(12,2));
            INSERT INTO nt VALUES (1, 10.50, 1.5, 1.25), (2, 'NaN', 'NaN', NULL), (3, 12345678901234567890.123456789012345678901234567890, '-Infinity', NULL);
            """);
        var config = w.Config("{name: nt, cdc_method: polling}", destination: "sqlite:dest.db");
        var first = await w.RunCompletedAsync(config);

        // Said once, when the table is made: the unconstrained numeric can hold more than SQLite keeps; numeric(12,2) cannot.
        Assert.Single(first.Warnings, x => x.Contains("column 'n' (numeric) is kept in a SQLite NUMERIC column", StringComparison.Ordinal));
        Assert.DoesNotContain(first.Warnings, x => x.Contains("column 'm'", StringComparison.Ordinal));

        // NUMERIC affinity turns numeric text into a number as it can (15 digits); NaN stays text, numeric or float
        // (SQLite would store a NaN REAL as NULL).
        Assert.Equal(
            ["1|10.5|real|1.5|real", "2|NaN|text|NaN|text", "3|1.2345678901234567E+19|real|-Infinity|real"],
            SqliteFile.Rows(w.SqlitePath("dest.db"), "SELECT id, n, typeof(n), f, typeof(f) FROM nt ORDER BY id"));
        Assert.Equal(0, PgSyncWorkspace.Writes(await w.RunCompletedAsync(config)));
    }

    /// <summary>Types both databases declare for <see cref="Log_values_of_types_npgsql_does_not_map_equal_the_snapshots"/>.</summary>
    private const string UserTypes = "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy'); CREATE DOMAIN positive AS int CHECK (VALUE > 0);";

    [Theory]
    [InlineData("inet", "'10.1.2.3/16'")]
    [InlineData("interval", "'1 year 2 mons 3 days 04:05:06.789'")]
    [InlineData("timetz", "'23:59:59-05:30'")]
    [InlineData("bit(4)", "B'0101'")]
    [InlineData("varbit", "B'10110'")]
    [InlineData("inet[]", "'{10.0.0.1,::1,192.168.0.0/24}'")]
    [InlineData("interval[]", "ARRAY['1 day'::interval, '-2 hours 3 minutes']")]
    [InlineData("mood[]", "'{sad,happy,NULL}'")]
    [InlineData("cidr", "'10.1.0.0/16'")]
    [InlineData("int4range", "'[1,10)'")]
    [InlineData("tstzrange", "'[2024-01-01 00:00+02,2024-02-01 00:00+00)'")]
    [InlineData("money", "12.34")]
    [InlineData("positive", "7")]
    [InlineData("mood", "'ok'")]
    [InlineData("xml", "'<a b=\"1\">x</a>'")]
    [InlineData("point", "'(1.5,-2)'")]
    [InlineData("macaddr", "'08:00:2b:01:02:03'")]
    [InlineData("tsvector", "'a fat cat'")]
    [InlineData("char(5)", "'ab'")]
    [InlineData("jsonb[]", "ARRAY['{\"a\": 1}'::jsonb, 'null', NULL]")]
    [InlineData("uuid[]", "'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,NULL}'")]
    [InlineData("bytea[]", "ARRAY['\\x00ff'::bytea, '\\x']")]
    [InlineData("date[]", "'{2024-02-29,infinity}'")]
    [InlineData("timestamptz[]", "'{2025-01-02 03:04:05.123456+05:30,NULL}'")]
    public async Task Log_values_of_types_npgsql_does_not_map_equal_the_snapshots(string type, string literal)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(UserTypes);
        await w.Destination.ExecuteAsync(UserTypes);
        await w.Source.ExecuteAsync($"CREATE TABLE ot (id int PRIMARY KEY, v {type}, note text); INSERT INTO ot VALUES (1, {literal}, 'a');");
        var config = w.Config("{name: ot, cdc_method: changelog}", blocks: Wal);
        await w.RunCompletedAsync(config);

        await w.Source.ExecuteAsync($"INSERT INTO ot VALUES (2, {literal}, 'b'); UPDATE ot SET note = 'c' WHERE id = 1; INSERT INTO ot VALUES (3, NULL, 'd')");
        var report = await w.RunCompletedAsync(config);
        Assert.Equal(3, PgSyncWorkspace.Writes(report));
        await w.AssertSameAsync("SELECT id, v::text, note FROM ot ORDER BY id");
    }

    /// <summary>
    /// The finite extremes .NET can hold (9999-12-31, a common "no end" sentinel, and 0001-01-01) stay finite, and
    /// PostgreSQL's infinities stay infinite, in every capture that reads values (Npgsql's own conversion turned the
    /// first into the second); an unchanged pass writes nothing, and a timestamp cursor still orders infinity last.
    /// </summary>
    [Theory]
    [InlineData("timestamp", "")]
    [InlineData("polling", "")]
    [InlineData("trigger", "")]
    [InlineData("changelog", Wal)]
    public async Task Date_and_time_extremes_stay_apart_from_the_infinities(string method, string blocks)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TABLE ends (id int PRIMARY KEY, d date, ts timestamp, tz timestamptz, updated_at timestamptz NOT NULL DEFAULT now());
            INSERT INTO ends (id, d) VALUES (1, '2024-02-29');
            """);
        var config = w.Config($"{{name: ends, cdc_method: {method}}}", blocks: blocks);
        await w.RunCompletedAsync(config);

        // After the first run, so the capture reads them (not a bulk load's byte-for-byte copy).
        await w.Source.ExecuteAsync("""
            INSERT INTO ends (id, d, ts, tz) VALUES
              (2, '9999-12-31', '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59.999999+00'),
              (3, '0001-01-01', '0001-01-01 00:00:00', '0001-01-01 00:00:00+00'),
              (4, 'infinity', 'infinity', 'infinity'),
              (5, '-infinity', '-infinity', '-infinity'),
              (6, '9999-12-31', 'infinity', '0001-01-01 00:00:00+00');
            UPDATE ends SET d = '9999-12-31', ts = '0001-01-01', tz = '-infinity', updated_at = now() WHERE id = 1;
            """);
        var report = await w.RunCompletedAsync(config);
        Assert.Equal(6, PgSyncWorkspace.Writes(report));
        const string Dump = "SELECT id, d::text, ts::text, tz::text FROM ends ORDER BY id";
        await w.AssertSameAsync(Dump);
        Assert.Equal("9999-12-31", await w.Destination.ScalarAsync<string>("SELECT d::text FROM ends WHERE id = 2"));

        var again = await w.RunCompletedAsync(config);
        Assert.Equal(0, PgSyncWorkspace.Writes(again));

        await w.Source.ExecuteAsync("UPDATE ends SET d = 'infinity', updated_at = now() WHERE id = 2; UPDATE ends SET d = '9999-12-31', updated_at = now() WHERE id = 4");
        var changed = await w.RunCompletedAsync(config);
        Assert.Equal(2, PgSyncWorkspace.Writes(changed));
        await w.AssertSameAsync(Dump);
    }

    /// <summary>
    /// <c>time '24:00:00'</c> (valid in PostgreSQL, beyond .NET's TimeOnly) failed the whole table in every capture; it
    /// arrives as it is.
    /// </summary>
    [Theory]
    [InlineData("timestamp", "")]
    [InlineData("polling", "")]
    [InlineData("changelog", Wal)]
    public async Task The_end_of_a_day_arrives_as_24_00(string method, string blocks)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TABLE hours (id int PRIMARY KEY, opens time, closes time, shifts time[], updated_at timestamptz NOT NULL DEFAULT now());
            INSERT INTO hours (id, opens, closes) VALUES (1, '08:00', '18:00');
            """);
        var config = w.Config($"{{name: hours, cdc_method: {method}}}", blocks: blocks);
        await w.RunCompletedAsync(config);

        await w.Source.ExecuteAsync("""
            INSERT INTO hours (id, opens, closes, shifts) VALUES (2, '00:00', '24:00:00', '{12:00,24:00:00}'), (3, '23:59:59.999999', '24:00', '{NULL,00:00:00.5}');
            UPDATE hours SET closes = '24:00', updated_at = now() WHERE id = 1;
            """);
        var report = await w.RunCompletedAsync(config);
        Assert.Equal(3, PgSyncWorkspace.Writes(report));
        const string Dump = "SELECT id, opens::text, closes::text, shifts::text FROM hours ORDER BY id";
        await w.AssertSameAsync(Dump);
        Assert.Equal(0, PgSyncWorkspace.Writes(await w.RunCompletedAsync(config)));

        await w.Source.ExecuteAsync("UPDATE hours SET closes = '23:00', updated_at = now() WHERE id = 2");
        Assert.Equal(1, PgSyncWorkspace.Writes(await w.RunCompletedAsync(config)));
        await w.AssertSameAsync(Dump);
    }

    /// <summary>
    /// Multi-dimensional arrays keep their shape (they arrived flattened: <c>{{1,2},{3,4}}</c> became <c>{1,2,3,4}</c>),
    /// from the table, from the log in binary, and from the log as text (a table with an inet column).
    /// </summary>
    [Theory]
    [InlineData("polling", "", "")]
    [InlineData("changelog", Wal, "")]
    [InlineData("changelog", Wal, ", addr inet")]
    public async Task Multi_dimensional_arrays_keep_their_shape(string method, string blocks, string extra)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("CREATE TABLE grid (id int PRIMARY KEY, m int[], t text[], f float8[], d date[]" + extra + ");");
        await w.Source.ExecuteAsync("INSERT INTO grid (id, m) VALUES (1, '{1,2}');");
        var config = w.Config($"{{name: grid, cdc_method: {method}}}", blocks: blocks);
        await w.RunCompletedAsync(config);

        await w.Source.ExecuteAsync("""
            INSERT INTO grid (id, m, t, f, d) VALUES
              (2, '{{1,2},{3,NULL}}', '{{"a b",NULL},{c,"d,e"}}', '{{{1.5},{-0.25}},{{NaN},{1e300}}}', '{{2024-02-29,2000-01-01}}'),
              (3, '{}', '{{"{x}"}}', '{}', NULL);
            UPDATE grid SET t = '{{x,y},{"z w","q\""}}' WHERE id = 1;
            """);
        var report = await w.RunCompletedAsync(config);
        Assert.Equal(3, PgSyncWorkspace.Writes(report));
        const string Dump = "SELECT id, m::text, t::text, f::text, d::text, array_ndims(m), array_ndims(t) FROM grid ORDER BY id";
        await w.AssertSameAsync(Dump);
        Assert.Equal("{{1,2},{3,NULL}}", await w.Destination.ScalarAsync<string>("SELECT m::text FROM grid WHERE id = 2"));
        Assert.Equal(0, PgSyncWorkspace.Writes(await w.RunCompletedAsync(config)));
    }

    /// <summary>
    /// A multi-dimensional <c>time[]</c>, with and without 24:00:00: the log in binary failed the table on any of them
    /// (read as a one-dimensional TimeSpan array), the table read on one holding 24:00:00, and the write of one holding it.
    /// </summary>
    [Theory]
    [InlineData("polling", "", "")]
    [InlineData("changelog", Wal, "")]
    [InlineData("changelog", Wal, ", addr inet")]
    public async Task Multi_dimensional_time_arrays_arrive_with_the_end_of_a_day(string method, string blocks, string extra)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("CREATE TABLE shifts (id int PRIMARY KEY, s time[]" + extra + ");");
        await w.Source.ExecuteAsync("INSERT INTO shifts (id, s) VALUES (1, '{08:00}');");
        var config = w.Config($"{{name: shifts, cdc_method: {method}}}", blocks: blocks);
        await w.RunCompletedAsync(config);

        await w.Source.ExecuteAsync("""
            INSERT INTO shifts (id, s) VALUES (2, '{{08:00,12:00},{13:00,17:00.5}}'), (3, '{{08:00,24:00},{NULL,00:00}}');
            UPDATE shifts SET s = '{{{24:00}}}' WHERE id = 1;
            """);
        var report = await w.RunCompletedAsync(config);
        Assert.Equal(3, PgSyncWorkspace.Writes(report));
        await w.AssertSameAsync("SELECT id, s::text, array_ndims(s) FROM shifts ORDER BY id");
        Assert.Equal(0, PgSyncWorkspace.Writes(await w.RunCompletedAsync(config)));
    }

    /// <summary>
    /// A source table in another schema, with columns of the source's own enum, domain and composite types (and an array
    /// of one) that the destination lacks: the schema is created, such columns are created as text with a note, and the
    /// values arrive as their text (creating the table failed on every run: schema or type "does not exist").
    /// </summary>
    [Theory]
    [InlineData("polling")]
    [InlineData("timestamp")]
    public async Task Types_and_schemas_the_destination_lacks_do_not_stop_the_table(string method)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
            CREATE DOMAIN posint AS int CHECK (VALUE > 0);
            CREATE TYPE pair AS (a int, b text);
            CREATE SCHEMA sales;
            CREATE TABLE sales.orders (id int PRIMARY KEY, m mood, ms mood[], p posint, pr pair, updated_at timestamptz NOT NULL DEFAULT now());
            INSERT INTO sales.orders (id, m, ms, p, pr) VALUES (1, 'ok', '{sad,happy}', 5, '(1,x)');
            """);
        var config = w.Config($"{{name: sales.orders, cdc_method: {method}}}");

        var first = await w.RunCompletedAsync(config);
        Assert.Equal(4, first.Warnings.Count(x => x.Contains("which the destination does not have", StringComparison.Ordinal)));
        await w.Source.ExecuteAsync("""
            INSERT INTO sales.orders (id, m, ms, p, pr) VALUES (2, 'happy', '{ok}', 7, '(2,"y z")');
            UPDATE sales.orders SET m = 'sad', updated_at = now() WHERE id = 1;
            """);
        await w.RunCompletedAsync(config);
        const string Dump = "SELECT id, m::text, ms::text, p::text, pr::text FROM sales.orders ORDER BY id";
        await w.AssertSameAsync(Dump);
        Assert.Equal("text", await w.Destination.ScalarAsync<string>("SELECT data_type FROM information_schema.columns WHERE table_schema = 'sales' AND table_name = 'orders' AND column_name = 'm'"));
        Assert.Equal(0, PgSyncWorkspace.Writes(await w.RunCompletedAsync(config)));
    }

    /// <summary>
    /// Two tables of one name in different schemas are two tables: the source kept what it described by bare name, so
    /// the second described replaced the first, and <c>public.items</c> at the destination received <c>archive.items</c>'s rows.
    /// </summary>
    [Theory]
    [InlineData("polling", "")]
    [InlineData("timestamp", "")]
    [InlineData("changelog", Wal)]
    public async Task Tables_of_one_name_in_two_schemas_each_get_their_own_rows(string method, string blocks)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE SCHEMA archive;
            CREATE TABLE items (id int PRIMARY KEY, v text, updated_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE archive.items (id int PRIMARY KEY, v text, w int, updated_at timestamptz NOT NULL DEFAULT now());
            INSERT INTO items (id, v) SELECT g, 'public' FROM generate_series(1, 5) g;
            INSERT INTO archive.items (id, v, w) SELECT g, 'archive', g FROM generate_series(1, 3) g;
            """);
        var config = w.Config($"{{name: items, cdc_method: {method}}}, {{name: archive.items, cdc_method: {method}}}", blocks: blocks);
        await w.RunCompletedAsync(config);
        await w.Source.ExecuteAsync("UPDATE items SET v = 'public2', updated_at = now() WHERE id = 1; UPDATE archive.items SET v = 'archive2', updated_at = now() WHERE id = 2");
        await w.RunCompletedAsync(config);

        await w.AssertSameAsync("SELECT id, v FROM items ORDER BY id");
        await w.AssertSameAsync("SELECT id, v, w FROM archive.items ORDER BY id");
    }

    /// <summary>Every natively mapped type, beside an inet column that makes the table's log come as text.</summary>
    private const string NativeColumns = """
        CREATE TABLE mixed (
          id bigint PRIMARY KEY, addr inet, s smallint, i int, r real, d double precision, n numeric(12,3), b boolean,
          t text, vc varchar(10), c char(3), raw bytea, at timestamptz, local timestamp, day date, clock time, ref uuid,
          doc json, docb jsonb, ints int[], texts text[], days date[], clocks time[], stamps timestamptz[], nums numeric[]);
        """;

    private const string NativeRows = """
        INSERT INTO mixed VALUES
          (1, '10.0.0.1/8', -32768, 2147483647, 3.4028235e38, 0.1, -123456789.125, true, 'x "y", z', 'héllo', 'ab', '\x00ff10',
           '2025-01-02 03:04:05.123456+05:30', '1999-12-31 23:59:59.999999', '2024-02-29', '23:59:59.999999', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
           '{"k": [1, 2.50]}', '{"k": [1, 2.50]}', '{1,NULL,-3}', '{"a,b","",NULL,"NULL","q\"\\"}', '{2024-01-01}', '{12:00:00.5}',
           '{2025-01-02 03:04:05+00,-infinity}', '{1.50,-2}'),
          (2, NULL, 0, 0, 'NaN', '-Infinity', 0, false, '', '', '', '\x', 'infinity', '-infinity', 'infinity', '00:00', NULL,
           'null', '[]', '{}', '{}', NULL, NULL, NULL, NULL),
          (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        """;

    [Fact]
    public async Task A_table_whose_log_comes_as_text_carries_its_native_columns_unchanged()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(NativeColumns);
        var config = w.Config("{name: mixed, cdc_method: changelog}", blocks: Wal);
        await w.RunCompletedAsync(config);

        await w.Source.ExecuteAsync(NativeRows);
        var report = await w.RunCompletedAsync(config);
        Assert.Equal(3, PgSyncWorkspace.Writes(report));
        await w.AssertSameAsync("SELECT mixed::text FROM mixed ORDER BY id");
    }

    [Fact]
    public async Task A_column_of_an_unmapped_type_added_while_the_log_streams_in_binary_arrives_unchanged()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("CREATE TABLE grow (id int PRIMARY KEY, note text); INSERT INTO grow VALUES (1, 'a');");
        var config = w.Config("{name: grow, cdc_method: changelog}", blocks: Wal);
        await w.RunCompletedAsync(config);

        await w.Source.ExecuteAsync("""
            INSERT INTO grow VALUES (2, 'b');
            ALTER TABLE grow ADD COLUMN span interval, ADD COLUMN addr inet;
            INSERT INTO grow VALUES (3, 'c', '1 year 2 mons', '10.1.2.3/16');
            UPDATE grow SET span = '3 days', addr = '::1/64' WHERE id = 1;
            """);
        await w.RunCompletedAsync(config);
        await w.AssertSameAsync("SELECT id, note, span::text, addr::text FROM grow ORDER BY id");
    }

    /// <summary>
    /// A numeric key beyond decimal (NaN, 29+ digits, 1e-30) is read as text wherever keys are read: a trigger capture's
    /// delete (the key from the change row), reconciliation's split keys and leaves, and reads by key.
    /// </summary>
    [Theory]
    [InlineData("trigger", false)]
    [InlineData("polling", true)]
    public async Task Numeric_keys_beyond_decimal_survive_deletes_and_reconciliation(string method, bool reconcile)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TABLE nkey (id numeric PRIMARY KEY, v text);
            INSERT INTO nkey VALUES (1, 'a'), ('NaN', 'n'), (12345678901234567890123456789.5, 'big'), (0.000000000000000000000000000001, 'tiny');
            """);
        var config = w.Config($"{{name: nkey, cdc_method: {method}}}");
        await w.RunCompletedAsync(config);
        await w.Source.ExecuteAsync("DELETE FROM nkey WHERE id = 'NaN' OR id > 1000; INSERT INTO nkey VALUES (2, 'b')");
        await w.Destination.ExecuteAsync("DELETE FROM nkey WHERE id = 1");
        await w.RunCompletedAsync(config, reconcile: reconcile);
        if (reconcile)
        {
            await w.RunCompletedAsync(config, reconcile: true);
        }

        await w.AssertSameAsync("SELECT id::text, v FROM nkey WHERE id <> 1 ORDER BY id");
    }
    /// <summary>
    /// Keys of date and time types that differ only in their seconds or sub-seconds are distinct records: each arrives,
    /// an unchanged pass writes nothing, a delete removes only its own row, and a full compare (polling) reads them in
    /// the source's key order (their ledger keys were culture text without fractions: "01/01/2024 00:00:00", "10:00").
    /// </summary>
    [Theory]
    [InlineData("timestamp", "")]
    [InlineData("polling", "")]
    [InlineData("trigger", "")]
    [InlineData("changelog", Wal)]
    public async Task Date_and_time_keys_differing_in_seconds_or_fractions_stay_distinct(string method, string blocks)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TABLE kts (id timestamptz PRIMARY KEY, v text, updated_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE ktm (id time PRIMARY KEY, v text, updated_at timestamptz NOT NULL DEFAULT now());
            CREATE TABLE kdt (id date PRIMARY KEY, v text, updated_at timestamptz NOT NULL DEFAULT now());
            """);
        var config = w.Config($"{{name: kts, cdc_method: {method}}}, {{name: ktm, cdc_method: {method}}}, {{name: kdt, cdc_method: {method}}}", blocks: blocks);
        await w.RunCompletedAsync(config);

        await w.Source.ExecuteAsync("""
            INSERT INTO kts (id, v) VALUES ('2024-01-01 00:00:00+00', 'a'), ('2024-01-01 00:00:00.25+00', 'b'), ('2024-01-01 00:00:00.5+00', 'c'), ('1850-06-01 00:00:00+00', 'd');
            INSERT INTO ktm (id, v) VALUES ('10:00:00', 'a'), ('10:00:30', 'b'), ('10:00:59.9', 'c'), ('09:59:59', 'd');
            INSERT INTO kdt (id, v) VALUES ('2023-12-01', 'a'), ('2024-01-01', 'b');
            """);
        var report = await w.RunCompletedAsync(config);
        Assert.Equal(10, PgSyncWorkspace.Writes(report));
        await w.AssertSameAsync("SELECT id::text, v FROM kts ORDER BY id");
        await w.AssertSameAsync("SELECT id::text, v FROM ktm ORDER BY id");
        await w.AssertSameAsync("SELECT id::text, v FROM kdt ORDER BY id");

        var again = await w.RunCompletedAsync(config);
        Assert.Equal(0, PgSyncWorkspace.Writes(again));

        if (method != "timestamp")
        {
            await w.Source.ExecuteAsync("DELETE FROM kts WHERE id = '2024-01-01 00:00:00.25+00'; DELETE FROM ktm WHERE id = '10:00:30'");
            await w.RunCompletedAsync(config);
            await w.AssertSameAsync("SELECT id::text, v FROM kts ORDER BY id");
            await w.AssertSameAsync("SELECT id::text, v FROM ktm ORDER BY id");
        }
    }
}
