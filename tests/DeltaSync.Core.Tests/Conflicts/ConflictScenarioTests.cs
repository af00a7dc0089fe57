using DeltaSync.Core.Conflicts;
using NodaTime;
using static DeltaSync.Core.Tests.Conflicts.ConflictFixtures;

namespace DeltaSync.Core.Tests.Conflicts;

public sealed class ConflictScenarioTests
{
    [Fact]
    public void Equal_timestamps_under_last_write_wins_are_broken_by_source_priority()
    {
        var outcome = Engine("last_write_wins").Merge(Synced(), [Upsert("shop", 10, 1, ("email", "shop@x")), Upsert("crm", 10, 1, ("email", "crm@x"))], Now);

        var resolution = Assert.Single(outcome.Conflicts).Resolution;
        Assert.Equal("crm@x", outcome.Record.Values["email"]);
        Assert.Equal(1.0, resolution.Confidence);
        Assert.Contains("source priority", resolution.Fields[0].Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Equal_timestamps_and_no_priority_are_broken_by_source_name_with_half_confidence()
    {
        var engine = Engine(Options("last_write_wins") with { SourcePriority = [] });

        var outcome = engine.Merge(Synced(), [Upsert("shop", 10, 1, ("email", "shop@x")), Upsert("crm", 10, 1, ("email", "crm@x"))], Now);

        Assert.Equal("crm@x", outcome.Record.Values["email"]);
        Assert.Equal(0.5, Assert.Single(outcome.Conflicts).Resolution.Confidence);
    }

    [Fact]
    public void Writes_inside_the_tolerance_window_go_to_manual_review_by_default()
    {
        var engine = Engine(Options("last_write_wins") with { ToleranceTimeWindow = Duration.FromHours(1) });

        var outcome = engine.Merge(Synced(), [Upsert("crm", 10, 1, ("email", "crm@x")), Upsert("shop", 40, 1, ("email", "shop@x"))], Now);

        var resolution = Assert.Single(outcome.Conflicts).Resolution;
        Assert.Equal("manual_review", resolution.Strategy);
        Assert.Equal(["email"], resolution.HeldFields);
        Assert.Equal(0, resolution.Confidence);
        Assert.Equal("crm@x", outcome.Record.Values["email"]);
        Assert.Contains("inside the 1 h tolerance window", resolution.Fields[0].Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Writes_inside_the_tolerance_window_follow_source_priority_when_that_is_the_fallback()
    {
        var engine = Engine(Options("last_write_wins") with { ToleranceTimeWindow = Duration.FromHours(1), ToleranceFallback = "source_wins" });

        var outcome = engine.Merge(Synced(), [Upsert("crm", 10, 1, ("email", "crm@x")), Upsert("shop", 40, 1, ("email", "shop@x"))], Now);

        var resolution = Assert.Single(outcome.Conflicts).Resolution;
        Assert.Equal("source_wins", resolution.Strategy);
        Assert.Equal("crm@x", outcome.Record.Values["email"]);
        Assert.False(resolution.NeedsReview);
    }

    [Theory]
    [InlineData(60, 0.5)]
    [InlineData(90, 0.75)]
    [InlineData(120, 1.0)]
    [InlineData(300, 1.0)]
    public void Last_write_wins_confidence_grows_with_the_gap_beyond_the_window(int gapMinutes, double confidence)
    {
        var engine = Engine(Options("last_write_wins") with { ToleranceTimeWindow = Duration.FromHours(1) });

        var outcome = engine.Merge(Synced(), [Upsert("crm", 0, 1, ("email", "crm@x")), Upsert("shop", gapMinutes, 1, ("email", "shop@x"))], Now);

        var resolution = Assert.Single(outcome.Conflicts).Resolution;
        Assert.Equal(confidence, resolution.Confidence, 6);
        Assert.Equal("shop@x", outcome.Record.Values["email"]);
    }

    [Fact]
    public void A_resolution_below_the_review_threshold_is_held_with_its_proposal()
    {
        var engine = Engine(Options("last_write_wins") with { ToleranceTimeWindow = Duration.FromHours(1), ManualReviewThreshold = 0.8 });

        var outcome = engine.Merge(Synced(), [Upsert("crm", 0, 1, ("email", "crm@x")), Upsert("shop", 90, 1, ("email", "shop@x"))], Now);

        var resolution = Assert.Single(outcome.Conflicts).Resolution;
        Assert.Equal(["email"], resolution.HeldFields);
        Assert.Equal(0.75, resolution.Confidence, 6);
        Assert.Contains("below manual_review_threshold 0.8", resolution.Fields[0].Reason, StringComparison.Ordinal);
        Assert.Equal("crm@x", outcome.Record.Values["email"]);
        Assert.Equal("shop", outcome.Record.Holds["email"].Proposed!.Source);
    }

    [Fact]
    public void A_source_clock_running_ahead_is_corrected_by_its_offset_before_last_write_wins()
    {
        // shop's clock runs 30 minutes fast: its 09:25 is really 08:55, before crm's 09:10.
        var skewed = Upsert("shop", 25, 1, ("email", "shop@x")) with { ClockOffset = Duration.FromMinutes(30) };
        var crm = Upsert("crm", 10, 1, ("email", "crm@x"));

        var corrected = Engine("last_write_wins").Merge(Synced(), [skewed, crm], Now);
        var naive = Engine("last_write_wins").Merge(Synced(), [skewed with { ClockOffset = Duration.Zero }, crm], Now);

        Assert.Equal("crm@x", corrected.Record.Values["email"]);
        Assert.Equal("shop@x", naive.Record.Values["email"]);
        var shopSide = Assert.Single(corrected.Conflicts).Conflict.Sources.Single(s => s.Source == "shop");
        Assert.Equal(At(-5), shopSide.Stamp.Time);
    }

    [Fact]
    public void Undelete_after_a_conflicting_delete_brings_the_record_back()
    {
        var engine = Engine("last_write_wins");
        var deleted = engine.Merge(Synced(), [Upsert("crm", 10, 1, ("phone", "555-1111")), Delete("shop", 20, 1)], Now);
        Assert.False(deleted.Record.Exists);

        var undeleted = engine.Apply(deleted.Record, Upsert("shop", 30, 2, ("email", "back@x"), ("phone", "555-3333")), Now);

        Assert.True(undeleted.Record.Exists);
        Assert.Equal(("back@x", "555-3333"), (undeleted.Record.Values["email"], undeleted.Record.Values["phone"]));
        var (conflict, resolution) = Assert.Single(undeleted.Conflicts);
        Assert.Equal(ConflictType.Update, conflict.Type);
        Assert.Equal(["phone"], conflict.Fields);
        Assert.Equal("last_write_wins", resolution.Strategy);
    }

    [Fact]
    public void An_update_newer_than_a_delete_it_conflicts_with_revives_the_record_with_every_field_it_wrote()
    {
        var engine = Engine("last_write_wins");
        var first = engine.Merge(Synced(), [Upsert("crm", 10, 1, ("phone", "555-1111")), Delete("shop", 20, 1), Upsert("crm", 30, 2, ("email", "crm@x"))], Now);
        var reversed = engine.Merge(Synced(), [Delete("shop", 20, 1)], Now);
        reversed = engine.Merge(reversed.Record, [Upsert("crm", 10, 1, ("phone", "555-1111")), Upsert("crm", 30, 2, ("email", "crm@x"))], Now);

        Assert.True(first.Record.Exists);
        Assert.Equal(first.Record.Values, reversed.Record.Values);
        Assert.Equal(first.Record.Exists, reversed.Record.Exists);
        Assert.Equal("555-1111", first.Record.Values["phone"]);
    }

    [Fact]
    public void A_held_field_collects_further_updates_and_keeps_the_destination_value_until_reviewed()
    {
        var engine = Engine("manual_review");
        var held = engine.Merge(Synced(), [Upsert("crm", 10, 1, ("email", "crm@x")), Upsert("shop", 20, 1, ("email", "shop@x"))], Now);
        var conflictId = Assert.Single(held.Conflicts).Conflict.ConflictId;

        var more = engine.Merge(held.Record, [Upsert("shop", 30, 2, ("email", "shop2@x"), ("phone", "555-4444")), Upsert("crm", 35, 2, ("email", "crm2@x"))], Now);

        Assert.Empty(more.Conflicts);
        Assert.Equal(["crm", "shop"], more.HeldUpdates.Select(u => u.Candidate.Source).Order());
        Assert.All(more.HeldUpdates, u => Assert.Equal(conflictId, u.ConflictId));
        Assert.Equal("crm@x", more.Record.Values["email"]);
        Assert.Equal("555-4444", more.Record.Values["phone"]);
        Assert.Equal("shop2@x", more.Record.Holds["email"].Candidates["shop"].Values["email"]);

        var (reviewed, resolution) = engine.ResolveReview(more.Record, "email", "shop", "alice", Now);

        Assert.Equal("shop2@x", reviewed.Values["email"]);
        Assert.Empty(reviewed.Holds);
        Assert.Equal(("manual_review", "alice", conflictId), (resolution.Strategy, resolution.ResolvedBy, resolution.ConflictId));
    }

    [Fact]
    public void A_held_delete_conflict_is_settled_by_review()
    {
        var engine = Engine("manual_review");
        var held = engine.Merge(Synced(), [Upsert("crm", 10, 1, ("phone", "555-1111")), Delete("shop", 20, 1)], Now);
        Assert.True(held.Record.Exists);

        var (reviewed, resolution) = engine.ResolveReview(held.Record, RecordBase.RecordHoldField, "shop", "bob", Now);

        Assert.False(reviewed.Exists);
        Assert.True(resolution.Deleted);
    }

    [Fact]
    public void An_out_of_band_destination_edit_conflicts_with_a_source_change_to_the_same_field()
    {
        var destination = RecordVersion.FromDestination(Key, Row(("email", "dba@x"), ("phone", "555-0000"), ("stock", 10L), ("tags", "vip")), At(5));

        var outcome = Engine("last_write_wins").Merge(Synced(), [Upsert("crm", 10, 1, ("email", "crm@x"), ("phone", "555-1111")), destination], Now);

        Assert.Equal(["email"], outcome.DestinationEdits);
        var (conflict, _) = Assert.Single(outcome.Conflicts);
        Assert.Equal(["email"], conflict.Fields);
        Assert.Equal(["crm", RecordVersion.DestinationSource], conflict.Sources.Select(s => s.Source));
        Assert.Equal(("crm@x", "555-1111"), (outcome.Record.Values["email"], outcome.Record.Values["phone"]));
    }

    [Fact]
    public void A_row_deleted_at_the_destination_out_of_band_conflicts_with_a_source_update()
    {
        var outcome = Engine("source_wins").Merge(Synced(), [RecordVersion.FromDestination(Key, null, At(5)), Upsert("shop", 10, 1, ("phone", "555-1111"))], Now);

        Assert.Equal(ConflictType.Delete, Assert.Single(outcome.Conflicts).Conflict.Type);
        Assert.True(outcome.Record.Exists);
    }

    [Fact]
    public void Replaying_versions_already_merged_changes_nothing_and_finds_no_conflict()
    {
        var engine = Engine("last_write_wins");
        IReadOnlyList<RecordVersion> versions = [Upsert("crm", 10, 1, ("email", "crm@x")), Upsert("shop", 20, 1, ("email", "shop@x")), Delete("crm", 30, 2)];
        var once = engine.Merge(Synced(), versions, Now);

        var again = engine.Merge(once.Record, versions, Now);

        Assert.Empty(again.Conflicts);
        Assert.Same(once.Record, again.Record);
    }

    [Fact]
    public void Counters_add_every_sources_change()
    {
        var options = Options("last_write_wins") with { Strategies = [Field("stock", "sum_deltas")] };

        var outcome = Engine(options).Merge(Synced(), [Upsert("crm", 10, 1, ("stock", 12L)), Upsert("shop", 20, 1, ("stock", 7L)), Upsert("shop", 25, 2, ("stock", 6L))], Now);

        Assert.Equal(8L, outcome.Record.Values["stock"]);
        Assert.Equal("custom:sum_deltas", Assert.Single(outcome.Conflicts).Resolution.Strategy);
    }

    [Fact]
    public void A_side_of_a_conflict_shows_what_its_source_wrote_not_a_value_a_rule_combined()
    {
        var options = Options("last_write_wins") with { Strategies = [Field("stock", "sum_deltas"), Field("tags", "concat_unique")] };

        var outcome = Engine(options).Merge(
            Synced(),
            [Upsert("crm", 10, 1, ("stock", 12L), ("tags", "vip,a")), Upsert("shop", 20, 1, ("stock", 7L), ("tags", "vip,b")), Upsert("crm", 30, 2, ("stock", 13L), ("tags", "vip,a,c"))],
            Now);

        Assert.Equal((10L, "a,b,c,vip"), (outcome.Record.Values["stock"], outcome.Record.Values["tags"]));
        Assert.Equal(2, outcome.Conflicts.Count);
        // The second conflict's incumbent is shop's write, merged into 9 and "a,b,vip": shop itself said 7 and "vip,b".
        var shop = outcome.Conflicts[1].Conflict.Sources.Single(s => s.Source == "shop");
        Assert.Equal((7L, "vip,b"), (shop.Values["stock"], shop.Values["tags"]));
        Assert.Equal((9L, "a,b,vip"), (outcome.Conflicts[0].Resolution.ResolvedValues["stock"], outcome.Conflicts[0].Resolution.ResolvedValues["tags"]));
    }

    [Theory]
    [InlineData("max", 3L, 9L, 9L)]
    [InlineData("min", 3L, 9L, 3L)]
    [InlineData("prefer_non_null", null, 9L, 9L)]
    [InlineData("prefer_non_null", 3L, null, 3L)]
    [InlineData("concat_unique", "b,a", "c,a", "a,b,c")]
    public void Custom_rules_combine_the_two_values(string rule, object? crmValue, object? shopValue, object? expected)
    {
        var options = Options("last_write_wins") with { Strategies = [Field("tags", rule)] };

        var outcome = Engine(options).Merge(Synced(), [Upsert("crm", 10, 1, ("tags", crmValue)), Upsert("shop", 20, 1, ("tags", shopValue))], Now);

        Assert.Equal(expected, outcome.Record.Values["tags"]);
        Assert.Equal(1.0, Assert.Single(outcome.Conflicts).Resolution.Confidence);
    }

    [Fact]
    public void Per_field_strategies_decide_each_field_of_one_conflict()
    {
        var options = Options("last_write_wins") with { Strategies = [new("email", "source_wins", ["shop", "crm"]), new("phone", "manual_review", [])] };

        var outcome = Engine(options).Merge(Synced(), [Upsert("shop", 10, 1, ("email", "shop@x"), ("phone", "1")), Upsert("crm", 20, 1, ("email", "crm@x"), ("phone", "2"), ("tags", "x"))], Now);

        var resolution = Assert.Single(outcome.Conflicts).Resolution;
        Assert.Equal("field_level", resolution.Strategy);
        Assert.Equal(["email:source_wins", "phone:manual_review"], resolution.Fields.Select(f => $"{f.Field}:{f.Strategy}"));
        Assert.Equal(["phone"], resolution.HeldFields);
        Assert.Equal(("shop@x", "1", "x"), (outcome.Record.Values["email"], outcome.Record.Values["phone"], outcome.Record.Values["tags"]));
    }

    [Fact]
    public void The_order_versions_are_given_in_does_not_change_the_result()
    {
        var engine = Engine("last_write_wins");
        RecordVersion[] versions = [Upsert("crm", 10, 1, ("email", "crm@x")), Upsert("shop", 10, 1, ("email", "shop@x")), Delete("shop", 30, 2), Upsert("crm", 40, 2, ("phone", "9"))];

        var forward = engine.Merge(Synced(), versions, Now);
        var backward = engine.Merge(Synced(), versions.Reverse(), Now);

        Assert.Equal(Destination(forward.Record), Destination(backward.Record));
        Assert.Equal(forward.Conflicts.Select(c => c.Conflict.ConflictId), backward.Conflicts.Select(c => c.Conflict.ConflictId));
    }
}
