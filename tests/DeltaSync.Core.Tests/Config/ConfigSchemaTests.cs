using System.Text.Json;
using DeltaSync.Core.Config;

namespace DeltaSync.Core.Tests.Config;

public sealed class ConfigSchemaTests
{
    private static readonly string SchemaPath = Path.Combine(ConfigText.RepositoryRoot(), "schema", "deltasync.schema.json");
    private static readonly string ExamplePath = Path.Combine(ConfigText.RepositoryRoot(), "examples", "deltasync.yaml");

    /// <summary>Schema locations of each block the loader reads, paired with the keys the loader accepts there.</summary>
    public static TheoryData<string, string[]> Blocks => new()
    {
        { "", ConfigKeys.Root },
        { "sync", ConfigKeys.Sync },
        { "sync.source", ConfigKeys.Source },
        { "sync.sources.items", ConfigKeys.SourceEntry },
        { "sync.destination", ConfigKeys.Destination },
        { "$defs.table.anyOf[1]", ConfigKeys.Table },
        { "$defs.table.anyOf[1].soft_delete", ConfigKeys.SoftDelete },
        { "sync.relationships.items", ConfigKeys.Relationship },
        { "cdc", ConfigKeys.Cdc },
        { "cdc.timestamp", ConfigKeys.Timestamp },
        { "cdc.version", ConfigKeys.Version },
        { "cdc.changelog", ConfigKeys.Changelog },
        { "cdc.polling", ConfigKeys.Polling },
        { "cdc.trigger", ConfigKeys.Trigger },
        { "conflict_resolution", ConfigKeys.ConflictResolution },
        { "conflict_resolution.strategies.items", ConfigKeys.FieldStrategy },
        { "conflict_resolution.tolerance", ConfigKeys.Tolerance },
        { "conflict_resolution.plugin", ConfigKeys.ConflictPlugin },
        { "conflict_resolution.notifications", ConfigKeys.Notifications },
        { "conflict_resolution.notifications.webhook", ConfigKeys.Webhook },
        { "state", ConfigKeys.State },
        { "state.storage", ConfigKeys.Storage },
        { "state.checkpointing", ConfigKeys.Checkpointing },
        { "state.recovery", ConfigKeys.Recovery },
        { "state.backup", ConfigKeys.Backup },
    };

    [Fact]
    public void Schema_is_draft_2020_12_json_listing_the_top_level_keys()
    {
        using var schema = JsonDocument.Parse(File.ReadAllText(SchemaPath));
        var root = schema.RootElement;

        Assert.Equal("https://json-schema.org/draft/2020-12/schema", root.GetProperty("$schema").GetString());
        Assert.Equal(
            ["sync", "cdc", "conflict_resolution", "state"],
            root.GetProperty("properties").EnumerateObject().Select(p => p.Name));
        Assert.False(root.GetProperty("additionalProperties").GetBoolean());
        Assert.Equal(["sync"], root.GetProperty("required").EnumerateArray().Select(e => e.GetString()));
    }

    [Theory]
    [MemberData(nameof(Blocks))]
    public void Schema_accepts_exactly_the_keys_the_loader_accepts(string location, string[] loaderKeys)
    {
        using var schema = JsonDocument.Parse(File.ReadAllText(SchemaPath));
        var block = Navigate(schema.RootElement, location);

        Assert.Equal(loaderKeys.Order(), block.GetProperty("properties").EnumerateObject().Select(p => p.Name).Order());
        Assert.False(block.GetProperty("additionalProperties").GetBoolean());
    }

    [Fact]
    public void Example_config_loads_without_errors()
    {
        var config = ConfigLoader.Load(ExamplePath, ConfigText.Environment());

        Assert.Equal(["customers", "orders", "products"], config.Sync.Source.Tables.Select(t => t.Name));
        Assert.Equal("sqlite:source.db", config.Sync.Source.Connection);
        Assert.Equal("sqlite:destination.db", config.Sync.Destination.Connection);
        Assert.Equal(CdcMethod.Timestamp, config.Sync.CdcMethod);
        Assert.StartsWith("# yaml-language-server: $schema=../schema/deltasync.schema.json", File.ReadAllText(ExamplePath), StringComparison.Ordinal);
    }

    /// <summary>Follows "sync.source" through <c>properties</c>, and "$defs.x" / "x.items" / "x.anyOf[1]" literally.</summary>
    private static JsonElement Navigate(JsonElement root, string location)
    {
        var element = root;
        var literal = false;
        foreach (var part in location.Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == "$defs")
            {
                element = element.GetProperty(part);
                literal = true;
                continue;
            }

            if (part.EndsWith(']'))
            {
                var open = part.IndexOf('[', StringComparison.Ordinal);
                var index = int.Parse(part[(open + 1)..^1], System.Globalization.CultureInfo.InvariantCulture);
                element = element.GetProperty(part[..open])[index];
            }
            else
            {
                element = part == "items" || literal ? element.GetProperty(part) : element.GetProperty("properties").GetProperty(part);
            }

            literal = false;
        }

        return element;
    }
}
