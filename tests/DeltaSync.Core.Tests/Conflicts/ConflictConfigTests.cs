using DeltaSync.Core.Config;
using DeltaSync.Core.Conflicts;
using DeltaSync.Core.Tests.Config;
using static DeltaSync.Core.Tests.Conflicts.ConflictFixtures;

namespace DeltaSync.Core.Tests.Conflicts;

/// <summary>The plug-in the tests load from their own assembly: the longer text wins.</summary>
public sealed class PreferLongestResolver : IConflictResolver
{
    public PluginDecision Resolve(FieldConflictContext context)
    {
        var longest = context.Candidates.OrderByDescending(c => (c.Value as string)?.Length ?? -1).ThenBy(c => c.Source, StringComparer.Ordinal).First();
        return new PluginDecision(longest.Value, longest.Source, 0.9);
    }
}

/// <summary>A plug-in with a bug.</summary>
public sealed class ThrowingResolver : IConflictResolver
{
    public PluginDecision Resolve(FieldConflictContext context) => throw new InvalidOperationException("Sequence contains no elements");
}

public sealed class ConflictConfigTests
{
    private static readonly string TestAssembly = typeof(ConflictConfigTests).Assembly.Location;

    [Fact]
    public void Every_new_conflict_resolution_key_binds()
    {
        var config = ConfigText.Parse(ConfigText.Minimal + $$"""

            conflict_resolution:
              default_strategy: last_write_wins
              source_priority: [crm, shop]
              strategies:
                - {field: stock, strategy: custom, rule: sum_deltas}
                - {field: email, strategy: source_wins, source_priority: [shop]}
                - {field: notes, strategy: custom, rule: plugin}
              tolerance: {time_window: 1 hour, manual_review_threshold: 0.8, fallback: source_wins}
              plugin: {assembly: "{{TestAssembly}}", type: DeltaSync.Core.Tests.Conflicts.PreferLongestResolver}
              notifications:
                webhook:
                  url: "https://hooks.example.com/deltasync?token=${HOOK_TOKEN}"
                  headers: {Authorization: "Bearer ${HOOK_TOKEN}"}
                  max_attempts: 5
                threshold_per_run: 10
            """, ConfigText.Environment(("HOOK_TOKEN", "t0k")));

        var conflicts = config.ConflictResolution;
        Assert.Equal(["crm", "shop"], conflicts.SourcePriority);
        Assert.Equal("sum_deltas", conflicts.Strategies[0].Rule);
        Assert.Equal(["shop"], conflicts.Strategies[1].SourcePriority);
        Assert.Equal("source_wins", conflicts.ToleranceFallback);
        Assert.Equal(new ConflictPluginOptions(TestAssembly, "DeltaSync.Core.Tests.Conflicts.PreferLongestResolver"), conflicts.Plugin);
        var webhook = conflicts.Notifications!.Webhook!;
        Assert.Equal(("https://hooks.example.com/deltasync?token=t0k", 5, "Bearer t0k"), (webhook.Url.ToString(), webhook.MaxAttempts, webhook.Headers["Authorization"]));
        Assert.Equal(10, conflicts.Notifications.ThresholdPerRun);

        var policy = ConflictPolicy.From(conflicts, ConflictPluginLoader.Load(conflicts.Plugin!, config.ConfigPath));
        Assert.Equal((ConflictStrategy.Custom, CustomRule.SumDeltas, "custom:sum_deltas"), (policy.For("stock").Strategy, policy.For("stock").Rule, policy.For("stock").Name));
        Assert.Equal(["crm", "shop"], policy.For("stock").SourcePriority);
        Assert.Equal(0, policy.For("email").Rank("shop"));
    }

