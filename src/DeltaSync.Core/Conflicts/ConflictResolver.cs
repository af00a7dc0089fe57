using System.Globalization;
using NodaTime;

namespace DeltaSync.Core.Conflicts;

/// <summary>
/// Decides conflicting writes by the policy: one field at a time (<see cref="DecideField"/>) or a record's existence
/// (<see cref="DecideExistence"/>). Pure: the decision depends on the two writes, never on which one arrived first.
/// </summary>
/// <remarks>
/// Confidence (docs/architecture.md, "Conflicts"): 1.0 for source priority, custom rules and a plug-in's own answer
/// (clamped); last-write-wins without a window 1.0 when the times differ, 1.0 for a tie priority breaks, 0.5 for a tie
/// only the source name breaks; with a window W, writes <c>gap</c> apart get <c>min(1, gap / 2W)</c> when gap ≥ W (0.5 at
/// the window's edge, 1.0 from 2W) and 0 inside it, where the fallback decides instead; manual review is 0.
/// Anything below <c>manual_review_threshold</c> is held for review with the automatic choice as its proposal.
/// </remarks>
public sealed class ConflictResolver(ConflictPolicy policy)
{
    /// <summary>The policy decisions follow.</summary>
    public ConflictPolicy Policy { get; } = policy ?? throw new ArgumentNullException(nameof(policy));

    /// <summary>Decides a field written by <paramref name="incumbent"/> (the value the destination holds) and <paramref name="incoming"/>.</summary>
    public FieldDecision DecideField(string recordId, string field, FieldCandidate incumbent, FieldCandidate incoming)
    {
        ArgumentNullException.ThrowIfNull(incumbent);
        ArgumentNullException.ThrowIfNull(incoming);
        var fieldPolicy = Policy.For(field);
        var decision = fieldPolicy.Strategy switch
        {
            ConflictStrategy.ManualReview => Held(fieldPolicy.Name, incumbent, "manual_review is configured for this field"),
            ConflictStrategy.SourceWins => ByPriority(fieldPolicy, incumbent, incoming),
            ConflictStrategy.Custom => ByRule(recordId, field, fieldPolicy, incumbent, incoming),
            _ => ByTime(fieldPolicy, incumbent, incoming),
        };
        return BelowThreshold(decision, incumbent);
    }

    /// <summary>
    /// Decides whether a record exists when <paramref name="deleter"/> deleted it and <paramref name="updater"/> wrote it
    /// (the record's default strategy; custom rules decide values, so last-write-wins decides existence for them).
    /// </summary>
    public FieldDecision DecideExistence(FieldCandidate incumbent, FieldCandidate incoming)
    {
        ArgumentNullException.ThrowIfNull(incumbent);
        ArgumentNullException.ThrowIfNull(incoming);
        var recordPolicy = Policy.Default;
        var decision = recordPolicy.Strategy switch
        {
            ConflictStrategy.ManualReview => Held(recordPolicy.Name, incumbent, "manual_review is the default strategy"),
            ConflictStrategy.SourceWins => ByPriority(recordPolicy, incumbent, incoming),
            _ => ByTime(recordPolicy with { Strategy = ConflictStrategy.LastWriteWins, Rule = null }, incumbent, incoming),
        };
        return BelowThreshold(decision, incumbent);
    }

    /// <summary>
    /// The stamp that ranks higher in <paramref name="fieldPolicy"/>'s total order, without window or review: priority,
    /// time, name for source priority; time, priority, name otherwise (one source's stamps by their own order). Equal
    /// writes keep the higher stamp, so the field settles on the same stamp whatever the arrival order.
    /// </summary>
    public WriteStamp Dominant(FieldPolicy fieldPolicy, WriteStamp a, WriteStamp b)
    {
        ArgumentNullException.ThrowIfNull(fieldPolicy);
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Source == b.Source)
        {
            return b.IsAfterInSameSource(a) ? b : a;
        }

        int rankA = fieldPolicy.Rank(a.Source), rankB = fieldPolicy.Rank(b.Source);
        if (fieldPolicy.Strategy == ConflictStrategy.SourceWins && rankA != rankB)
        {
            return rankA < rankB ? a : b;
        }

        if (a.Time != b.Time)
        {
            return a.Time > b.Time ? a : b;
        }

        if (rankA != rankB)
        {
            return rankA < rankB ? a : b;
        }

