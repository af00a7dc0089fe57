using DeltaSync.Core.Config;
using DeltaSync.Core.Model;
using DeltaSync.Core.State;
using NodaTime;

namespace DeltaSync.Core.Tests.State;

/// <summary>
/// What every <see cref="IStateStore"/> must do. A store's test class derives from this, says how to create a store
/// over a fresh location and how to open another instance over the same one, and inherits every test.
/// </summary>
public abstract class StateStoreContract
{
    protected static readonly Instant T0 = Instant.FromUtc(2025, 3, 14, 9, 26, 53);

    /// <summary>An initialized store over a location no other test uses.</summary>
    protected abstract Task<IStateStore> CreateStoreAsync();

    /// <summary>Another initialized instance over the location of the last <see cref="CreateStoreAsync"/>.</summary>
    protected abstract Task<IStateStore> ReopenAsync();

    protected static CancellationToken Ct => CancellationToken.None;

    /// <summary>Changes a stored checkpoint payload behind the store's back, as a disk fault or a person would.</summary>
    protected abstract Task TamperAsync(string stream, long version, Func<string, string> change);

    [Fact]
    public async Task A_checkpoint_changed_by_hand_is_reported_corrupt_and_repaired_from_the_previous_version()
    {
        await using var store = await CreateStoreAsync();
        var history = new CheckpointHistory(store, SystemClock.Instance);
        await history.AppendAsync(OrdersCheckpoint(1, "cursor:100"), Ct);
        await history.AppendAsync(OrdersCheckpoint(2, "cursor:200"), Ct);
        await TamperAsync("sync/orders", 2, payload => payload.Replace("cursor:200", "cursor:900", StringComparison.Ordinal));

        var listed = await history.ListAsync("sync/orders", 10, Ct);
        var loaded = await history.LoadAsync("sync/orders", new RecoveryOptions(ValidateOnStart: true, AutoRepair: true, ResetOnCorruption: false), Ct);

        Assert.Contains("checksum mismatch", listed[0].Problem, StringComparison.Ordinal);
        Assert.Null(listed[1].Problem);
        Assert.NotNull(loaded.Checkpoint);
        Assert.Equal(3, loaded.Checkpoint.Version);
        Assert.Equal(Position.Parse("cursor:100"), loaded.Checkpoint.Position);
        Assert.Contains("version 2", Assert.Single(loaded.Warnings), StringComparison.Ordinal);
        Assert.Equal([3L, 2L, 1L], (await store.ReadHistoryAsync("sync/orders", 10, Ct)).Select(h => h.Version));
        Assert.Equal(loaded.Checkpoint, (await history.LoadAsync("sync/orders", new RecoveryOptions(true, false, false), Ct)).Checkpoint);
    }

    [Fact]
    public async Task Without_auto_repair_a_truncated_checkpoint_stops_the_load_naming_stream_and_version()
    {
        await using var store = await CreateStoreAsync();
        var history = new CheckpointHistory(store, SystemClock.Instance);
        await history.AppendAsync(OrdersCheckpoint(1, "cursor:100"), Ct);
        await history.AppendAsync(OrdersCheckpoint(2, "cursor:200"), Ct);
        await TamperAsync("sync/orders", 2, payload => payload[..40]);

        var error = await Assert.ThrowsAsync<CheckpointCorruptException>(
            () => history.LoadAsync("sync/orders", new RecoveryOptions(ValidateOnStart: true, AutoRepair: false, ResetOnCorruption: false), Ct));

        Assert.Contains("'sync/orders'", error.Message, StringComparison.Ordinal);
        Assert.Contains("version 2", error.Message, StringComparison.Ordinal);
        Assert.Equal(2, (await store.ReadHistoryAsync("sync/orders", 10, Ct)).Count);
    }

    /// <summary>A valid checkpoint of <c>sync/orders</c> for the corruption tests.</summary>
    protected static Checkpoint OrdersCheckpoint(long version, string position) => new(
        "sync/orders",
        "orders",
        version,
        Position.Parse(position),
        "cursor",
        T0,
        T0 - Duration.FromSeconds(5),
        "fp-1",
        CheckpointCounters.Zero.Add(version * 10, version * 10, 0, 0, 0),
        Epoch: 1,
        RunId: "run-1",
        CreatedAt: T0 + Duration.FromSeconds(version));

