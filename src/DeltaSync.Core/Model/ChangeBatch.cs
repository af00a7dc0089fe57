namespace DeltaSync.Core.Model;

/// <summary>
/// A batch of changes from one table, in source order, with the position that is safe to checkpoint
/// once every change in it (and every earlier batch) is applied.
/// </summary>
public sealed class ChangeBatch
{
    public ChangeBatch(TableSchema schema, IReadOnlyList<ChangeEvent> events, Position checkpointPosition)
    {
        Schema = schema;
        Events = events;
        CheckpointPosition = checkpointPosition;
    }

    public TableSchema Schema { get; }

    /// <summary>
    /// This batch with other events and checkpoint position, everything else (dead letters, marks, counts) kept: for
    /// stages that rewrite a batch (soft deletes, hybrid capture's wrapped positions).
    /// </summary>
    public ChangeBatch With(IReadOnlyList<ChangeEvent> events, Position checkpointPosition, string? warning = null) =>
        Copy(events, checkpointPosition, warning is null ? Warnings : [.. Warnings, warning], TruncateFirst);

    /// <summary>
    /// This batch with <paramref name="events"/> and <see cref="TruncateFirst"/> off: a stage that turned the TRUNCATE
    /// into record-level changes (a table several sources write, <see cref="Pipeline.SharedTableTruncate"/>).
    /// </summary>
    public ChangeBatch WithTruncateResolved(IReadOnlyList<ChangeEvent> events) =>
        Copy(events, CheckpointPosition, Warnings, truncateFirst: false);

    private ChangeBatch Copy(IReadOnlyList<ChangeEvent> events, Position checkpointPosition, IReadOnlyList<string> warnings, bool truncateFirst) =>
        new(Schema, events, checkpointPosition)
        {
            DeadLetters = DeadLetters,
            HighWaterMark = HighWaterMark,
            TruncateFirst = truncateFirst,
            Warnings = warnings,
            InCommitOrder = InCommitOrder,
            NullCursorRows = NullCursorRows,
            CreatedAtFallbackRows = CreatedAtFallbackRows,
            DstGapRows = DstGapRows,
            DstOverlapRows = DstOverlapRows,
            Repair = Repair,
            Reconciliation = Reconciliation,
        };

    public IReadOnlyList<ChangeEvent> Events { get; }

    /// <summary>The position to store in the checkpoint after this batch commits.</summary>
    public Position CheckpointPosition { get; }

    /// <summary>Records of this batch's source range that could not be turned into changes.</summary>
    public IReadOnlyList<DeadLetter> DeadLetters { get; init; } = [];

    /// <summary>Newest source commit time seen so far in this stream (the high-water mark after this batch).</summary>
    public NodaTime.Instant? HighWaterMark { get; init; }

    /// <summary>
    /// The source table was emptied (TRUNCATE) before this batch's changes: every record of the stream is deleted at the
    /// destination first, in the same transaction.
    /// </summary>
    public bool TruncateFirst { get; init; }

    /// <summary>Things the capture noticed that the report should say (each said once per run).</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];

    /// <summary>
    /// The events come in the source's commit order (a change log or trigger table): a later event always supersedes an
    /// earlier one, so the ledger's commit times are not used to order them.
    /// </summary>
    public bool InCommitOrder { get; init; }

    /// <summary>Rows whose cursor column (updated_at, sequence) was NULL: compared with the ledger by row hash instead.</summary>
    public int NullCursorRows { get; init; }

    /// <summary>
    /// Rows whose updated_at was NULL and whose <c>created_at_field</c> gave their commit time and cursor order instead
    /// (not included in <see cref="NullCursorRows"/>).
    /// </summary>
    public int CreatedAtFallbackRows { get; init; }

    /// <summary>Zone-less timestamps that fell in a DST gap of the source zone and were shifted forward by its length.</summary>
    public int DstGapRows { get; init; }

    /// <summary>Zone-less timestamps that fell in a DST overlap of the source zone and took the earlier offset.</summary>
    public int DstOverlapRows { get; init; }

    /// <summary>
    /// Repairs found by reconciliation: each change is written even when the ledger says it is applied (the
    /// destination drifted from what the ledger recorded — a row edited or deleted there out of band).
    /// </summary>
    public bool Repair { get; init; }

    /// <summary>What the reconciliation that produced this batch compared and fetched (on its last batch only).</summary>
    public Capture.ReconciliationStats? Reconciliation { get; init; }
}
