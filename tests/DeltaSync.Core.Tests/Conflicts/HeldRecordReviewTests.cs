using DeltaSync.Core.Conflicts;
using static DeltaSync.Core.Tests.Conflicts.ConflictFixtures;

namespace DeltaSync.Core.Tests.Conflicts;

/// <summary>
/// A record held for review as a whole (a held delete conflict): writes of the updating source are full rows, so
/// keeping the record for that source must keep what it changed and not revert what it never saw (another source's
/// earlier change to another field, an edit made at the destination meanwhile).
/// </summary>
public sealed class HeldRecordReviewTests
{
    /// <summary>crm's version as a full row (as every capture reports it): what it changed plus what it last saw.</summary>
    private static RecordVersion CrmRow(int minute, long sequence, string phone) =>
        Upsert("crm", minute, sequence, ("email", "old@example.com"), ("phone", phone), ("stock", 10L), ("tags", "vip"));

    private static RecordBase HeldAfterShopsEmailAndDelete(ConflictEngine engine)
    {
        // shop changes email (common ground: plain); crm changes phone (another field: plain); shop then deletes the
        // record crm wrote: a delete conflict, held for review.
        var merged = engine.Merge(Synced(), [Upsert("shop", 5, 1, ("email", "shop@x")), CrmRow(10, 1, "555-1111"), Delete("shop", 20, 2)], Now);
        Assert.True(merged.Record.Holds.ContainsKey(RecordBase.RecordHoldField), Destination(merged.Record));
        Assert.Equal(("shop@x", "555-1111"), (merged.Record.Values["email"], merged.Record.Values["phone"]));
        return merged.Record;
    }

    [Fact]
    public void Keeping_the_record_for_the_updater_keeps_the_other_sources_earlier_change_to_another_field()
    {
        var engine = Engine("manual_review");
        var held = HeldAfterShopsEmailAndDelete(engine);

        // While held, crm changes phone again (its full row repeats the email it last saw: the old one).
        var more = engine.Merge(held, [CrmRow(30, 2, "555-2222")], Now);
        var (kept, _) = engine.ResolveReview(more.Record, RecordBase.RecordHoldField, "crm", "alice", Now);

        Assert.True(kept.Exists);
        Assert.Equal("555-2222", kept.Values["phone"]);
        // shop's email change was never in conflict (crm did not touch email): it must survive the decision.
        Assert.Equal("shop@x", kept.Values["email"]);
    }

    [Fact]
    public void Keeping_the_record_keeps_an_out_of_band_destination_edit_made_while_it_was_held()
    {
        var engine = Engine("manual_review");
        var held = HeldAfterShopsEmailAndDelete(engine);

        // The destination's row is edited (tags) while held; the edit merges when crm's next write arrives.
        var row = new Dictionary<string, object?>(held.Values) { ["tags"] = "edited" };
        var more = engine.Merge(held, [RecordVersion.FromDestination(held.Key, row, Now), CrmRow(30, 2, "555-2222")], Now);
        Assert.Equal("edited", more.Record.Values["tags"]);

        var (kept, _) = engine.ResolveReview(more.Record, RecordBase.RecordHoldField, "crm", "alice", Now);

        Assert.Equal("555-2222", kept.Values["phone"]);
        Assert.Equal("edited", kept.Values["tags"]);
    }
}
