using System.Collections.Immutable;
using DeltaSync.Core.Config;
using DeltaSync.Core.Conflicts;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.State;
using NodaTime;

namespace DeltaSync.Core.Pipeline;

/// <summary>
/// A reviewer's decision on a held conflict: take one source's candidate for every held field (<c>--take</c>),
/// per field (<c>--field NAME=SOURCE</c>), or give values outright (<c>--value JSON</c>). Per field, an explicit value
/// wins over a field's source, which wins over <see cref="TakeSource"/>.
/// </summary>
public sealed record ReviewDecision(string? TakeSource, IReadOnlyDictionary<string, string> FieldSources, IReadOnlyDictionary<string, object?> Values)
{
    public bool IsEmpty => TakeSource is null && FieldSources.Count == 0 && Values.Count == 0;
}

/// <summary>What resolving a review did.</summary>
/// <param name="Review">The review, as it was queued.</param>
/// <param name="Resolution">The decision as recorded in the resolution history.</param>
/// <param name="Written">What the destination wrote (the decided values, or the record's delete).</param>
public sealed record ReviewResolved(ConflictReview Review, ConflictResolution Resolution, ApplyResult Written);

/// <summary>A review decision that cannot be applied: an unknown source or field, or a held field left undecided.</summary>
public sealed class ReviewDecisionException : Exception
{
    public ReviewDecisionException()
        : base("the review decision cannot be applied")
    {
    }

    public ReviewDecisionException(string message)
        : base(message)
    {
    }