    [Fact]
    public async Task Appended_versions_are_read_back_newest_first_with_their_exact_payload()
    {
        await using var store = await CreateStoreAsync();
        await store.AppendAsync(Stored("sync/orders", 1, T0), Ct);
        await store.AppendAsync(Stored("sync/orders", 2, T0 + Duration.FromMilliseconds(1500)), Ct);
        await store.AppendAsync(Stored("sync/orders", 3, T0 + Duration.FromMinutes(1)), Ct);

        var history = await store.ReadHistoryAsync("sync/orders", 10, Ct);

        Assert.Equal([3L, 2L, 1L], history.Select(h => h.Version));
        Assert.Equal(Stored("sync/orders", 3, T0 + Duration.FromMinutes(1)), history[0]);
        Assert.Equal(Stored("sync/orders", 2, T0 + Duration.FromMilliseconds(1500)), history[1]);
        Assert.Equal(Stored("sync/orders", 1, T0), history[2]);
    }

    [Fact]
    public async Task Reading_history_returns_at_most_limit_newest_versions()
    {
        await using var store = await CreateStoreAsync();
        for (var version = 1; version <= 12; version++)
        {
            await store.AppendAsync(Stored("sync/orders", version, T0), Ct);
        }

        Assert.Equal([12L, 11L, 10L], (await store.ReadHistoryAsync("sync/orders", 3, Ct)).Select(h => h.Version));
        Assert.Equal([12L], (await store.ReadHistoryAsync("sync/orders", 1, Ct)).Select(h => h.Version));
        Assert.Equal(12, (await store.ReadHistoryAsync("sync/orders", int.MaxValue, Ct)).Count);
    }

    [Fact]
    public async Task A_stream_without_checkpoints_has_an_empty_history()
    {
        await using var store = await CreateStoreAsync();

        Assert.Empty(await store.ReadHistoryAsync("sync/never", 10, Ct));
        Assert.Empty(await store.ListStreamsAsync(Ct));
    }

    [Fact]
    public async Task Appending_an_existing_version_throws_StateConflictException_and_keeps_the_original()
    {
        await using var store = await CreateStoreAsync();
        await store.AppendAsync(Stored("sync/orders", 1, T0, "original"), Ct);

        await Assert.ThrowsAsync<StateConflictException>(() => store.AppendAsync(Stored("sync/orders", 1, T0, "intruder"), Ct));

        var history = await store.ReadHistoryAsync("sync/orders", 10, Ct);
        Assert.Equal("original", Assert.Single(history).Payload);
    }

    [Fact]
    public async Task Versions_are_per_stream()
    {
        await using var store = await CreateStoreAsync();
        await store.AppendAsync(Stored("sync/orders", 1, T0), Ct);
        await store.AppendAsync(Stored("sync/customers", 1, T0), Ct);

        Assert.Single(await store.ReadHistoryAsync("sync/orders", 10, Ct));
        Assert.Single(await store.ReadHistoryAsync("sync/customers", 10, Ct));
    }

    [Fact]
    public async Task Every_stream_with_a_checkpoint_is_listed_by_its_exact_name()
    {
        // Names a file store must escape and a database must keep apart.
        string[] streams = ["sync/orders", "sync/Orders", "sync/order items", "sync/100%", "sync/ünïcödé", "other/a/b", "sync/..", ".", "a_b", "a%2Fb"];
        await using var store = await CreateStoreAsync();
        foreach (var stream in streams)
        {
            await store.AppendAsync(Stored(stream, 1, T0), Ct);
        }

        var listed = await store.ListStreamsAsync(Ct);

        Assert.Equal(streams.Order(StringComparer.Ordinal), listed.Order(StringComparer.Ordinal));
        foreach (var stream in streams)
        {
            Assert.Equal(Stored(stream, 1, T0), Assert.Single(await store.ReadHistoryAsync(stream, 10, Ct)));
        }
    }