    [Theory]
    [InlineData("strategies: [{field: stock, strategy: custom}]", "conflict_resolution.strategies[0].rule", "is required with strategy custom: one of max, min, prefer_non_null, concat_unique, sum_deltas or plugin")]
    [InlineData("strategies: [{field: stock, strategy: custom, rule: average}]", "conflict_resolution.strategies[0].rule", "expected one of max, min, prefer_non_null, concat_unique, sum_deltas or plugin, got 'average'")]
    [InlineData("strategies: [{field: stock, strategy: source_wins, rule: max}]", "conflict_resolution.strategies[0].rule", "only applies to strategy custom (this entry's strategy is source_wins)")]
    [InlineData("strategies: [{field: notes, strategy: custom, rule: plugin}]", "conflict_resolution.strategies[0].rule", "plugin needs conflict_resolution.plugin: {assembly: path, type: Name}")]
    [InlineData("default_strategy: custom", "conflict_resolution.default_strategy", "custom as the default strategy needs conflict_resolution.plugin: {assembly: path, type: Name}, the resolver every field without its own strategy goes to")]
    [InlineData("source_priority: [crm, shop, crm]", "conflict_resolution.source_priority", "names source 'crm' more than once; each source has one rank")]
    [InlineData("tolerance: {fallback: last_write_wins}", "conflict_resolution.tolerance.fallback", "expected one of source_wins or manual_review, got 'last_write_wins'")]
    [InlineData("plugin: {assembly: missing/resolver.dll, type: X}", "conflict_resolution.plugin.assembly", "the plug-in assembly does not exist")]
    [InlineData("plugin: {assembly: x.dll}", "conflict_resolution.plugin.type", "is required")]
    [InlineData("notifications: {webhook: {url: \"ftp://hooks?token=abc\"}}", "conflict_resolution.notifications.webhook.url", "expected an absolute http:// or https:// address")]
    [InlineData("notifications: {webhook: {url: \"https://h\", max_attempts: 0}}", "conflict_resolution.notifications.webhook.max_attempts", "expected a positive integer")]
    [InlineData("notifications: {webhook: {url: \"https://h\", headers: [a]}}", "conflict_resolution.notifications.webhook.headers", "expected a mapping of header names to values")]
    [InlineData("notifications: {threshold_per_run: -1}", "conflict_resolution.notifications.threshold_per_run", "expected")]
    [InlineData("notifications: {webhok: {}}", "conflict_resolution.notifications.webhok", "unknown key 'webhok'; did you mean 'webhook'?")]
    public void Invalid_conflict_settings_are_reported_at_their_key(string block, string keyPath, string message)
    {
        var errors = ConfigText.Errors(ConfigText.Minimal + "\nconflict_resolution:\n  " + block);

        var error = Assert.Single(errors, e => e.KeyPath == keyPath);
        Assert.StartsWith(message, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("abc", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_plugin_type_missing_from_its_assembly_is_a_config_error_naming_the_resolvers_it_has()
    {
        var error = Assert.Throws<ConfigException>(() => ConflictPluginLoader.Load(new ConflictPluginOptions(TestAssembly, "Nope.Resolver"), "shop.yaml"));

        var single = Assert.Single(error.Errors);
        Assert.Equal("conflict_resolution.plugin.type", single.KeyPath);
        Assert.Contains("DeltaSync.Core.Tests.Conflicts.PreferLongestResolver", single.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_plugin_type_that_is_not_a_resolver_is_a_config_error()
    {
        var error = Assert.Throws<ConfigException>(() => ConflictPluginLoader.Load(new ConflictPluginOptions(TestAssembly, typeof(ConflictConfigTests).FullName!), "shop.yaml"));

        Assert.Contains("does not implement DeltaSync.Core.Conflicts.IConflictResolver", Assert.Single(error.Errors).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_plugin_loaded_into_its_own_context_resolves_custom_fields()
    {
        var plugin = ConflictPluginLoader.Load(new ConflictPluginOptions(TestAssembly, typeof(PreferLongestResolver).FullName!), "shop.yaml");
        Assert.NotSame(typeof(PreferLongestResolver), plugin.GetType());

        var options = Options("last_write_wins") with { Strategies = [Field("email", "plugin")], ManualReviewThreshold = 0.8 };
        var outcome = Engine(options, plugin).Merge(Synced(), [Upsert("crm", 10, 1, ("email", "a-much-longer@example.com")), Upsert("shop", 20, 1, ("email", "b@x"))], Now);

        var resolution = Assert.Single(outcome.Conflicts).Resolution;
        Assert.Equal("a-much-longer@example.com", outcome.Record.Values["email"]);
        Assert.Equal(("custom:plugin", 0.9, "crm"), (resolution.Strategy, resolution.Confidence, resolution.Fields[0].Winner));
    }

    [Fact]
    public void A_plugin_that_throws_fails_with_a_message_naming_the_plugin_the_record_and_the_field()
    {
        var options = Options("last_write_wins") with { Strategies = [Field("email", "plugin")] };

        var error = Assert.Throws<DeltaSync.Core.Pipeline.SyncException>(
            () => Engine(options, new ThrowingResolver()).Merge(Synced(), [Upsert("crm", 10, 1, ("email", "crm@x")), Upsert("shop", 20, 1, ("email", "shop@x"))], Now));

        Assert.Contains(typeof(ThrowingResolver).FullName!, error.Message, StringComparison.Ordinal);
        Assert.Contains(Key, error.Message, StringComparison.Ordinal);
        Assert.Contains("'email'", error.Message, StringComparison.Ordinal);
        Assert.Contains("Sequence contains no elements", error.Message, StringComparison.Ordinal);
        Assert.IsType<InvalidOperationException>(error.InnerException);
    }
}
