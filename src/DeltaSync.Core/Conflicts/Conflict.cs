using NodaTime;

namespace DeltaSync.Core.Conflicts;

/// <summary>
/// A detected conflict: which record, which kind, the fields at stake and every source's side.
/// </summary>
/// <param name="ConflictId">Deterministic (a digest of key, type, fields and the writes involved): detecting the same conflict again gives the same id.</param>
/// <param name="RecordId">The record's key.</param>
/// <param name="Type">Update, delete or insert.</param>
/// <param name="Fields">The conflicting fields, ordinally sorted (for a delete conflict: the fields the other side changed).</param>
/// <param name="Sources">Each side, in the order of their stamps' sources (ordinal).</param>
/// <param name="DetectedAt">When the engine found it.</param>
public sealed record Conflict(string ConflictId, string RecordId, ConflictType Type, IReadOnlyList<string> Fields, IReadOnlyList<ConflictCandidate> Sources, Instant DetectedAt);

/// <summary>
/// How one conflict was resolved (or that it waits for review).
/// </summary>
/// <param name="ConflictId">The conflict.</param>
/// <param name="Strategy">The strategy that decided it (<c>last_write_wins</c>, <c>source_wins</c>, <c>manual_review</c>, <c>custom:sum_deltas</c>…; <c>field_level</c> when fields were decided by different strategies).</param>
/// <param name="ResolvedValues">The values the destination holds for the conflicting fields after this resolution (held fields keep the destination's value).</param>
/// <param name="Deleted">Whether the record is deleted after this resolution.</param>
/// <param name="ResolvedAt">When it was decided; null while the whole conflict waits for review.</param>
/// <param name="ResolvedBy"><c>system</c> for automatic resolutions, the reviewer otherwise; null while pending.</param>
/// <param name="Confidence">The lowest field confidence (docs/architecture.md, "Conflicts": how it is computed).</param>
/// <param name="HeldFields">Fields (or <see cref="RecordBase.RecordHoldField"/>) waiting for manual review.</param>
/// <param name="Fields">How each field was decided.</param>
public sealed record ConflictResolution(
    string ConflictId,
    string Strategy,
    IReadOnlyDictionary<string, object?> ResolvedValues,
    bool Deleted,
    Instant? ResolvedAt,
    string? ResolvedBy,
    double Confidence,
    IReadOnlyList<string> HeldFields,
    IReadOnlyList<FieldResolution> Fields)
{
    /// <summary>The name of automatic resolutions' resolver.</summary>
    public const string System = "system";

    /// <summary>Whether anything waits for manual review.</summary>
    public bool NeedsReview => HeldFields.Count > 0;
}

/// <summary>How one field (or <see cref="RecordBase.RecordHoldField"/>) of a conflict was decided.</summary>
/// <param name="Field">The field.</param>
/// <param name="Strategy">The strategy that decided it (see <see cref="ConflictResolution.Strategy"/>).</param>
/// <param name="Winner">The source whose write stands; null when held, or when a rule combined several (sum, union).</param>
/// <param name="Value">The value the destination holds for the field now.</param>
/// <param name="Confidence">0…1.</param>
/// <param name="Held">Whether it waits for review.</param>
/// <param name="Reason">Why, in words (e.g. "writes 12 s apart, inside the 1 h tolerance window: source priority decided").</param>
public sealed record FieldResolution(string Field, string Strategy, string? Winner, object? Value, double Confidence, bool Held, string Reason);

/// <summary>A conflict and its (first) resolution.</summary>
public sealed record ResolvedConflict(Conflict Conflict, ConflictResolution Resolution);
