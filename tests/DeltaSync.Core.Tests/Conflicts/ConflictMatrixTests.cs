using DeltaSync.Core.Conflicts;
using static DeltaSync.Core.Tests.Conflicts.ConflictFixtures;

namespace DeltaSync.Core.Tests.Conflicts;

/// <summary>Every conflict type under every strategy (crm ranks before shop; shop always writes later).</summary>
public sealed class ConflictMatrixTests
{
    [Theory]
    [InlineData("last_write_wins", "shop@example.com", "last_write_wins", false)]
    [InlineData("source_wins", "crm@example.com", "source_wins", false)]
    [InlineData("manual_review", "crm@example.com", "manual_review", true)]
    [InlineData("custom", "shop@example.com", "custom:max", false)]
    public void Update_conflict_on_one_field_is_resolved_by_the_strategy(string strategy, string expected, string resolvedBy, bool held)
    {
        var outcome = Engine(strategy).Merge(Synced(), [Upsert("shop", 20, 1, ("email", "shop@example.com")), Upsert("crm", 10, 1, ("email", "crm@example.com"))], Now);

        var (conflict, resolution) = Assert.Single(outcome.Conflicts);
        Assert.Equal(ConflictType.Update, conflict.Type);
        Assert.Equal(["email"], conflict.Fields);
        Assert.Equal(["crm", "shop"], conflict.Sources.Select(s => s.Source));
        Assert.Equal(resolvedBy, resolution.Strategy);
        Assert.Equal(expected, outcome.Record.Values["email"]);
        Assert.Equal(held, resolution.NeedsReview);
        Assert.Equal(held, outcome.Record.Holds.ContainsKey("email"));
        Assert.Equal(held ? null : Now, resolution.ResolvedAt);
    }

    [Theory]
    [InlineData("last_write_wins", false, false)]
    [InlineData("source_wins", true, false)]
    [InlineData("manual_review", true, true)]
    [InlineData("custom", false, false)]
    public void Delete_after_another_sources_update_is_a_delete_conflict(string strategy, bool exists, bool held)
    {
        var outcome = Engine(strategy).Merge(Synced(), [Upsert("crm", 10, 1, ("phone", "555-1111")), Delete("shop", 20, 1)], Now);

        var (conflict, resolution) = Assert.Single(outcome.Conflicts);
        Assert.Equal(ConflictType.Delete, conflict.Type);
        Assert.Equal(["phone"], conflict.Fields);
        Assert.Equal(exists, outcome.Record.Exists);
        Assert.Equal(!exists, resolution.Deleted);
        Assert.Equal(held, outcome.Record.Holds.ContainsKey(RecordBase.RecordHoldField));
        Assert.True(conflict.Sources.Single(s => s.Source == "shop").Deleted);
        Assert.Equal("555-1111", outcome.Record.Values["phone"]);
    }

    [Theory]
    [InlineData("last_write_wins", false, false)]
    [InlineData("source_wins", false, false)]
    [InlineData("manual_review", true, true)]
    [InlineData("custom", false, false)]
    public void Delete_by_the_source_that_decided_the_records_existence_still_conflicts_with_another_sources_update(string strategy, bool exists, bool held)
    {
        // shop's email is written, then crm (ranked first; and the later writer) updates another field and so owns the
        // record's existence; crm's delete has still not seen shop's email: one deleted what another updated.
        var outcome = Engine(strategy).Merge(Synced(), [Upsert("shop", 10, 1, ("email", "shop@example.com")), Upsert("crm", 20, 1, ("phone", "555-1111")), Delete("crm", 30, 2)], Now);

        var (conflict, resolution) = Assert.Single(outcome.Conflicts);
        Assert.Equal(ConflictType.Delete, conflict.Type);
        Assert.Equal(["email"], conflict.Fields);
        Assert.Equal(["crm", "shop"], conflict.Sources.Select(s => s.Source));
        Assert.True(conflict.Sources.Single(s => s.Source == "crm").Deleted);
        Assert.Equal("shop@example.com", conflict.Sources.Single(s => s.Source == "shop").Values["email"]);
        Assert.Equal(exists, outcome.Record.Exists);
        Assert.Equal(held, resolution.NeedsReview);
        Assert.Equal(held, outcome.Record.Holds.ContainsKey(RecordBase.RecordHoldField));
    }

