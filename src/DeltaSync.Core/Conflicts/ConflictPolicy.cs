using DeltaSync.Core.Config;
using NodaTime;

namespace DeltaSync.Core.Conflicts;

/// <summary>
/// The <c>conflict_resolution</c> block, ready to decide: the strategy of each field, source ranks, the tolerance
/// window and its fallback, the review threshold and the plug-in.
/// </summary>
public sealed class ConflictPolicy
{
    private readonly Dictionary<string, FieldPolicy> _fields;

    private ConflictPolicy(FieldPolicy defaultPolicy, Dictionary<string, FieldPolicy> fields, Duration? timeWindow, ConflictStrategy fallback, double? reviewThreshold, IConflictResolver? plugin)
    {
        Default = defaultPolicy;
        _fields = fields;
        TimeWindow = timeWindow is { } w && w > Duration.Zero ? w : null;
        Fallback = fallback;
        ReviewThreshold = reviewThreshold;
        Plugin = plugin;
    }

    /// <summary>The policy of fields without their own entry, and of a record's existence (delete conflicts).</summary>
    public FieldPolicy Default { get; }

    /// <summary>Writes closer than this are concurrent: clocks cannot order them (null: clocks are trusted).</summary>
    public Duration? TimeWindow { get; }

    /// <summary>What decides writes inside <see cref="TimeWindow"/>: <see cref="ConflictStrategy.SourceWins"/> or <see cref="ConflictStrategy.ManualReview"/>.</summary>
    public ConflictStrategy Fallback { get; }

    /// <summary>Automatic resolutions with a lower confidence go to manual review (null: none do).</summary>
    public double? ReviewThreshold { get; }

    /// <summary>The plug-in for <see cref="CustomRule.Plugin"/>, when configured.</summary>
    public IConflictResolver? Plugin { get; }

    /// <summary>A policy from the configuration; <paramref name="plugin"/> is the loaded <c>conflict_resolution.plugin</c> (<see cref="ConflictPluginLoader"/>).</summary>
    /// <exception cref="ArgumentException">A custom rule <c>plugin</c> is configured but <paramref name="plugin"/> is null.</exception>
    public static ConflictPolicy From(ConflictResolutionOptions options, IConflictResolver? plugin = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var defaultStrategy = ConflictNames.ParseStrategy(options.DefaultStrategy);
        var defaultPolicy = new FieldPolicy(defaultStrategy, defaultStrategy == ConflictStrategy.Custom ? CustomRule.Plugin : null, options.SourcePriority);
        var fields = new Dictionary<string, FieldPolicy>(StringComparer.Ordinal);
        foreach (var entry in options.Strategies)
        {
            var strategy = ConflictNames.ParseStrategy(entry.Strategy);
            var rule = strategy == ConflictStrategy.Custom ? ConflictNames.ParseRule(entry.Rule ?? "plugin") : (CustomRule?)null;
            fields[entry.Field] = new FieldPolicy(strategy, rule, entry.SourcePriority.Count > 0 ? entry.SourcePriority : options.SourcePriority);
        }

        var needsPlugin = defaultPolicy.Rule == CustomRule.Plugin || fields.Values.Any(f => f.Rule == CustomRule.Plugin);
        if (needsPlugin && plugin is null)
        {
            throw new ArgumentException("the configuration uses the custom rule 'plugin' but no IConflictResolver was given (load it with ConflictPluginLoader)", nameof(plugin));
        }

        return new ConflictPolicy(
            defaultPolicy,
            fields,
            options.ToleranceTimeWindow,
            ConflictNames.ParseStrategy(options.ToleranceFallback),
            options.ManualReviewThreshold,
            plugin);
    }

    /// <summary>
    /// Whether no conflict between <paramref name="sources"/> can end with the destination's row unchanged while a
    /// field's writer or a hold changed — what the fast merge relies on (<see cref="SourceMergeState"/>): every field is
    /// decided by <c>last_write_wins</c> or <c>source_wins</c> (the winner's value and stamp, together), nothing goes to
    /// manual review (no threshold; a tolerance window only with the <c>source_wins</c> fallback and every source listed
    /// in every field's priority, at its own place), and there is no plug-in. Custom rules (a union, a sum, a plug-in's value) may keep a value
    /// under another writer, so they take the full merge.
    /// </summary>
    public bool AllowsFastMerge(IReadOnlyList<string> sources)
    {
        ArgumentNullException.ThrowIfNull(sources);
        if (Plugin is not null || ReviewThreshold is > 0)
        {
            return false;
        }

        foreach (var policy in _fields.Values.Append(Default))
        {
            if (policy.Strategy is not (ConflictStrategy.LastWriteWins or ConflictStrategy.SourceWins))
            {
                return false;
            }

            // Inside the window source priority decides, and it must rank every writer apart: each source is listed (the
            // destination's own edits never are) at its own place.
            if (TimeWindow is not null && (Fallback != ConflictStrategy.SourceWins || sources.Any(s => policy.Rank(s) == int.MaxValue) || sources.Select(policy.Rank).Distinct().Count() != sources.Count))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The policy of <paramref name="field"/>.</summary>
    public FieldPolicy For(string field) => _fields.TryGetValue(field, out var policy) ? policy : Default;
}

/// <summary>How one field's conflicts are decided.</summary>
/// <param name="Strategy">The strategy.</param>
/// <param name="Rule">For <see cref="ConflictStrategy.Custom"/>, the rule.</param>
/// <param name="SourcePriority">Sources, first = highest precedence (the field's list, else the block's).</param>
public sealed record FieldPolicy(ConflictStrategy Strategy, CustomRule? Rule, IReadOnlyList<string> SourcePriority)
{
    /// <summary>0 for the first source of <see cref="SourcePriority"/>; <see cref="int.MaxValue"/> for sources not listed.</summary>
    public int Rank(string source)
    {
        for (var i = 0; i < SourcePriority.Count; i++)
        {
            if (string.Equals(SourcePriority[i], source, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return int.MaxValue;
    }

    /// <summary>The name reports give: <c>last_write_wins</c>, <c>custom:max</c>…</summary>
    public string Name => Strategy == ConflictStrategy.Custom && Rule is { } rule ? $"custom:{ConflictNames.Of(rule)}" : ConflictNames.Of(Strategy);
}