    [Fact]
    public async Task Deleting_a_stream_removes_its_whole_history_and_nothing_else()
    {
        await using var store = await CreateStoreAsync();
        await store.AppendAsync(Stored("sync/orders", 1, T0), Ct);
        await store.AppendAsync(Stored("sync/orders", 2, T0), Ct);
        await store.AppendAsync(Stored("sync/customers", 1, T0), Ct);

        await store.DeleteStreamAsync("sync/orders", Ct);

        Assert.Empty(await store.ReadHistoryAsync("sync/orders", 10, Ct));
        Assert.Equal(["sync/customers"], await store.ListStreamsAsync(Ct));
        Assert.Single(await store.ReadHistoryAsync("sync/customers", 10, Ct));
    }

    [Fact]
    public async Task Trimming_a_history_removes_the_versions_below_the_given_one_and_nothing_else()
    {
        await using var store = await CreateStoreAsync();
        for (var version = 1; version <= 5; version++)
        {
            await store.AppendAsync(Stored("sync/orders", version, T0, $"v{version}"), Ct);
        }

        await store.AppendAsync(Stored("sync/customers", 1, T0), Ct);

        await store.TrimHistoryAsync("sync/orders", 4, Ct);
        await store.TrimHistoryAsync("sync/never", 4, Ct);

        Assert.Equal([5L, 4L], (await store.ReadHistoryAsync("sync/orders", 10, Ct)).Select(h => h.Version));
        Assert.Equal("v4", (await store.ReadHistoryAsync("sync/orders", 10, Ct))[1].Payload);
        Assert.Single(await store.ReadHistoryAsync("sync/customers", 10, Ct));
        await store.AppendAsync(Stored("sync/orders", 6, T0), Ct);
        Assert.Equal(6, (await store.ReadHistoryAsync("sync/orders", 1, Ct))[0].Version);
    }

    [Fact]
    public async Task A_deleted_stream_starts_again_at_version_one()
    {
        await using var store = await CreateStoreAsync();
        await store.AppendAsync(Stored("sync/orders", 1, T0, "before"), Ct);
        await store.DeleteStreamAsync("sync/orders", Ct);
        await store.DeleteStreamAsync("sync/never", Ct);

        await store.AppendAsync(Stored("sync/orders", 1, T0, "after"), Ct);

        Assert.Equal("after", Assert.Single(await store.ReadHistoryAsync("sync/orders", 10, Ct)).Payload);
    }

    [Fact]
    public async Task An_equal_dead_letter_increments_the_attempt_count_and_keeps_the_latest_failure()
    {
        await using var store = await CreateStoreAsync();
        var letter = Letter("sync/orders", "42", """{"id":42,"total":"x"}""", T0);
        await store.AddDeadLettersAsync([letter], Ct);
        await store.AddDeadLettersAsync([letter with { Reason = "again", FailedAt = T0 + Duration.FromHours(1) }], Ct);
        await store.AddDeadLettersAsync([letter, letter], Ct);

        var stored = Assert.Single(await store.ReadDeadLettersAsync(null, 100, Ct));

        Assert.Equal(letter with { Attempts = 4, FailedAt = T0 + Duration.FromHours(1) }, stored);
        await store.AddDeadLettersAsync([letter with { Reason = "replayed: still invalid", ErrorClass = ErrorClass.Transient }], Ct);
        stored = Assert.Single(await store.ReadDeadLettersAsync(null, 100, Ct));
        Assert.Equal(("replayed: still invalid", ErrorClass.Transient, 5), (stored.Reason, stored.ErrorClass, stored.Attempts));
    }

