using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using NodaTime;

namespace DeltaSync.Core.Tests.Config;

/// <summary><c>sync.sources</c>: several named sources at one destination, validated with key paths.</summary>
public sealed class MultiSourceConfigTests
{
    private const string TwoSources = """
        sync:
          name: shop
          sources:
            - name: crm
              connection: "sqlite:crm.db"
              cdc_method: trigger
              clock_offset: -2s
              key_map: {customers: {id: customer_no}}
              tables: [customers]
            - name: shop
              connection: "sqlite:shop.db"
              tables: [customers, orders]
          destination:
            connection: "sqlite:dest.db"
        """;

    [Fact]
    public void Sources_bind_with_their_own_settings_and_yield_one_plan_per_source_and_table()
    {
        var config = ConfigText.Parse(TwoSources);

        Assert.True(config.Sync.IsMultiSource);
        Assert.Equal(["crm", "shop"], config.Sync.Sources.Select(s => s.Name));
        Assert.Equal("crm", config.Sync.Source.Name);
        var crm = config.Sync.SourceNamed("crm");
        Assert.Equal(CdcMethod.Trigger, crm.CdcMethod);
        Assert.Equal(Duration.FromSeconds(-2), crm.ClockOffset);
        Assert.Equal("customer_no", crm.KeyMap["customers"]["id"]);

        var plans = TablePlan.FromConfig(config);
        Assert.Equal(["shop/crm/customers", "shop/shop/customers", "shop/shop/orders"], plans.Select(p => p.Stream));
        Assert.Equal(["customers", "customers", "orders"], plans.Select(p => p.DestinationTable));
        Assert.Equal([CdcMethod.Trigger, CdcMethod.Timestamp, CdcMethod.Timestamp], plans.Select(p => p.Method));
        Assert.Equal(["customers"], TablePlan.SharedDestinationTables(plans));
        Assert.Equal("customer_no", plans[0].KeyMap["id"]);
    }

    [Fact]
    public void A_single_source_keeps_its_stream_names_so_existing_state_still_applies()
    {
        var plan = Assert.Single(TablePlan.FromConfig(ConfigText.Parse(ConfigText.Minimal)));

        Assert.Equal("shop/customers", plan.Stream);
        Assert.Empty(TablePlan.SharedDestinationTables([plan]));
    }

    [Fact]
    public void Source_and_sources_together_are_refused()
    {
        var error = ConfigText.SingleError(ConfigText.Minimal.Replace("  destination:", """
              sources:
                - {name: crm, connection: "sqlite:crm.db", tables: [customers]}
              destination:
            """, StringComparison.Ordinal));

        Assert.Equal("sync.sources", error.KeyPath);
        Assert.Contains("not both", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Neither_source_nor_sources_is_refused()
    {
        var errors = ConfigText.Errors("""
            sync:
              destination: {connection: "sqlite:dest.db"}
            """);

        Assert.Contains(errors, e => e.KeyPath == "sync.source" && e.Message.Contains("required", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("- {name: crm, connection: 'sqlite:a.db', tables: [t]}\n    - {name: crm, connection: 'sqlite:b.db', tables: [t]}", "sync.sources[1].name", "duplicate source name 'crm'")]
    [InlineData("- {name: destination, connection: 'sqlite:a.db', tables: [t]}", "sync.sources[0].name", "reserved")]
    [InlineData("- {connection: 'sqlite:a.db', tables: [t]}", "sync.sources[0].name", "is required")]
    [InlineData("- {name: crm, connection: 'sqlite:a.db', tables: [t], key_map: {orders: {id: order_no}}}", "sync.sources[0].key_map.orders", "not one of this source's tables")]
    [InlineData("- {name: crm, connection: 'sqlite:a.db', tables: [t], clock_offset: soon}", "sync.sources[0].clock_offset", "expected a duration")]
    [InlineData("- {name: crm, connection: 'sqlite:a.db', tables: [t], primary: x}", "sync.sources[0].primary", "unknown key")]
    public void Invalid_sources_are_reported_with_their_key_path(string sources, string keyPath, string message)
    {
        var error = ConfigText.SingleError($$"""
            sync:
              sources:
                {{sources}}
              destination: {connection: "sqlite:dest.db"}
            """);

        Assert.Equal(keyPath, error.KeyPath);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Key_map_renames_a_sources_key_columns_to_the_destinations()
    {
        var schema = new TableSchema(
            "customers",
            [new ColumnSchema("customer_no", "INTEGER", DataKind.Integer, false, 1), new ColumnSchema("name", "TEXT", DataKind.Text, true, 0)],
            ["customer_no"]);

        var renamed = KeyMapping.Rename(schema, new Dictionary<string, string> { ["id"] = "customer_no" });

        Assert.Equal(["id", "name"], renamed.Columns.Select(c => c.Name));
        Assert.Equal(["id"], renamed.PrimaryKey);
        Assert.Same(schema, KeyMapping.Rename(schema, new Dictionary<string, string>()));
    }
}
