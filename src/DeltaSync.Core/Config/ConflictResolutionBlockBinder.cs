using YamlDotNet.RepresentationModel;

namespace DeltaSync.Core.Config;

/// <summary>Binds the <c>conflict_resolution</c> block: the default strategy, per-field overrides and tolerances.</summary>
internal static class ConflictResolutionBlockBinder
{
    public static ConflictResolutionOptions Bind(YamlSection conflicts)
    {
        var defaultStrategy = conflicts.Choice("default_strategy", "last_write_wins", ConfigChoices.ConflictStrategies);
        var strategies = BindStrategies(conflicts);
        var tolerance = conflicts.Section("tolerance", ConfigKeys.Tolerance);
        return new ConflictResolutionOptions(
            defaultStrategy,
            strategies,
            tolerance.OptionalDuration("time_window", allowZero: true),
            tolerance.Fraction("manual_review_threshold"));
    }

    private static List<FieldStrategyOptions> BindStrategies(YamlSection conflicts)
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
            var sourcePriority = entry.Names("source_priority") ?? [];
            if (field is null || strategy is null)
            {
                continue;
            }

            if (!firstPathByField.TryAdd(field, path))
            {
                conflicts.Reader.Report(path, $"duplicate strategy for field '{field}'; it is already set at {firstPathByField[field]}", node);
                continue;
            }

            strategies.Add(new FieldStrategyOptions(field, strategy, sourcePriority));
        }

        return strategies;
    }
}