    [Fact]
    public async Task Removed_dead_letters_leave_the_queue_and_others_stay()
    {
        await using var store = await CreateStoreAsync();
        var fixedOne = Letter("sync/orders", "42", """{"id":42}""", T0);
        var sameRecordOtherContent = fixedOne with { RawRecord = """{"id":42,"v":2}""" };
        var other = Letter("sync/customers", "42", """{"id":42}""", T0);
        await store.AddDeadLettersAsync([fixedOne, sameRecordOtherContent, other], Ct);

        var removed = await store.RemoveDeadLettersAsync([fixedOne with { Reason = "whatever", Attempts = 9 }, Letter("sync/orders", "404", "{}", T0)], Ct);

        Assert.Equal(1, removed);
        var left = await store.ReadDeadLettersAsync(null, 100, Ct);
        Assert.Equal(2, left.Count);
        Assert.DoesNotContain(left, l => l.Id == fixedOne.Id);
        Assert.Equal(0, await store.RemoveDeadLettersAsync([], Ct));
    }

    [Fact]
    public async Task Dead_letters_differing_in_stream_record_or_raw_content_are_kept_apart()
    {
        await using var store = await CreateStoreAsync();
        var letter = Letter("sync/orders", "42", """{"id":42}""", T0);
        await store.AddDeadLettersAsync(
            [
                letter,
                letter with { RawRecord = """{"id":42,"fixed":false}""" },
                letter with { RecordId = "43" },
                letter with { Stream = "sync/customers" },
            ],
            Ct);

        var stored = await store.ReadDeadLettersAsync(null, 100, Ct);

        Assert.Equal(4, stored.Count);
        Assert.All(stored, s => Assert.Equal(1, s.Attempts));
    }

    [Fact]
    public async Task Dead_letters_are_filtered_by_stream_and_returned_oldest_first()
    {
        await using var store = await CreateStoreAsync();
        var newer = Letter("sync/orders", "2", "{}", T0 + Duration.FromMilliseconds(500));
        var older = Letter("sync/orders", "1", "{}", T0);
        var newest = Letter("sync/orders", "3", "{}", T0 + Duration.FromSeconds(1));
        var elsewhere = Letter("sync/customers", "1", "{}", T0 + Duration.FromMilliseconds(750));
        await store.AddDeadLettersAsync([newer, elsewhere], Ct);
        await store.AddDeadLettersAsync([newest, older], Ct);

        Assert.Equal([older, newer, newest], await store.ReadDeadLettersAsync("sync/orders", 100, Ct));
        Assert.Equal([older, newer], await store.ReadDeadLettersAsync("sync/orders", 2, Ct));
        Assert.Equal([elsewhere], await store.ReadDeadLettersAsync("sync/customers", 100, Ct));
        Assert.Equal([older, newer, elsewhere, newest], await store.ReadDeadLettersAsync(null, 100, Ct));
        Assert.Empty(await store.ReadDeadLettersAsync("sync/never", 100, Ct));
    }

    [Fact]
    public async Task Runs_are_returned_newest_first_up_to_the_limit()
    {
        await using var store = await CreateStoreAsync();
        var first = new RunRecord("run-1", T0, "succeeded", """{"tables":2}""");
        var third = new RunRecord("run-3", T0 + Duration.FromSeconds(1), "failed", """{ "error": "boom\n" }""");
        var second = new RunRecord("run-2", T0 + Duration.FromMilliseconds(100), "succeeded", "{}");
        await store.AppendRunAsync(first, Ct);
        await store.AppendRunAsync(third, Ct);
        await store.AppendRunAsync(second, Ct);

        Assert.Equal([third, second, first], await store.ReadRunsAsync(10, Ct));
        Assert.Equal([third, second], await store.ReadRunsAsync(2, Ct));
        Assert.Equal(["run-3", "run-2", "run-1"], await store.ReadRunIdsAsync(10, Ct));
        Assert.Equal(["run-3"], await store.ReadRunIdsAsync(1, Ct));
        Assert.Empty(await store.ReadRunIdsAsync(0, Ct));
    }

    [Fact]
    public async Task Run_ids_come_in_the_order_of_the_runs_themselves()
    {
        await using var store = await CreateStoreAsync();
        // Ids that sort against their times, ties on the time, and ids with characters a file name must escape.
        string[] ids = ["z-9", "a-1", "run/1", "m 5", "é|2", "b%3", "y-8", "c-2"];
        for (var i = 0; i < ids.Length; i++)
        {
            await store.AppendRunAsync(new RunRecord(ids[i], T0 + Duration.FromSeconds(i / 3), "completed", "{}"), Ct);
        }

        for (var limit = 0; limit <= ids.Length + 1; limit++)
        {
            Assert.Equal((await store.ReadRunsAsync(limit, Ct)).Select(r => r.RunId), await store.ReadRunIdsAsync(limit, Ct));
        }
    }

