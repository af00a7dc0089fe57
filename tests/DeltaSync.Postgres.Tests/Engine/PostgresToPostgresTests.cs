using DeltaSync.Core.Reporting;

namespace DeltaSync.Postgres.Tests.Engine;

/// <summary>PostgreSQL → PostgreSQL with the query-based capture methods, end to end against the real server.</summary>
public sealed class PostgresToPostgresTests
{
    private const string Orders = """
        CREATE TABLE orders (
          id bigint PRIMARY KEY,
          customer text NOT NULL,
          amount numeric(12,2),
          tags text[],
          attrs jsonb,
          ref uuid,
          blob bytea,
          placed date,
          paid boolean DEFAULT false,
          score double precision,
          qty integer,
          addr inet,
          seq bigint,
          updated_at timestamptz NOT NULL DEFAULT now());
        CREATE SEQUENCE orders_seq;
        """;

    private const string Dump = "SELECT id, customer, amount, tags, attrs::text, ref, blob, placed, paid, score, qty, addr::text, seq, updated_at FROM orders ORDER BY id";

    private static async Task SeedAsync(PgDatabase db, int from, int count, string updatedAt = "now() - interval '1 hour'")
    {
        await db.ExecuteAsync($"""
            INSERT INTO orders (id, customer, amount, tags, attrs, ref, blob, placed, paid, score, qty, addr, seq, updated_at)
            SELECT g, 'customer ' || g, g * 1.25, ARRAY['t' || g, NULL], jsonb_build_object('n', g, 'nested', jsonb_build_array(g, 'x')),
                   md5(g::text)::uuid, decode(md5(g::text), 'hex'), date '2024-01-01' + g, g % 2 = 0, g / 7.0, g % 1000,
                   ('10.0.' || (g % 250) || '.1')::inet, nextval('orders_seq'), {updatedAt} + g * interval '1 microsecond'
            FROM generate_series({from}, {from + count - 1}) AS g
            """);
    }

    [Theory]
    [InlineData("{name: orders, cdc_method: timestamp}")]
    [InlineData("{name: orders, cdc_method: version, sequence_field: seq}")]
    [InlineData("{name: orders, cdc_method: version, version_field: seq}")]
    [InlineData("{name: orders, cdc_method: polling}")]
    public async Task Snapshot_then_changes_arrive_with_every_type_intact(string table)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Orders);
        await SeedAsync(w.Source, 1, 2500);
        var config = w.Config(table, batchSize: 700);

        var first = await w.RunCompletedAsync(config);
        Assert.Equal(2500, first.Statistics.RecordsInserted);
        await w.AssertSameAsync(Dump);

        await w.Source.ExecuteAsync("UPDATE orders SET amount = amount + 1, seq = nextval('orders_seq'), updated_at = now() WHERE id % 100 = 0");
        await SeedAsync(w.Source, 5001, 10, "now()");
        var second = await w.RunCompletedAsync(config);
        Assert.Equal(10, second.Statistics.RecordsInserted);
        Assert.Equal(25, second.Statistics.RecordsUpdated);
        await w.AssertSameAsync(Dump);

        var third = await w.RunCompletedAsync(config);
        Assert.Equal(0, third.Statistics.RecordsInserted + third.Statistics.RecordsUpdated + third.Statistics.RecordsDeleted);
    }

    [Fact]
    public async Task Polling_finds_hard_deletes()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Orders);
        await SeedAsync(w.Source, 1, 300);
        var config = w.Config("{name: orders, cdc_method: polling}");
        await w.RunCompletedAsync(config);

        await w.Source.ExecuteAsync("DELETE FROM orders WHERE id BETWEEN 10 AND 19");
        var report = await w.RunCompletedAsync(config);

        Assert.Equal(10, report.Statistics.RecordsDeleted);
        await w.AssertSameAsync(Dump);
    }

    [Fact]
    public async Task Text_and_composite_keys_page_in_code_point_order()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TABLE pairs (region text, code text, n int, updated_at timestamptz DEFAULT now(), PRIMARY KEY (region, code));
            INSERT INTO pairs SELECT r, c, row_number() OVER () FROM unnest(ARRAY['a', 'B', 'é', 'Z', 'ab', 'a b']) r, unnest(ARRAY['x', 'X', '1', 'é']) c;
            """);
        var config = w.Config("{name: pairs, cdc_method: polling}", batchSize: 5);
        await w.RunCompletedAsync(config);
        await w.Source.ExecuteAsync("DELETE FROM pairs WHERE region = 'é'; UPDATE pairs SET n = n + 100 WHERE code = 'X'");
        var report = await w.RunCompletedAsync(config);

        Assert.Equal(4, report.Statistics.RecordsDeleted);
        Assert.Equal(5, report.Statistics.RecordsUpdated);
        await w.AssertSameAsync("SELECT region, code, n FROM pairs ORDER BY region COLLATE \"C\", code COLLATE \"C\"");
    }

    [Fact]
    public async Task A_column_added_at_the_source_is_added_at_the_destination_and_filled()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Orders);
        await SeedAsync(w.Source, 1, 50);
        var config = w.Config("{name: orders, cdc_method: timestamp}");
        await w.RunCompletedAsync(config);

        await w.Source.ExecuteAsync("ALTER TABLE orders ADD COLUMN note varchar(20) DEFAULT 'n/a'; UPDATE orders SET note = 'vip', updated_at = now() WHERE id = 7");
        var report = await w.RunCompletedAsync(config);

        Assert.Contains(report.Warnings, x => x.Contains("schema", StringComparison.OrdinalIgnoreCase));
        await w.AssertSameAsync("SELECT id, note FROM orders ORDER BY id");
    }

    [Fact]
    public async Task A_destination_table_that_already_holds_some_rows_is_brought_to_the_source_state()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Orders);
        await SeedAsync(w.Source, 1, 400);
        await w.Destination.ExecuteAsync(Orders);
        await SeedAsync(w.Destination, 390, 11);
        await w.Destination.ExecuteAsync("UPDATE orders SET customer = 'stale copy'");

        var report = await w.RunCompletedAsync(w.Config("{name: orders, cdc_method: timestamp}", batchSize: 100));

        // The rows the ledger does not know are written as inserts; the ones already there are overwritten, not doubled.
        Assert.Equal(400, report.Statistics.RecordsInserted);
        await w.AssertSameAsync(Dump);
    }

    internal static string Stats(SyncReport report) => PgSyncWorkspace.Describe(report);
}