        return string.CompareOrdinal(a.Source, b.Source) < 0 ? a : b;
    }

    private FieldDecision ByTime(FieldPolicy fieldPolicy, FieldCandidate incumbent, FieldCandidate incoming)
    {
        var name = ConflictNames.Of(ConflictStrategy.LastWriteWins);
        var gap = Abs(incoming.Stamp.Time - incumbent.Stamp.Time);
        if (Policy.TimeWindow is { } window && gap < window)
        {
            var inside = $"writes {Describe(gap)} apart, inside the {Describe(window)} tolerance window: clocks cannot order them";
            if (Policy.Fallback == ConflictStrategy.SourceWins && fieldPolicy.Rank(incumbent.Source) != fieldPolicy.Rank(incoming.Source))
            {
                var byRank = Better(fieldPolicy.Rank(incoming.Source), fieldPolicy.Rank(incumbent.Source)) ? incoming : incumbent;
                return Won("source_wins", byRank, 1.0, inside + "; source priority decided");
            }

            return Held(ConflictNames.Of(ConflictStrategy.ManualReview), incumbent, inside + (Policy.Fallback == ConflictStrategy.SourceWins ? "; source priority does not rank them" : string.Empty));
        }

        if (gap > Duration.Zero)
        {
            var later = incoming.Stamp.Time > incumbent.Stamp.Time ? incoming : incumbent;
            var confidence = Policy.TimeWindow is { } w ? Math.Min(1.0, gap / (2 * w)) : 1.0;
            return Won(name, later, confidence, $"{later.Source} wrote {Describe(gap)} later");
        }

        var incumbentRank = fieldPolicy.Rank(incumbent.Source);
        var incomingRank = fieldPolicy.Rank(incoming.Source);
        if (incumbentRank != incomingRank)
        {
            var byRank = Better(incomingRank, incumbentRank) ? incoming : incumbent;
            return Won(name, byRank, 1.0, "equal commit times: source priority decided");
        }

        var byName = string.CompareOrdinal(incoming.Source, incumbent.Source) < 0 ? incoming : incumbent;
        return Won(name, byName, 0.5, "equal commit times and equal priority: the source name decided");
    }

    private FieldDecision ByPriority(FieldPolicy fieldPolicy, FieldCandidate incumbent, FieldCandidate incoming)
    {
        var incumbentRank = fieldPolicy.Rank(incumbent.Source);
        var incomingRank = fieldPolicy.Rank(incoming.Source);
        if (incumbentRank != incomingRank)
        {
            var winner = Better(incomingRank, incumbentRank) ? incoming : incumbent;
            return Won(fieldPolicy.Name, winner, 1.0, $"{winner.Source} ranks first in source_priority");
        }

        var byTime = ByTime(fieldPolicy, incumbent, incoming);
        return byTime with { Confidence = Math.Min(byTime.Confidence, 0.5), Reason = "source_priority does not rank them; " + byTime.Reason };
    }

    private FieldDecision ByRule(string recordId, string field, FieldPolicy fieldPolicy, FieldCandidate incumbent, FieldCandidate incoming)
    {
        var name = fieldPolicy.Name;
        var later = ByTime(fieldPolicy with { Strategy = ConflictStrategy.LastWriteWins }, incumbent, incoming);
        switch (fieldPolicy.Rule)
        {
            case CustomRule.Max or CustomRule.Min:
                var order = FieldValues.Compare(incoming.Value, incumbent.Value);
                if (order == 0 || incoming.Value is null || incumbent.Value is null)
                {
                    var nonNull = incoming.Value is null ? incumbent : incumbent.Value is null ? incoming : null;
                    return nonNull is not null ? Won(name, nonNull, 1.0, "the other value is null") : later with { Reason = "values rank equal; " + later.Reason };
                }

                var pick = (order > 0) == (fieldPolicy.Rule == CustomRule.Max) ? incoming : incumbent;
                return Won(name, pick, 1.0, fieldPolicy.Rule == CustomRule.Max ? "the larger value" : "the smaller value");
            case CustomRule.PreferNonNull:
                if ((incoming.Value is null) != (incumbent.Value is null))
                {
                    return Won(name, incoming.Value is null ? incumbent : incoming, 1.0, "the non-null value");
                }

                return later with { Strategy = name, Reason = "both values are set; " + later.Reason };
            case CustomRule.ConcatUnique:
                return new FieldDecision(FieldValues.ConcatUnique(incumbent.Value, incoming.Value), later.Stamp, name, 1.0, false, "the union of both values", null);
            case CustomRule.SumDeltas:
                var sum = FieldValues.AddDelta(incumbent.Value, incoming.Value, incoming.PreviousValue);
                return new FieldDecision(sum, later.Stamp, name, 1.0, false, string.Create(CultureInfo.InvariantCulture, $"{incoming.Source}'s change ({incoming.PreviousValue ?? 0} → {incoming.Value ?? 0}) added to {incumbent.Value ?? 0}"), null);
            default:
                return ByPlugin(recordId, field, fieldPolicy, incumbent, incoming, later);
        }
    }

    private FieldDecision ByPlugin(string recordId, string field, FieldPolicy fieldPolicy, FieldCandidate incumbent, FieldCandidate incoming, FieldDecision later)
    {
        var plugin = Policy.Plugin ?? throw new InvalidOperationException("the custom rule 'plugin' needs an IConflictResolver");
        FieldCandidate[] candidates = string.CompareOrdinal(incumbent.Source, incoming.Source) <= 0 ? [incumbent, incoming] : [incoming, incumbent];
        PluginDecision answer;
        try
        {
            answer = plugin.Resolve(new FieldConflictContext(recordId, field, candidates));
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The plug-in's own message ("Sequence contains no elements") says nothing about where it failed.
            throw new Pipeline.SyncException(
                Model.ErrorClass.Fatal,
                $"the conflict plug-in {plugin.GetType().FullName} failed deciding field '{field}' of record {recordId} ({incumbent.Source} vs {incoming.Source}): {e.GetType().Name}: {e.Message}; fix the plug-in, or decide the field by another strategy",
                e);
        }

        var confidence = double.IsNaN(answer.Confidence) ? 0 : Math.Clamp(answer.Confidence, 0, 1);
        var resolverName = plugin.GetType().Name;
        if (answer.ManualReview)
        {
            return Held(fieldPolicy.Name, incumbent, $"the plug-in {resolverName} asked for review");
        }

        var winner = candidates.FirstOrDefault(c => string.Equals(c.Source, answer.Winner, StringComparison.Ordinal));
        return new FieldDecision(answer.Value, winner?.Stamp ?? later.Stamp, fieldPolicy.Name, confidence, false, $"decided by the plug-in {resolverName}", winner?.Source);
    }

    private FieldDecision BelowThreshold(FieldDecision decision, FieldCandidate incumbent)
    {
        if (decision.Held || Policy.ReviewThreshold is not { } threshold || decision.Confidence >= threshold)
        {
            return decision;
        }

        var reason = string.Create(CultureInfo.InvariantCulture, $"confidence {decision.Confidence:0.###} is below manual_review_threshold {threshold:0.###} ({decision.Strategy}: {decision.Reason})");
        return Held(ConflictNames.Of(ConflictStrategy.ManualReview), incumbent, reason) with { Confidence = decision.Confidence, Proposed = decision };
    }

    private static FieldDecision Won(string strategy, FieldCandidate winner, double confidence, string reason) =>
        new(winner.Value, winner.Stamp, strategy, confidence, false, reason, winner.Source);

    private static FieldDecision Held(string strategy, FieldCandidate incumbent, string reason) =>
        new(incumbent.Value, incumbent.Stamp, strategy, 0, true, reason, null);

    private static bool Better(int rank, int otherRank) => rank < otherRank;

    private static Duration Abs(Duration d) => d < Duration.Zero ? -d : d;

    private static string Describe(Duration d) =>
        d.TotalHours >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{d.TotalHours:0.##} h")
        : d.TotalMinutes >= 1 ? string.Create(CultureInfo.InvariantCulture, $"{d.TotalMinutes:0.##} min")
        : string.Create(CultureInfo.InvariantCulture, $"{d.TotalSeconds:0.###} s");
}

/// <summary>
/// The outcome for one field: the value the destination holds now and the stamp it carries, how it was decided,
/// and whether it waits for review (then <see cref="Value"/> is the destination's unchanged value and <see cref="Proposed"/>
/// what the automatic strategy would have chosen, if one ran).
/// </summary>
public sealed record FieldDecision(object? Value, WriteStamp Stamp, string Strategy, double Confidence, bool Held, string Reason, string? Winner)
{
    public FieldDecision? Proposed { get; init; }
}
