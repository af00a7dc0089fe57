namespace DeltaSync.Postgres.Tests.Engine;

/// <summary>
/// The spec's "Deletion Handling" edge cases between real PostgreSQL databases: soft deletes, hard deletes through
/// triggers, cascade deletes and their propagation (uuid keys, so parent keys are cast to the child's column type),
/// restrict, and undeleting.
/// </summary>
public sealed class DeletionHandlingTests
{
    private const string Shop = """
        CREATE TABLE customers (id uuid PRIMARY KEY, name text NOT NULL, is_deleted boolean NOT NULL DEFAULT false, updated_at timestamptz NOT NULL DEFAULT now());
        CREATE TABLE orders (id bigint PRIMARY KEY, customer_id uuid REFERENCES customers (id) ON DELETE CASCADE, total numeric(10, 2), updated_at timestamptz NOT NULL DEFAULT now() - interval '1 minute');
        CREATE TABLE order_items (id bigint PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE, sku text, updated_at timestamptz NOT NULL DEFAULT now() - interval '1 minute');
        INSERT INTO customers (id, name) VALUES
          ('00000000-0000-0000-0000-000000000001', 'one'), ('00000000-0000-0000-0000-000000000002', 'two'), ('00000000-0000-0000-0000-000000000003', 'three');
        INSERT INTO orders (id, customer_id, total) SELECT c * 10 + o, ('00000000-0000-0000-0000-00000000000' || c)::uuid, (c * 10 + o) * 2.5 FROM generate_series(1, 3) c, generate_series(1, 2) o;
        INSERT INTO order_items (id, order_id, sku) SELECT o.id * 10 + i, o.id, 'sku-' || i FROM orders o, generate_series(1, 2) i;
        """;

    private static string Tables(string customers) => customers + ", orders, order_items";

    private static string Relationships(string onDelete) => $$"""
          relationships:
            - {parent: customers, child: orders, foreign_key: customer_id, on_delete: {{onDelete}}}
            - {parent: orders, child: order_items, foreign_key: order_id}
        """;

    private static Core.Config.SyncConfig Config(PgSyncWorkspace w, string customers, string onDelete) => w.Configure($$"""
        sync:
          source: {connection: "{{w.Source.Uri}}", tables: [{{Tables(customers)}}]}
          destination: {connection: "{{w.Destination.Uri}}"}
        {{Relationships(onDelete)}}
        """);

    [Fact]
    public async Task CascadeDeletes_of_a_hard_deleted_parent_reach_children_and_grandchildren()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Shop);
        var config = Config(w, "{name: customers, cdc_method: trigger}", "cascade");
        await w.RunCompletedAsync(config);

        // The source's own cascade removes orders and items: their timestamp cursors cannot see that.
        await w.Source.ExecuteAsync("DELETE FROM customers WHERE id = '00000000-0000-0000-0000-000000000002'");
        var report = await w.RunCompletedAsync(config);

        var customers = report.Tables.Single(t => t.Table == "customers");
        Assert.Equal(1, customers.RecordsDeleted);
        Assert.Equal(6, customers.ChildRowsDeleted);
        foreach (var table in new[] { "customers", "orders", "order_items" })
        {
            await w.AssertSameAsync($"SELECT * FROM {table} ORDER BY id");
        }

        Assert.Equal(0, PgSyncWorkspace.Writes(await w.RunCompletedAsync(config)));
    }

    [Fact]
    public async Task SoftDeletes_with_a_boolean_flag_propagate_and_set_null_clears_the_childrens_key()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Shop);
        var config = Config(w, "{name: customers, soft_delete: {field: is_deleted, deleted_values: [true]}}", "set_null");
        await w.RunCompletedAsync(config);

        await w.Source.ExecuteAsync("UPDATE customers SET is_deleted = true, updated_at = now() WHERE id = '00000000-0000-0000-0000-000000000001'");
        var report = await w.RunCompletedAsync(config);

        var customers = report.Tables.Single(t => t.Table == "customers");
        Assert.Equal((1L, 1L, 2L), (customers.RecordsSoftDeleted, customers.RecordsDeleted, customers.ChildRowsSetNull));
        Assert.Equal(2L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM customers"));
        Assert.Equal(2L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM orders WHERE customer_id IS NULL AND id IN (11, 12)"));
        Assert.Equal(12L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM order_items"));
    }

    [Fact]
    public async Task DeletePropagation_with_restrict_dead_letters_the_parent_delete_while_children_remain()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Shop);
        var config = Config(w, "{name: customers, soft_delete: {field: is_deleted, deleted_values: [true]}}", "restrict");
        await w.RunCompletedAsync(config);

        await w.Source.ExecuteAsync("UPDATE customers SET is_deleted = true, updated_at = now() WHERE id = '00000000-0000-0000-0000-000000000003'");
        var report = await w.RunAsync(config);

        Assert.Equal("partial", report.Metadata.Status);
        var error = Assert.Single(report.Errors);
        Assert.Contains("restrict", error.Message, StringComparison.Ordinal);
        Assert.Equal("00000000-0000-0000-0000-000000000003", error.RecordId);
        Assert.Equal(3L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM customers"));
        Assert.Equal(6L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM orders"));
    }

    [Fact]
    public async Task Undeleting_a_hard_deleted_record_re_inserts_it()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("CREATE TABLE accounts (id bigint PRIMARY KEY, name text NOT NULL); INSERT INTO accounts VALUES (1, 'one'), (2, 'two')");
        var config = w.Config("{name: accounts, cdc_method: trigger}");
        await w.RunCompletedAsync(config);
        await w.Source.ExecuteAsync("DELETE FROM accounts WHERE id = 1");
        Assert.Equal(1, (await w.RunCompletedAsync(config)).Statistics.RecordsDeleted);

        await w.Source.ExecuteAsync("INSERT INTO accounts VALUES (1, 'one again')");
        var report = await w.RunCompletedAsync(config);

        Assert.Equal(1, report.Statistics.RecordsInserted);
        await w.AssertSameAsync("SELECT * FROM accounts ORDER BY id");
    }
}