    [Theory]
    [InlineData("last_write_wins", true, false)]
    [InlineData("source_wins", true, false)]
    [InlineData("manual_review", false, true)]
    [InlineData("custom", true, false)]
    public void Update_after_another_sources_delete_is_a_delete_conflict(string strategy, bool exists, bool held)
    {
        var outcome = Engine(strategy).Merge(Synced(), [Delete("shop", 10, 1), Upsert("crm", 20, 1, ("phone", "555-2222"))], Now);

        var (conflict, _) = Assert.Single(outcome.Conflicts);
        Assert.Equal(ConflictType.Delete, conflict.Type);
        Assert.Equal(exists, outcome.Record.Exists);
        Assert.Equal(held, outcome.Record.Holds.ContainsKey(RecordBase.RecordHoldField));
    }

    [Theory]
    [InlineData("last_write_wins", "s@example.com", 7L, false)]
    [InlineData("source_wins", "c@example.com", 5L, false)]
    [InlineData("manual_review", "c@example.com", 5L, true)]
    [InlineData("custom", "s@example.com", 7L, false)]
    public void Same_key_inserted_by_two_sources_with_different_values_is_an_insert_conflict(string strategy, string email, long stock, bool held)
    {
        var outcome = Engine(strategy).Merge(
            RecordBase.Absent(Key),
            [Upsert("crm", 10, 1, ("email", "c@example.com"), ("stock", 5L), ("tags", "new")), Upsert("shop", 20, 1, ("email", "s@example.com"), ("stock", 7L), ("tags", "new"))],
            Now);

        var (conflict, resolution) = Assert.Single(outcome.Conflicts);
        Assert.Equal(ConflictType.Insert, conflict.Type);
        Assert.Equal(["email", "stock"], conflict.Fields);
        Assert.Equal(email, outcome.Record.Values["email"]);
        Assert.Equal(stock, outcome.Record.Values["stock"]);
        Assert.Equal(held, resolution.NeedsReview);
        Assert.True(outcome.Record.Exists);
    }

    [Theory]
    [InlineData("last_write_wins")]
    [InlineData("source_wins")]
    [InlineData("manual_review")]
    [InlineData("custom")]
    public void Changes_to_different_fields_merge_without_a_conflict(string strategy)
    {
        var outcome = Engine(strategy).Merge(Synced(), [Upsert("crm", 10, 1, ("email", "crm@example.com")), Upsert("shop", 20, 1, ("phone", "555-9999"))], Now);

        Assert.Empty(outcome.Conflicts);
        Assert.Equal(("crm@example.com", "555-9999"), (outcome.Record.Values["email"], outcome.Record.Values["phone"]));
    }

    [Theory]
    [InlineData("last_write_wins")]
    [InlineData("source_wins")]
    [InlineData("manual_review")]
    [InlineData("custom")]
    public void Rapid_successive_updates_from_one_source_are_not_conflicts(string strategy)
    {
        var outcome = Engine(strategy).Merge(
            Synced(),
            [Upsert("shop", 10, 1, ("email", "a@example.com")), Upsert("shop", 10, 2, ("email", "b@example.com")), Upsert("shop", 11, 3, ("email", "c@example.com"))],
            Now);

        Assert.Empty(outcome.Conflicts);
        Assert.Equal("c@example.com", outcome.Record.Values["email"]);
    }

    [Theory]
    [InlineData("last_write_wins")]
    [InlineData("source_wins")]
    [InlineData("manual_review")]
    [InlineData("custom")]
    public void Full_rows_repeating_untouched_fields_do_not_conflict(string strategy)
    {
        var outcome = Engine(strategy).Merge(
            Synced(),
            [
                Upsert("crm", 10, 1, ("email", "crm@example.com"), ("phone", "555-0000")),
                Upsert("shop", 20, 1, ("email", "old@example.com"), ("phone", "555-7777")),
            ],
            Now);

        Assert.Empty(outcome.Conflicts);
        Assert.Equal(("crm@example.com", "555-7777"), (outcome.Record.Values["email"], outcome.Record.Values["phone"]));
    }
}