    [Fact]
    public async Task Only_the_newest_runs_are_kept()
    {
        await using var store = await CreateStoreAsync();
        for (var i = 0; i < RunRecord.Kept + 2; i++)
        {
            await store.AppendRunAsync(new RunRecord($"run-{i:D4}", T0 + Duration.FromSeconds(i), "completed", "{}"), Ct);
        }

        var ids = await store.ReadRunIdsAsync(RunRecord.Kept + 10, Ct);

        Assert.Equal(RunRecord.Kept, ids.Count);
        Assert.Equal($"run-{RunRecord.Kept + 1:D4}", ids[0]);
        Assert.Equal("run-0002", ids[^1]);
        Assert.Equal(RunRecord.Kept, (await store.ReadRunsAsync(RunRecord.Kept + 10, Ct)).Count);
    }

    [Fact]
    public async Task Storing_a_run_again_replaces_its_summary()
    {
        await using var store = await CreateStoreAsync();
        await store.AppendRunAsync(new RunRecord("run/1", T0, "running", "{}"), Ct);
        var final = new RunRecord("run/1", T0 + Duration.FromMinutes(5), "succeeded", """{"done":true}""");

        await store.AppendRunAsync(final, Ct);

        Assert.Equal([final], await store.ReadRunsAsync(10, Ct));
        Assert.Equal(["run/1"], await store.ReadRunIdsAsync(10, Ct));
    }

    [Fact]
    public async Task Initializing_again_keeps_the_state()
    {
        await using var store = await CreateStoreAsync();
        await store.AppendAsync(Stored("sync/orders", 1, T0), Ct);

        await store.InitializeAsync(Ct);

        Assert.Single(await store.ReadHistoryAsync("sync/orders", 10, Ct));
    }

    [Fact]
    public async Task State_survives_reopening_the_store()
    {
        var letter = Letter("sync/orders", "7", "{\"id\":7}", T0);
        var run = new RunRecord("run-1", T0, "succeeded", "{}");
        await using (var store = await CreateStoreAsync())
        {
            await store.AppendAsync(Stored("sync/orders", 1, T0), Ct);
            await store.AppendAsync(Stored("sync/orders", 2, T0 + Duration.FromSeconds(1)), Ct);
            await store.AddDeadLettersAsync([letter], Ct);
            await store.AppendRunAsync(run, Ct);
        }

        await using var reopened = await ReopenAsync();

        Assert.Equal(["sync/orders"], await reopened.ListStreamsAsync(Ct));
        Assert.Equal(
            [Stored("sync/orders", 2, T0 + Duration.FromSeconds(1)), Stored("sync/orders", 1, T0)],
            await reopened.ReadHistoryAsync("sync/orders", 10, Ct));
        Assert.Equal([letter], await reopened.ReadDeadLettersAsync(null, 10, Ct));
        Assert.Equal([run], await reopened.ReadRunsAsync(10, Ct));
        await Assert.ThrowsAsync<StateConflictException>(() => reopened.AppendAsync(Stored("sync/orders", 2, T0), Ct));
    }

    [Fact]
    public async Task Two_instances_racing_for_the_same_version_have_exactly_one_winner()
    {
        await using var left = await CreateStoreAsync();
        await using var right = await ReopenAsync();

        for (var version = 1; version <= 25; version++)
        {
            using var start = new ManualResetEventSlim();
            var attempts = new[] { (Store: left, Payload: $"left-{version}"), (Store: right, Payload: $"right-{version}") }
                .Select(a => Task.Run(
                    async () =>
                    {
                        start.Wait(Ct);
                        try
                        {
                            await a.Store.AppendAsync(Stored("sync/orders", version, T0, a.Payload), Ct);
                            return a.Payload;
                        }
                        catch (StateConflictException)
                        {
                            return null;
                        }
                    },
                    Ct))
                .ToList();
            start.Set();

            var winners = (await Task.WhenAll(attempts)).OfType<string>().ToList();

            var winner = Assert.Single(winners);
            Assert.Equal(winner, (await left.ReadHistoryAsync("sync/orders", 1, Ct))[0].Payload);
        }

        Assert.Equal(25, (await right.ReadHistoryAsync("sync/orders", 100, Ct)).Count);
    }

