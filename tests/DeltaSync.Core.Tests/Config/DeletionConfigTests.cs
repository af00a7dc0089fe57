using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;

namespace DeltaSync.Core.Tests.Config;

/// <summary><c>soft_delete</c> per table and <c>sync.relationships</c>: bound, resolved into table plans, and validated at their key paths.</summary>
public sealed class DeletionConfigTests
{
    private const string Shop = """
        sync:
          source:
            connection: "sqlite:source.db"
            tables:
              - {name: customers, soft_delete: {field: deleted_at}}
              - {name: orders, soft_delete: {field: is_deleted, deleted_values: [1, true, "Y"], mode: keep}}
              - order_items
          destination:
            connection: "sqlite:dest.db"
          relationships:
            - {parent: customers, child: orders, foreign_key: customer_id, on_delete: set_null}
            - {parent: orders, child: order_items, foreign_key: [order_id]}
        """;

    [Fact]
    public void Soft_deletes_and_relationships_bind_into_the_table_plans()
    {
        var config = ConfigLoader.Parse(Shop, "/tmp/shop.yaml", _ => null);
        var plans = TablePlan.FromConfig(config).ToDictionary(p => p.Table);

        Assert.Equal(new SoftDeleteOptions("deleted_at", null, SoftDeleteMode.Propagate), plans["customers"].SoftDelete);
        Assert.Equal(SoftDeleteMode.Keep, plans["orders"].SoftDelete!.Mode);
        Assert.Equal(["1", "true", "Y"], plans["orders"].SoftDelete!.DeletedValues);
        Assert.Null(plans["order_items"].SoftDelete);

        // customers → orders (set NULL); a cascade from orders would reach order_items (the default action).
        var child = Assert.Single(plans["customers"].Children);
        Assert.Equal(("orders", DeleteAction.SetNull), (child.ChildTable, child.OnDelete));
        Assert.Equal(["customer_id"], child.ForeignKey);
        var grandchild = Assert.Single(child.Children);
        Assert.Equal(("order_items", DeleteAction.Cascade), (grandchild.ChildTable, grandchild.OnDelete));
        Assert.Equal(new Core.Ledger.LedgerScope("order_items", "source"), grandchild.ChildScope);
        Assert.Empty(plans["order_items"].Children);
    }

    [Theory]
    [InlineData("  relationships:\n    - {parent: customers, child: invoices, foreign_key: customer_id}", "sync.relationships[0].child", "'invoices' is not one of the synced tables (customers)")]
    [InlineData("  relationships:\n    - {parent: customers, child: customers, foreign_key: parent_id}", "sync.relationships[0].child", "must differ from parent (a table referencing itself is not supported)")]
    [InlineData("  relationships:\n    - {parent: customers, child: customers2}", "sync.relationships[0].foreign_key", "is required: the child's column(s) referencing the parent's primary key, e.g. customer_id")]
    [InlineData("  relationships:\n    - {parent: customers, child: customers, foreign_key: x, on_delete: nullify}", "sync.relationships[0].on_delete", "expected one of cascade, set_null or restrict, got 'nullify'")]
    public void Invalid_relationships_are_reported_at_their_key(string block, string keyPath, string message)
    {
        var errors = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(ConfigText.Minimal + "\n" + block, "/tmp/c.yaml", _ => null)).Errors;

        Assert.Contains(errors, e => e.KeyPath == keyPath && e.Message == message);
    }

    [Theory]
    [InlineData("{name: customers, soft_delete: {deleted_values: [1]}}", "sync.source.tables[0].soft_delete.field", "is required: the column that marks a row deleted, e.g. deleted_at or is_deleted")]
    [InlineData("{name: customers, soft_delete: {field: is_deleted, mode: hide}}", "sync.source.tables[0].soft_delete.mode", "expected one of propagate or keep, got 'hide'")]
    [InlineData("{name: customers, soft_delete: {field: is_deleted, deleted_values: []}}", "sync.source.tables[0].soft_delete.deleted_values", "is empty: list the values that mean deleted (e.g. [1, true]), or leave it out to treat any non-NULL value as deleted")]
    [InlineData("{name: customers, soft_delete: {field: x, when: 1}}", "sync.source.tables[0].soft_delete.when", "unknown key 'when'; expected one of: field, deleted_values, mode")]
    public void Invalid_soft_deletes_are_reported_at_their_key(string table, string keyPath, string message)
    {
        var yaml = $$"""
            sync:
              source: {connection: "sqlite:source.db", tables: [{{table}}]}
              destination: {connection: "sqlite:dest.db"}
            """;

        var errors = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, "/tmp/c.yaml", _ => null)).Errors;

        Assert.Contains(errors, e => e.KeyPath == keyPath && e.Message == message);
    }
}
