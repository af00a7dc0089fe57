using System.Globalization;
using YamlDotNet.RepresentationModel;

namespace DeltaSync.Core.Config;

/// <summary>
/// Binds the <c>conflict_resolution</c> block: the default strategy, source priority, per-field overrides (with custom
/// rules), tolerances, the resolver plug-in and notifications.
/// </summary>
internal static class ConflictResolutionBlockBinder
{
    private const int MaxWebhookAttempts = 20;

    public static ConflictResolutionOptions Bind(YamlSection conflicts, string baseDirectory)
    {
        var defaultStrategy = conflicts.Choice("default_strategy", "last_write_wins", ConfigChoices.ConflictStrategies);
        var sourcePriority = Priority(conflicts, "source_priority");
        var plugin = BindPlugin(conflicts.Section("plugin", ConfigKeys.ConflictPlugin), baseDirectory);
        var strategies = BindStrategies(conflicts, plugin is not null);
        var tolerance = conflicts.Section("tolerance", ConfigKeys.Tolerance);
        var fallback = tolerance.Choice("fallback", "manual_review", ConfigChoices.ToleranceFallbacks);

        if (defaultStrategy == "custom" && plugin is null && conflicts.IsPresent)
        {
            conflicts.Report("default_strategy", "custom as the default strategy needs conflict_resolution.plugin: {assembly: path, type: Name}, the resolver every field without its own strategy goes to");
        }

        return new ConflictResolutionOptions(
            defaultStrategy,
            strategies,
            tolerance.OptionalDuration("time_window", allowZero: true),
            tolerance.Fraction("manual_review_threshold"))
        {
            SourcePriority = sourcePriority,
            ToleranceFallback = fallback,
            Plugin = plugin,
            Notifications = BindNotifications(conflicts.Section("notifications", ConfigKeys.Notifications)),
        };
    }

    private static List<FieldStrategyOptions> BindStrategies(YamlSection conflicts, bool hasPlugin)
    {
        var strategies = new List<FieldStrategyOptions>();
        var firstPathByField = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (node, path) in conflicts.Items("strategies", "a list of {field, strategy} mappings"))
        {
            if (ConfigReader.IsNull(node))
            {
                conflicts.Reader.Report(path, "is empty: expected a mapping such as {field: email, strategy: source_wins}", node);
                continue;
            }

            var entry = conflicts.Reader.Section(node, path, ConfigKeys.FieldStrategy);
            if (!entry.IsPresent)
            {
                continue;
            }

            var field = entry.RequiredText("field", "the field this strategy applies to");
            var strategy = entry.RequiredName("strategy", ConfigChoices.ConflictStrategies);
            var sourcePriority = Priority(entry, "source_priority");
            var rule = entry.OptionalName("rule", ConfigChoices.ConflictRules);
            if (field is null || strategy is null)
            {
                continue;
            }

            if (strategy == "custom" && rule is null && entry["rule"] is null)
            {
                entry.Report("rule", $"is required with strategy custom: one of {ConfigChoices.ConflictRules.Names}");
                continue;
            }

            if (strategy != "custom" && rule is not null)
            {
                entry.Report("rule", $"only applies to strategy custom (this entry's strategy is {strategy})");
                continue;
            }

            if (rule == "plugin" && !hasPlugin)
            {
                entry.Report("rule", "plugin needs conflict_resolution.plugin: {assembly: path, type: Name}");
                continue;
            }

            if (!firstPathByField.TryAdd(field, path))
            {
                conflicts.Reader.Report(path, $"duplicate strategy for field '{field}'; it is already set at {firstPathByField[field]}", node);
                continue;
            }

            strategies.Add(new FieldStrategyOptions(field, strategy, sourcePriority) { Rule = rule });
        }

        return strategies;
    }

    /// <summary>A source priority list; a source named twice is reported (its rank would be ambiguous).</summary>
    private static IReadOnlyList<string> Priority(YamlSection section, string key)
    {
        var names = section.Names(key) ?? [];
        var duplicate = names.GroupBy(n => n, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            section.Report(key, $"names source '{duplicate.Key}' more than once; each source has one rank");
        }

        return names;
    }

    private static ConflictPluginOptions? BindPlugin(YamlSection plugin, string baseDirectory)
    {
        if (!plugin.IsPresent)
        {
            return null;
        }

        var assembly = plugin.RequiredText("assembly", "the path of the .dll holding the IConflictResolver (relative to the config's folder)");
        var type = plugin.RequiredText("type", "the full name of a type implementing DeltaSync.Core.Conflicts.IConflictResolver");
        if (assembly is null || type is null)
        {
            return null;
        }

        var path = Path.GetFullPath(Path.Combine(baseDirectory, assembly));
        if (!File.Exists(path))
        {
            plugin.Report("assembly", $"the plug-in assembly does not exist (looked for {path})");
            return null;
        }

        return new ConflictPluginOptions(path, type);
    }

    private static ConflictNotificationOptions? BindNotifications(YamlSection notifications)
    {
        if (!notifications.IsPresent)
        {
            return null;
        }

        int? threshold = notifications["threshold_per_run"] is null ? null : notifications.Integer("threshold_per_run", 0, min: 0);
        return new ConflictNotificationOptions(BindWebhook(notifications.Section("webhook", ConfigKeys.Webhook)), threshold);
    }

    private static WebhookOptions? BindWebhook(YamlSection webhook)
    {
        if (!webhook.IsPresent)
        {
            return null;
        }

        var urlText = webhook.RequiredText("url", "the http(s) address conflicts needing attention are posted to");
        var maxAttempts = webhook.Integer("max_attempts", WebhookOptions.DefaultMaxAttempts, min: 1, max: MaxWebhookAttempts);
        var headers = BindHeaders(webhook);
        if (urlText is null)
        {
            return null;
        }

        if (!Uri.TryCreate(urlText, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
        {
            // The address may carry a token in its query: never echo it.
            webhook.Report("url", "expected an absolute http:// or https:// address");
            return null;
        }

        return new WebhookOptions(url, headers, maxAttempts);
    }

    private static Dictionary<string, string> BindHeaders(YamlSection webhook)
    {
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var node = webhook["headers"];
        if (ConfigReader.IsNull(node))
        {
            return headers;
        }

        var path = webhook.PathOf("headers");
        if (node is not YamlMappingNode mapping)
        {
            webhook.Report("headers", $"expected a mapping of header names to values, got {ConfigReader.Describe(node!)}");
            return headers;
        }

        foreach (var (keyNode, valueNode) in mapping.Children)
        {
            var name = (keyNode as YamlScalarNode)?.Value;
            if (string.IsNullOrWhiteSpace(name) || name.Any(c => c <= ' ' || c == ':' || c > '~'))
            {
                webhook.Reader.Report(path, $"expected header names (letters, digits, '-'), got {ConfigReader.Describe(keyNode)}", keyNode);
                continue;
            }

            // Header values are often secrets (tokens): errors name the header, never its value.
            var value = webhook.Reader.Text(valueNode, string.Create(CultureInfo.InvariantCulture, $"{path}.{name}"));
            if (value is null)
            {
                webhook.Reader.Report($"{path}.{name}", "is empty: expected the header's value (e.g. \"Bearer ${WEBHOOK_TOKEN}\")", valueNode);
                continue;
            }

            headers[name] = value;
        }

        return headers;
    }
}
