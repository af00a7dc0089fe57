namespace DeltaSync.Core.Conflicts;

/// <summary>
/// A conflict rule of your own (<c>strategy: custom, rule: plugin</c>, or <c>default_strategy: custom</c>), loaded from
/// the assembly named by <c>conflict_resolution.plugin</c>. It needs a public parameterless constructor. It must be
/// deterministic: the same context gives the same decision, whatever the order the candidates arrived in (they are
/// given sorted by source name), or the destination will depend on arrival order.
/// </summary>
public interface IConflictResolver
{
    /// <summary>Decides one conflicting field.</summary>
    PluginDecision Resolve(FieldConflictContext context);
}

/// <summary>What a plug-in is asked to decide.</summary>
/// <param name="RecordId">The record.</param>
/// <param name="Field">The field.</param>
/// <param name="Candidates">Each side's write of the field, sorted by source name.</param>
public sealed record FieldConflictContext(string RecordId, string Field, IReadOnlyList<FieldCandidate> Candidates);

/// <summary>One side's write of a field.</summary>
/// <param name="Stamp">Source, commit time (clock offset applied) and sequence.</param>
/// <param name="Value">The value it wrote.</param>
/// <param name="PreviousValue">The value this source had reported before (or the merged value when it had none).</param>
/// <param name="PriorityRank">0 for the first source in <c>source_priority</c>; <see cref="int.MaxValue"/> when unlisted.</param>
public sealed record FieldCandidate(WriteStamp Stamp, object? Value, object? PreviousValue, int PriorityRank)
{
    public string Source => Stamp.Source;
}

/// <summary>A plug-in's answer.</summary>
/// <param name="Value">The value to keep.</param>
/// <param name="Winner">The source whose write it is, or null when the value combines several.</param>
/// <param name="Confidence">0…1; below <c>manual_review_threshold</c> the field goes to review.</param>
/// <param name="ManualReview">True to send the field to review whatever the confidence.</param>
public sealed record PluginDecision(object? Value, string? Winner, double Confidence = 1.0, bool ManualReview = false);
