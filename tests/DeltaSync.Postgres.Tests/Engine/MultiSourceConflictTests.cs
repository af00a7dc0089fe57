namespace DeltaSync.Postgres.Tests.Engine;

/// <summary>Two PostgreSQL sources writing one PostgreSQL destination: field merge, a conflict, record bases in <c>deltasync.records</c>.</summary>
public sealed class MultiSourceConflictTests
{
    private const string Customers = """
        CREATE TABLE customers (
          id bigint PRIMARY KEY,
          name text NOT NULL,
          email text,
          amount numeric(10,2),
          seen_at timestamptz,
          updated_at timestamptz NOT NULL);
        INSERT INTO customers VALUES (1, 'Ann', 'ann@old', 10.50, '2026-01-01T00:00:00Z', now() - interval '10 minutes');
        """;

    [Fact]
    public async Task Two_sources_merge_fields_and_conflict_on_the_same_field_at_a_postgres_destination()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await using var shop = await PgDatabase.CreateAsync("src2");
        await w.Source.ExecuteAsync(Customers);
        await shop.ExecuteAsync(Customers);
        var config = w.TwoSources(shop, "customers", first: "crm");
        var first = await w.RunCompletedAsync(config);
        Assert.Equal(1, first.Statistics.RecordsInserted);
        Assert.Equal(0, first.Statistics.ConflictsDetected);

        await w.Source.ExecuteAsync("UPDATE customers SET email = 'ann@crm', amount = 20.25, updated_at = now() - interval '2 minutes' WHERE id = 1");
        await shop.ExecuteAsync("UPDATE customers SET email = 'ann@shop', updated_at = now() - interval '1 minute' WHERE id = 1");
        var second = await w.RunCompletedAsync(config);

        var conflict = Assert.Single(second.Conflicts);
        Assert.Equal(["email"], conflict.Fields);
        Assert.Equal("last_write_wins", conflict.Resolution);
        Assert.Equal("ann@shop", await w.Destination.ScalarAsync<string>("SELECT email FROM customers WHERE id = 1"));
        Assert.Equal(20.25m, await w.Destination.ScalarAsync<decimal>("SELECT amount FROM customers WHERE id = 1"));
        Assert.Equal(1L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM deltasync.records WHERE destination_table = 'customers'"));

        // Values read back from the destination (numeric, timestamptz) compare equal to the stored base: they are not
        // taken for out-of-band edits, so later changes to them by one source merge without conflict.
        await w.Source.ExecuteAsync("UPDATE customers SET amount = 30.00, seen_at = '2026-02-01T00:00:00Z', updated_at = now() - interval '30 seconds' WHERE id = 1");
        await shop.ExecuteAsync("UPDATE customers SET name = 'Ann B.', updated_at = now() - interval '20 seconds' WHERE id = 1");
        var third = await w.RunCompletedAsync(config);
        Assert.Equal(0, third.Statistics.ConflictsDetected);
        Assert.Equal(("Ann B.", 30.00m), (await w.Destination.ScalarAsync<string>("SELECT name FROM customers WHERE id = 1"), await w.Destination.ScalarAsync<decimal>("SELECT amount FROM customers WHERE id = 1")));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_source_that_synced_the_table_alone_does_not_take_another_sources_write_for_its_own_change(bool bulkLoad)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await using var shop = await PgDatabase.CreateAsync("src2");
        await w.Source.ExecuteAsync(Customers);
        await shop.ExecuteAsync(Customers);
        if (!bulkLoad)
        {
            // A destination table already there (with a wider amount type, which the source's does not widen) takes the
            // ordinary pipeline, not the bulk load. (A narrower type than the source's would be widened to it.)
            await w.Destination.ExecuteAsync("CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, email text, amount numeric(12,2), seen_at timestamptz, updated_at timestamptz NOT NULL)");
        }

        var alone = await w.RunCompletedAsync(w.Config("{name: customers, cdc_method: timestamp}"));
        Assert.Equal(bulkLoad ? "binary_copy" : null, Assert.Single(alone.Tables).InitialLoad);
        var both = w.TwoSources(shop, "customers");
        // shop joins: the rows 'source' synced alone are common ground of both.
        Assert.Equal(0, (await w.RunCompletedAsync(both)).Statistics.ConflictsDetected);

        // shop's change merges first (alone in its run), then 'source' changes another field, later.
        await shop.ExecuteAsync("UPDATE customers SET name = 'Ann S.', updated_at = now() - interval '2 minutes' WHERE id = 1");
        Assert.Equal(0, (await w.RunCompletedAsync(both)).Statistics.ConflictsDetected);
        await w.Source.ExecuteAsync("UPDATE customers SET email = 'ann@src', updated_at = now() - interval '1 minute' WHERE id = 1");
        var report = await w.RunCompletedAsync(both);

        // 'source' still reports the name it synced ('Ann'): that is no change of its own, neither a conflict with shop's
        // write nor (as the later write) a revert of it.
        Assert.Equal(0, report.Statistics.ConflictsDetected);
        Assert.Equal("Ann S.|ann@src", await w.Destination.ScalarAsync<string>("SELECT name || '|' || email FROM customers WHERE id = 1"));
    }
}
