namespace DeltaSync.Core.Conflicts;

/// <summary>The spec's three conflict types.</summary>
public enum ConflictType
{
    /// <summary>Two sources changed the same field and neither change had seen the other.</summary>
    Update,

    /// <summary>One source deleted a record another source changed (or changed a record another deleted).</summary>
    Delete,

    /// <summary>Two sources inserted the same key with different values.</summary>
    Insert,
}

/// <summary>How conflicting writes to one field (or a record's existence) are decided.</summary>
public enum ConflictStrategy
{
    /// <summary>The write with the latest source commit time (clock offset applied); ties by source priority, then source name.</summary>
    LastWriteWins,

    /// <summary>The write of the source ranked first in <c>source_priority</c>; equal ranks fall back to commit time.</summary>
    SourceWins,

    /// <summary>The destination keeps its value and the conflict waits for a person.</summary>
    ManualReview,

    /// <summary>A <see cref="CustomRule"/>.</summary>
    Custom,
}

/// <summary>The rules of <c>strategy: custom</c>.</summary>
public enum CustomRule
{
    /// <summary>The larger value (numbers by value, text ordinally, times chronologically; null loses).</summary>
    Max,

    /// <summary>The smaller value (null loses).</summary>
    Min,

    /// <summary>The non-null value; when both are set, last-write-wins decides.</summary>
    PreferNonNull,

    /// <summary>The union of both values' items, without duplicates, in ordinal order (lists, or text separated by commas).</summary>
    ConcatUnique,

    /// <summary>Counters: every source's change is added (destination + (new − that source's previous value)).</summary>
    SumDeltas,

    /// <summary>The configured <see cref="IConflictResolver"/> plug-in.</summary>
    Plugin,
}

/// <summary>The names these enumerations have in configuration and reports.</summary>
public static class ConflictNames
{
    /// <summary><c>update_conflict</c>, <c>delete_conflict</c> or <c>insert_conflict</c>, as in the spec's reports.</summary>
    public static string Of(ConflictType type) => type switch
    {
        ConflictType.Update => "update_conflict",
        ConflictType.Delete => "delete_conflict",
        _ => "insert_conflict",
    };

    /// <summary>The configuration spelling: <c>last_write_wins</c>, <c>source_wins</c>, <c>manual_review</c>, <c>custom</c>.</summary>
    public static string Of(ConflictStrategy strategy) => strategy switch
    {
        ConflictStrategy.LastWriteWins => "last_write_wins",
        ConflictStrategy.SourceWins => "source_wins",
        ConflictStrategy.ManualReview => "manual_review",
        _ => "custom",
    };

    /// <summary>The configuration spelling of a custom rule: <c>max</c>, <c>sum_deltas</c>…</summary>
    public static string Of(CustomRule rule) => rule switch
    {
        CustomRule.Max => "max",
        CustomRule.Min => "min",
        CustomRule.PreferNonNull => "prefer_non_null",
        CustomRule.ConcatUnique => "concat_unique",
        CustomRule.SumDeltas => "sum_deltas",
        _ => "plugin",
    };

    internal static ConflictStrategy ParseStrategy(string name) => name switch
    {
        "last_write_wins" => ConflictStrategy.LastWriteWins,
        "source_wins" => ConflictStrategy.SourceWins,
        "manual_review" => ConflictStrategy.ManualReview,
        "custom" => ConflictStrategy.Custom,
        _ => throw new ArgumentException($"unknown conflict strategy '{name}'", nameof(name)),
    };

    internal static CustomRule ParseRule(string name) => name switch
    {
        "max" => CustomRule.Max,
        "min" => CustomRule.Min,
        "prefer_non_null" => CustomRule.PreferNonNull,
        "concat_unique" => CustomRule.ConcatUnique,
        "sum_deltas" => CustomRule.SumDeltas,
        "plugin" => CustomRule.Plugin,
        _ => throw new ArgumentException($"unknown custom rule '{name}'", nameof(name)),
    };
}