    public ReviewDecisionException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>
/// Settles a conflict held for manual review (<c>deltasync conflicts resolve</c>): under the stream's lease, reads the
/// record's base and row from the destination, applies the decision to every field the conflict holds
/// (<see cref="ConflictEngine.ResolveReview"/>), writes the decided row (or delete) and the new base through the
/// destination's apply path in one transaction, appends the resolution to the conflict log and takes the conflict
/// out of the review queue. Writes that joined the review meanwhile are candidates like the first ones.
/// </summary>
public sealed class ConflictReviewResolver(SyncConfig config, IStateStore store, IDestination destination, Func<TablePlan, CancellationToken, Task<TableSchema>> describe, IClock clock)
{
    public async Task<ReviewResolved?> ResolveAsync(string conflictId, ReviewDecision decision, string resolvedBy, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(decision);
        var review = (await store.ReadConflictReviewsAsync(conflictId, 1, cancellationToken).ConfigureAwait(false)).SingleOrDefault();
        if (review is null)
        {
            return null;
        }

        // The source that detected the conflict may have left the configuration since: the decision is about the
        // destination's record, so any source still writing its table stands in (its lease fences the write).
        var plans = TablePlan.FromConfig(config);
        var plan = plans.FirstOrDefault(p => p.Stream == review.Stream)
            ?? plans.FirstOrDefault(p => string.Equals(p.DestinationTable, review.Table, StringComparison.OrdinalIgnoreCase))
            ?? throw new ReviewDecisionException($"conflict {conflictId} belongs to stream '{review.Stream}' (destination table '{review.Table}'), which no source of this configuration writes any more");
        var lease = await TableLease.AcquireAsync(store, plan.Stream, cancellationToken).ConfigureAwait(false);
        try
        {
            return await ResolveLeasedAsync(review, plan, decision, resolvedBy, lease?.Hold.Epoch ?? 0, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            if (lease is not null)
            {
                await lease.ReleaseAsync().ConfigureAwait(false);
            }
        }
    }

    private async Task<ReviewResolved> ResolveLeasedAsync(ConflictReview review, TablePlan plan, ReviewDecision decision, string resolvedBy, long epoch, CancellationToken cancellationToken)
    {
        var plans = TablePlan.FromConfig(config);
        var now = clock.GetCurrentInstant();
        var schema = KeyMapping.Rename(await describe(plan, cancellationToken).ConfigureAwait(false), plan.KeyMap);
        var key = RecordKey.FromEncoded(Convert.FromHexString(review.Key));
        // A decision may leave the row as it is while changing who wrote it: no source's fast-merge state from before
        // this review may vouch for the record any more.
        await destination.MergeEpochAsync(plan.DestinationTable, advance: true, cancellationToken).ConfigureAwait(false);
        var stored = await destination.ReadRecordsAsync(plan.DestinationTable, schema, [key], cancellationToken).ConfigureAwait(false);
        stored.TryGetValue(key, out var found);
        var engine = new ConflictEngine(ConflictSession.PolicyOf(config));
        var record = found?.Base is { } text ? RecordBaseCodec.Decode(review.RecordId, text) : RecordBase.Absent(review.RecordId);
        if (found?.Base is not null && destination.Ledger.KeepsMergeState)
        {
            // What sources merged on the fast path since the base was stored.
            var tails = new List<(string, SourceMergeState)>();
            foreach (var source in plans.Where(p => string.Equals(p.DestinationTable, plan.DestinationTable, StringComparison.OrdinalIgnoreCase)).Select(p => p.SourceName).Distinct(StringComparer.Ordinal))
            {
                var entries = await destination.Ledger.LookupAsync(new LedgerScope(plan.DestinationTable, source), [key], cancellationToken).ConfigureAwait(false);
                if (entries.TryGetValue(key, out var entry) && SourceMergeState.Decode(entry.MergeState) is { TailCount: > 0 } state)
                {
                    tails.Add((source, state));
                }
            }

            record = RecordMerger.FoldTails(engine, record, tails, now);
        }

        if (found?.Base is not null)
        {
            // The destination edited (or deleted) the record out-of-band since its last merge: those edits are the
            // destination's writes, as a run would merge them, so the decision does not revert them.
            var tracking = RecordMerger.TrackingFields(plan, schema, ConflictSession.TrackingColumns(plans, plan));
            if (RecordMerger.DestinationVersion(review.RecordId, record, found.Row, tracking, now) is { } edited)
            {
                record = engine.Apply(record, edited, now).Record;
            }
        }

        var holds = record.Holds.Values.Where(h => h.ConflictId == review.ConflictId).OrderBy(h => h.Field, StringComparer.Ordinal).ToList();
        // Checked first: a misspelt field would otherwise surface as the held field it left without a decision.
        var unknown = decision.FieldSources.Keys.Concat(decision.Values.Keys).Where(f => holds.All(h => h.Field != f)).ToList();
        if (unknown.Count > 0)
        {
            throw new ReviewDecisionException($"conflict {review.ConflictId} holds no field {string.Join(", ", unknown)}; held: {string.Join(", ", holds.Select(h => h.Field))}");
        }

        var fields = new List<FieldResolution>();
        var values = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var hold in holds)
        {
            var field = hold.Field;
            if (decision.Values.TryGetValue(field, out var value) && field != RecordBase.RecordHoldField)
            {
                CheckKind(review.ConflictId, schema, field, value);
                var normalized = RecordBaseCodec.Normalize(value);
                // A value the reviewer typed is nobody's write: it becomes common ground, as if synced.
                record = record with { Values = record.Values.SetItem(field, normalized), Writers = record.Writers.Remove(field), Holds = record.Holds.Remove(field) };
                values[field] = normalized;
                fields.Add(new FieldResolution(field, "manual_review", null, normalized, 1.0, false, $"{resolvedBy} set the value"));
                continue;
            }

            var source = decision.FieldSources.GetValueOrDefault(field) ?? decision.TakeSource
                ?? throw new ReviewDecisionException($"conflict {review.ConflictId}: held field '{field}' has no decision; candidates: {string.Join(", ", hold.Candidates.Keys.Order(StringComparer.Ordinal))} (use --take SOURCE, --field {field}=SOURCE or --value)");
            if (!hold.Candidates.ContainsKey(source))
            {
                throw new ReviewDecisionException($"conflict {review.ConflictId}, field '{field}': '{source}' is not a candidate; candidates: {string.Join(", ", hold.Candidates.Keys.Order(StringComparer.Ordinal))}");
            }

            (record, var resolution) = engine.ResolveReview(record, field, source, resolvedBy, now);
            fields.AddRange(resolution.Fields);
            foreach (var (name, resolved) in resolution.ResolvedValues)
            {
                values[name] = resolved;
            }
        }

        var written = default(ApplyResult);
        if (holds.Count > 0)
        {
            var write = RecordMerger.WriteOf(schema, key, record, found?.Row);
            var checkpoint = new Checkpoint(plan.Stream, plan.Table, 0, Position.None, plan.Method.ToString().ToLowerInvariant(), null, null, schema.Fingerprint(), CheckpointCounters.Zero, epoch, "conflict-review", now);
            written = await destination.ApplyAsync(
                new ApplyUnit(schema, plan.DestinationTable, new LedgerScope(plan.DestinationTable, plan.SourceName), write is { } w ? [w] : [], [], checkpoint)
                {
                    CommitsCheckpoint = false,
                    RecordBases = [new RecordBaseWrite(key, RecordBaseCodec.EncodeUtf8(record))],
                },
                cancellationToken).ConfigureAwait(false);
        }

        var strategy = ConflictNames.Of(ConflictStrategy.ManualReview);
        var decided = new ConflictResolution(review.ConflictId, strategy, values.ToImmutableDictionary(StringComparer.Ordinal), !record.Exists, now, resolvedBy, 1.0, [], fields);
        var json = ConflictSession.ResolutionJson(decided);
        await store.AppendConflictLogAsync(
            [new ConflictLogRecord($"{review.ConflictId}:resolved:review:{now.ToUnixTimeTicks()}", review.ConflictId, review.Stream, ConflictLogEntry.Kinds.Resolved, now, json)],
            cancellationToken).ConfigureAwait(false);
        await store.RemoveConflictReviewAsync(review.ConflictId, cancellationToken).ConfigureAwait(false);
        return new ReviewResolved(review, decided, written);
    }

    /// <summary>
    /// A value the reviewer typed must be of the field's kind: the destination stores it by the column's type (SQLite's
    /// affinity turns 7 into '7' in a TEXT column) while the record base keeps it as typed, so a mismatch would read as
    /// an edit out-of-band — a conflict with the <c>destination</c> — the next time a source changes the field.
    /// </summary>
    private static void CheckKind(string conflictId, TableSchema schema, string field, object? value)
    {
        var index = schema.IndexOf(field);
        if (index < 0 || value is null)
        {
            return;
        }

        var kind = schema.Columns[index].Kind;
        var expected = kind switch
        {
            DataKind.Text when value is not string => "a JSON string",
            DataKind.Integer or DataKind.Real or DataKind.Numeric when value is not (long or double) => "a JSON number",
            _ => null,
        };
        if (expected is not null)
        {
            throw new ReviewDecisionException($"conflict {conflictId}: field '{field}' holds {kind.ToString().ToLowerInvariant()} values; give its --value as {expected}");
        }
    }
}