    protected static StoredCheckpoint Stored(string stream, long version, Instant savedAt, string? payload = null) =>
        new(stream, version, payload ?? $$"""{"stream":"{{stream}}","version":{{version}},"note":"ünï\ncödé"}""", savedAt);

    protected static DeadLetter Letter(string stream, string recordId, string raw, Instant failedAt) =>
        new(stream, "orders", recordId, raw, "value too long for column total", ErrorClass.Permanent, new Position("cursor", "2025-03-14T09:00:00Z|" + recordId), failedAt);

    [Fact]
    public async Task The_conflict_log_is_append_only_in_order_and_skips_entries_already_logged()
    {
        await using var store = await CreateStoreAsync();
        var detected = new ConflictLogRecord("conflict_a:detected", "conflict_a", "sync/crm/customers", "detected", T0, """{"conflict_id":"conflict_a","record_id":"1"}""");
        var resolved = new ConflictLogRecord("conflict_a:resolved:1", "conflict_a", "sync/crm/customers", "resolved", T0 + Duration.FromSeconds(1), """{"resolution":{"strategy":"last_write_wins"}}""");
        var other = new ConflictLogRecord("conflict_b:detected", "conflict_b", "sync/shop/customers", "detected", T0, """{"conflict_id":"conflict_b","record_id":"2"}""");

        await store.AppendConflictLogAsync([detected, resolved], Ct);
        await store.AppendConflictLogAsync([detected with { Json = "{}" }, other], Ct);
        await store.AppendConflictLogAsync([], Ct);

        await using var reopened = await ReopenAsync();
        Assert.Equal([detected, resolved, other], await reopened.ReadConflictLogAsync(null, 100, Ct));
        Assert.Equal([detected, resolved], await reopened.ReadConflictLogAsync("conflict_a", 100, Ct));
        Assert.Equal([detected], await reopened.ReadConflictLogAsync(null, 1, Ct));
        Assert.Empty(await reopened.ReadConflictLogAsync("conflict_none", 100, Ct));
    }

    [Fact]
    public async Task The_review_queue_keeps_one_entry_per_conflict_oldest_first_until_it_is_removed()
    {
        await using var store = await CreateStoreAsync();
        var later = new ConflictReview("conflict_b", "sync/shop/customers", "customers", "2", "0102", T0 + Duration.FromMinutes(1), """{"conflict_id":"conflict_b"}""");
        var first = new ConflictReview("conflict_a", "sync/crm/customers", "customers", "1", "0101", T0, """{"conflict_id":"conflict_a"}""");

        await store.AddConflictReviewsAsync([later, first], Ct);
        await store.AddConflictReviewsAsync([first with { RecordJson = """{"conflict_id":"conflict_a","v":2}""" }], Ct);

        await using var reopened = await ReopenAsync();
        var queued = await reopened.ReadConflictReviewsAsync(null, 100, Ct);
        Assert.Equal(["conflict_a", "conflict_b"], queued.Select(r => r.ConflictId));
        Assert.Equal(first with { RecordJson = """{"conflict_id":"conflict_a","v":2}""" }, queued[0]);
        Assert.Equal(later, Assert.Single(await reopened.ReadConflictReviewsAsync("conflict_b", 10, Ct)));
        Assert.True(await reopened.RemoveConflictReviewAsync("conflict_a", Ct));
        Assert.False(await reopened.RemoveConflictReviewAsync("conflict_a", Ct));
        Assert.Equal([later], await reopened.ReadConflictReviewsAsync(null, 100, Ct));
        Assert.Empty(await reopened.ReadConflictReviewsAsync("conflict_a", 10, Ct));
    }

