namespace DeltaSync.Core.Conflicts;

/// <summary>
/// A record as last synced and merged — what the ledger says was applied — and the input of every conflict decision:
/// the merged values, who last wrote each field, what each source last said, and the fields held for manual review.
/// Immutable: merging returns a new base.
/// </summary>
/// <remarks>
/// A field with no writer is common ground: the value every source had when the record was last synced. A write by one
/// source on top of another source's write is concurrent (DeltaSync merges one way: sources never see each other's
/// writes), so it is a conflict; a write on top of common ground or of the same source's own earlier write is not.
/// While a record is deleted its field writes are still merged (unseen), so the outcome does not depend on whether an
/// update is seen before or after a delete it loses to.
/// </remarks>
public sealed record RecordBase(string Key)
{
    /// <summary>The pseudo-field under which a delete conflict's hold is kept.</summary>
    public const string RecordHoldField = "(record)";

    /// <summary>Whether the record exists at the destination.</summary>
    public bool Exists { get; init; }

    /// <summary>The write that decided <see cref="Exists"/> (null: as synced, common ground).</summary>
    public WriteStamp? Existence { get; init; }

    /// <summary>The source whose insert created the record since it was last synced (null for synced records).</summary>
    public WriteStamp? InsertedBy { get; init; }

    /// <summary>The merged values (kept while the record is deleted, for an undelete).</summary>
    public FieldDictionary<object?> Values { get; init; } = FieldDictionary<object?>.Empty;

    /// <summary>Per field, the write that set its value; absent for common ground.</summary>
    public FieldDictionary<WriteStamp> Writers { get; init; } = FieldDictionary<WriteStamp>.Empty;

    /// <summary>Per source, the values it last reported (the base of its next change: counters add the difference).</summary>
    public FieldDictionary<FieldDictionary<object?>> SourceViews { get; init; } = FieldDictionary<FieldDictionary<object?>>.Empty;

    /// <summary>Per source, the newest version applied (replays of it or of older ones change nothing).</summary>
    public FieldDictionary<WriteStamp> SourceStamps { get; init; } = FieldDictionary<WriteStamp>.Empty;

    /// <summary>Fields (or <see cref="RecordHoldField"/>) held for manual review: the destination keeps its value meanwhile.</summary>
    public FieldDictionary<ReviewHold> Holds { get; init; } = FieldDictionary<ReviewHold>.Empty;

    /// <summary>A record as synced: these values are common ground for <paramref name="sources"/> (each source's view starts from them).</summary>
    public static RecordBase Synced(string key, IReadOnlyDictionary<string, object?> values, params IEnumerable<string> sources)
    {
        ArgumentNullException.ThrowIfNull(values);
        var merged = FieldDictionary.From(values);
        return new RecordBase(key)
        {
            Exists = true,
            Values = merged,
            SourceViews = FieldDictionary.From(sources.Distinct(StringComparer.Ordinal).Select(s => KeyValuePair.Create(s, merged))),
        };
    }

    /// <summary>A key the ledger has never seen.</summary>
    public static RecordBase Absent(string key) => new(key);

    /// <summary>Whether the key has never been seen at all (no values, no existence decision).</summary>
    public bool IsNew => !Exists && Existence is null && Values.IsEmpty;

    /// <summary>The value <paramref name="source"/> last reported for <paramref name="field"/>, else the merged value.</summary>
    public object? PreviousValue(string source, string field) =>
        SourceViews.TryGetValue(source, out var view) && view.TryGetValue(field, out var value) ? value : Values.GetValueOrDefault(field);
}

/// <summary>
/// A field (or a record's existence) waiting for manual review: the conflict, the destination value held meanwhile, and
/// the latest candidate of every source involved (a held field that receives more updates keeps collecting them).
/// </summary>
/// <param name="ConflictId">The conflict this hold belongs to.</param>
/// <param name="Field">The field, or <see cref="RecordBase.RecordHoldField"/>.</param>
/// <param name="Candidates">Per source, its newest write to the field.</param>
/// <param name="Proposed">What the automatic strategy would have chosen, when one ran (confidence below the threshold); null otherwise.</param>
public sealed record ReviewHold(string ConflictId, string Field, FieldDictionary<ConflictCandidate> Candidates, ConflictCandidate? Proposed);

/// <summary>One source's side of a conflict: its write's stamp and the values it wrote (or that it deleted the record).</summary>
public sealed record ConflictCandidate(WriteStamp Stamp, bool Deleted, IReadOnlyDictionary<string, object?> Values)
{
    public string Source => Stamp.Source;
}