    [Fact]
    public async Task A_state_export_carries_the_conflict_log_and_review_queue_both_ways_and_a_reviewed_conflict_is_not_queued_again()
    {
        var config = Tests.Config.ConfigText.Parse(Tests.Config.ConfigText.Minimal);
        var folder = Path.Combine(Path.GetTempPath(), "deltasync-tests", "export-conflicts-" + Guid.NewGuid().ToString("N"));
        try
        {
            await using var store = await CreateStoreAsync();
            await store.AppendAsync(new StoredCheckpoint("sync/crm/customers", 1, "{\"v\":1}", T0), Ct);
            List<ConflictLogRecord> log =
            [
                new("conflict_a:detected", "conflict_a", "sync/crm/customers", "detected", T0, """{"conflict_id":"conflict_a","record_id":"1"}"""),
                new("conflict_a:resolved:0011", "conflict_a", "sync/crm/customers", "resolved", T0, """{"conflict_id":"conflict_a","resolution":{"strategy":"manual_review"}}"""),
                new("conflict_b:detected", "conflict_b", "sync/shop/customers", "detected", T0 + Duration.FromSeconds(1), """{"conflict_id":"conflict_b","record_id":"2"}"""),
            ];
            List<ConflictReview> reviews =
            [
                new("conflict_a", "sync/crm/customers", "customers", "1", "0101", T0, """{"conflict_id":"conflict_a"}"""),
                new("conflict_b", "sync/shop/customers", "customers", "2", "0102", T0 + Duration.FromSeconds(1), """{"conflict_id":"conflict_b"}"""),
            ];
            await store.AppendConflictLogAsync(log, Ct);
            await store.AddConflictReviewsAsync(reviews, Ct);

            // Out of this store into a file store: everything arrives.
            var export = await new StateAdmin(config, store, SystemClock.Instance).ExportAsync(Ct);
            Assert.Equal(2, System.Text.Json.Nodes.JsonNode.Parse(export)!["export_version"]!.GetValue<int>());
            await using var other = new FileStateStore(folder);
            await other.InitializeAsync(Ct);
            var otherAdmin = new StateAdmin(config, other, SystemClock.Instance);
            var imported = await otherAdmin.ImportAsync(export, replace: false, Ct);
            Assert.Equal((3, 2), (imported.ConflictLogEntries, imported.ConflictReviews));
            Assert.Equal(log, await other.ReadConflictLogAsync(null, 100, Ct));
            Assert.Equal(reviews, await other.ReadConflictReviewsAsync(null, 100, Ct));

            // There a reviewer settles conflict_b; its export, imported back into this store, takes it out of the queue.
            var review = new ConflictLogRecord("conflict_b:resolved:review:42", "conflict_b", "sync/shop/customers", "resolved", T0 + Duration.FromMinutes(5), """{"conflict_id":"conflict_b","resolution":{"resolved_by":"ops"}}""");
            await other.AppendConflictLogAsync([review], Ct);
            await other.RemoveConflictReviewAsync("conflict_b", Ct);
            var back = await new StateAdmin(config, store, SystemClock.Instance).ImportAsync(await otherAdmin.ExportAsync(Ct), replace: false, Ct);
            Assert.Equal(1, back.ConflictLogEntries);
            Assert.Equal([.. log, review], await store.ReadConflictLogAsync(null, 100, Ct));
            Assert.Equal([reviews[0]], await store.ReadConflictReviewsAsync(null, 100, Ct));

            // The first export again (conflict_b still pending in it): the log shows it settled, so it is not queued again.
            var again = await new StateAdmin(config, store, SystemClock.Instance).ImportAsync(export, replace: true, Ct);
            Assert.Equal((0, 1, 1), (again.ConflictLogEntries, again.ConflictReviews, again.ConflictReviewsSettled));
            Assert.Equal([reviews[0]], await store.ReadConflictReviewsAsync(null, 100, Ct));
            Assert.Equal(4, (await store.ReadConflictLogAsync(null, 100, Ct)).Count);
        }
        finally
        {
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, recursive: true);
            }
        }
    }
}
