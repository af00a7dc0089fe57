using System.Globalization;
using DeltaSync.Core.Capture;
using NodaTime;

namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>Timestamp CDC end to end: ties, late commits, clock bounds, bad and NULL timestamps (DESIGN.md invariants 1 and 4).</summary>
public sealed class TimestampCursorSyncTests : IDisposable
{
    private const string Table = "{name: items, cdc_method: timestamp}";

    private readonly SyncWorkspace _workspace = new();
    private readonly ItemsTable _items;

    public TimestampCursorSyncTests()
    {
        _items = new ItemsTable(_workspace.Source);
        _items.Create();
    }

    [Fact]
    public async Task Passes_with_nothing_to_write_do_not_report_a_batch_as_already_applied()
    {
        var clock = new ManualClock(Instant.FromUtc(2026, 3, 1, 12, 0));
        _items.Now = () => clock.Now;
        _items.Insert(1, updatedAt: ItemsTable.Timestamp(clock.Now - Duration.FromDays(2)));
        var config = _workspace.Configure(SyncYaml.Config(Table));

        var reports = new List<Core.Reporting.SyncReport>();
        for (var pass = 0; pass < 3; pass++)
        {
            reports.Add(await _workspace.RunCompletedAsync(config, clock: clock));
        }

        // Two idle passes repeat one empty batch's positions; that is not a re-sent batch worth a note.
        Assert.Equal(1, reports[0].Statistics.RecordsInserted);
        Assert.All(reports.Skip(1), r => Assert.Equal(0, SyncWorkspace.Writes(r)));
        Assert.All(reports, r => Assert.DoesNotContain(r.Warnings, w => w.Contains("idempotency key", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Rows_sharing_one_updated_at_across_batch_boundaries_are_each_synced_once()
    {
        var clock = new ManualClock(Instant.FromUtc(2026, 3, 1, 12, 0));
        _items.Now = () => clock.Now;
        var config = _workspace.Configure(SyncYaml.Config(Table, batchSize: 7, blocks: "cdc: {timestamp: {tolerance_window: 0s}}"));
        await _workspace.RunCompletedAsync(config, clock: clock);

        // 25 rows at one instant; the clock moves on, so the cursor settles on the last of them: (t, id 25).
        var tie = ItemsTable.Timestamp(clock.Now);
        for (var id = 1; id <= 25; id++)
        {
            _items.Insert(id, updatedAt: tie);
        }

        clock.Advance(Duration.FromMinutes(1));
        var first = await _workspace.RunCompletedAsync(config, clock: clock);

        Assert.Equal(25, first.Statistics.RecordsInserted);
        Assert.Equal(25, first.Statistics.RecordsProcessed);
        _workspace.AssertSynced(ItemsTable.Name, "id");

        // More rows at the same instant with larger keys: after the cursor's key, so read; nothing before it is read again.
        for (var id = 26; id <= 30; id++)
        {
            _items.Insert(id, updatedAt: tie);
        }

        clock.Advance(Duration.FromMinutes(1));
        var second = await _workspace.RunCompletedAsync(config, clock: clock);

        Assert.Equal(5, second.Statistics.RecordsInserted);
        Assert.Equal(5, second.Statistics.RecordsProcessed);
        _workspace.AssertSynced(ItemsTable.Name, "id");
        var idle = await _workspace.RunCompletedAsync(config, clock: clock);
        Assert.Equal(0, idle.Statistics.RecordsProcessed);
    }

    [Fact]
    public async Task Rows_sharing_one_updated_at_in_an_initial_snapshot_are_each_inserted_once()
    {
        var tie = ItemsTable.Timestamp(SystemClock.Instance.GetCurrentInstant() - Duration.FromMinutes(1));
        for (var id = 1; id <= 25; id++)
        {
            _items.Insert(id, updatedAt: tie);
        }

        var config = _workspace.Configure(SyncYaml.Config(Table, batchSize: 7));

        var report = await _workspace.RunCompletedAsync(config);

        Assert.Equal(25, report.Statistics.RecordsInserted);
        _workspace.AssertSynced(ItemsTable.Name, "id");
        Assert.Equal(0, SyncWorkspace.Writes(await _workspace.RunCompletedAsync(config)));
    }

    [Fact]
    public async Task A_late_commit_inside_the_tolerance_window_is_synced()
    {
        var clock = new ManualClock(Instant.FromUtc(2026, 3, 1, 12, 0));
        _items.Now = () => clock.Now;
        var config = _workspace.Configure(SyncYaml.Config(Table, batchSize: 4, blocks: "cdc: {timestamp: {tolerance_window: 5 minutes}}"));
        await _workspace.RunCompletedAsync(config, clock: clock);
        var start = clock.Now;
        for (var id = 1; id <= 10; id++)
        {
            _items.Insert(id, updatedAt: ItemsTable.Timestamp(start + Duration.FromSeconds(id)));
        }

        // Much later: the cursor moves onto the newest row itself, (start + 10 s, id 10).
        clock.Advance(Duration.FromHours(1));
        Assert.Equal(10, (await _workspace.RunCompletedAsync(config, clock: clock)).Statistics.RecordsInserted);
        var newest = start + Duration.FromSeconds(10);

        // A transaction that stamped its row 2 minutes before the newest synced row commits only now.
        _items.Insert(11, updatedAt: ItemsTable.Timestamp(newest - Duration.FromMinutes(2)));
        clock.Advance(Duration.FromMinutes(1));
        var report = await _workspace.RunCompletedAsync(config, clock: clock);

        Assert.Equal(1, report.Statistics.RecordsInserted);
        _workspace.AssertSynced(ItemsTable.Name, "id");
    }

    [Fact]
    public async Task A_late_commit_inside_the_tolerance_window_is_synced_on_the_system_clock()
    {
        var now = SystemClock.Instance.GetCurrentInstant();
        for (var id = 1; id <= 10; id++)
        {
            _items.Insert(id, updatedAt: ItemsTable.Timestamp(now - Duration.FromSeconds(60 - id)));
        }

        var config = _workspace.Configure(SyncYaml.Config(Table, blocks: "cdc: {timestamp: {tolerance_window: 5 minutes}}"));
        await _workspace.RunCompletedAsync(config);
        await _workspace.RunCompletedAsync(config);

        _items.Insert(11, updatedAt: ItemsTable.Timestamp(now - Duration.FromSeconds(50) - Duration.FromMinutes(2)));
        var report = await _workspace.RunCompletedAsync(config);

        Assert.Equal(1, report.Statistics.RecordsInserted);
        _workspace.AssertSynced(ItemsTable.Name, "id");
    }

    [Fact]
    public async Task Rows_stamped_in_the_future_are_applied_but_the_cursor_stays_behind_the_source_clock()
    {
        var now = SystemClock.Instance.GetCurrentInstant();
        _items.InsertMany(1, 5);
        _items.Insert(6, updatedAt: ItemsTable.Timestamp(now + Duration.FromHours(1)));
        var config = _workspace.Configure(SyncYaml.Config(Table, batchSize: 3, blocks: "cdc: {timestamp: {safety_margin: 5s}}"));

        var initial = await _workspace.RunCompletedAsync(config);
        AssertCursorNotAhead(await _workspace.NewestCheckpointAsync(ItemsTable.Name));

        _items.Insert(7, updatedAt: ItemsTable.Timestamp(now + Duration.FromHours(1)));
        _items.Update(3, "moved ahead", "x", ItemsTable.Timestamp(now + Duration.FromHours(1) + Duration.FromSeconds(1)));
        _items.Insert(8);
        var incremental = await _workspace.RunCompletedAsync(config);

        Assert.Equal(6, initial.Statistics.RecordsInserted);
        Assert.Equal(2, incremental.Statistics.RecordsInserted);
        Assert.Equal(1, incremental.Statistics.RecordsUpdated);
        _workspace.AssertSynced(ItemsTable.Name, "id");
        AssertCursorNotAhead(await _workspace.NewestCheckpointAsync(ItemsTable.Name));
        var idle = await _workspace.RunCompletedAsync(config);
        Assert.Equal(0, SyncWorkspace.Writes(idle));
        AssertCursorNotAhead(await _workspace.NewestCheckpointAsync(ItemsTable.Name));
    }

    [Fact]
    public async Task Unparseable_timestamps_are_dead_lettered_naming_the_field_and_the_rest_syncs()
    {
        _items.InsertMany(1, 4);
        _items.Insert(5, updatedAt: "not a date");
        _items.Insert(6, updatedAt: "2026-02-30 10:00:00");
        var config = _workspace.Configure(SyncYaml.Config(Table, batchSize: 2));

        var report = await _workspace.RunAsync(config);

        Assert.Equal("partial", report.Metadata.Status);
        Assert.Equal(3, report.ExitCode);
        Assert.Equal(4, report.Statistics.RecordsInserted);
        Assert.Equal(2, report.Statistics.RecordsDeadLettered);
        await using (var state = await _workspace.OpenStateAsync())
        {
            var letters = await state.ReadDeadLettersAsync(SyncWorkspace.Stream(ItemsTable.Name), 100, CancellationToken.None);
            Assert.Equal(["5", "6"], letters.Select(l => l.RecordId).Order());
            Assert.All(letters, l => Assert.Contains("updated_at", l.Reason, StringComparison.Ordinal));
            Assert.Contains(letters, l => l.Reason.Contains("not a date", StringComparison.Ordinal));
            Assert.Contains(letters, l => l.Reason.Contains("2026-02-30", StringComparison.Ordinal));
            Assert.All(letters, l => Assert.Contains("\"id\":", l.RawRecord, StringComparison.Ordinal));
        }

        var columns = _workspace.Source.Columns(ItemsTable.Name);
        SyncWorkspace.AssertSameRows(_workspace.Source.Dump(ItemsTable.Name, columns, ["id"], "id <= 4"), _workspace.Destination.Dump(ItemsTable.Name, columns, ["id"]), ItemsTable.Name);

        // Later good rows still flow; a new bad one joins the queue.
        _items.InsertMany(7, 8);
        _items.Insert(9, updatedAt: "yesterday-ish");
        var next = await _workspace.RunAsync(config);

        Assert.Equal("partial", next.Metadata.Status);
        Assert.Equal(2, next.Statistics.RecordsInserted);
        SyncWorkspace.AssertSameRows(_workspace.Source.Dump(ItemsTable.Name, columns, ["id"], "id NOT IN (5, 6, 9)"), _workspace.Destination.Dump(ItemsTable.Name, columns, ["id"]), ItemsTable.Name);
        await using (var state = await _workspace.OpenStateAsync())
        {
            var letters = await state.ReadDeadLettersAsync(SyncWorkspace.Stream(ItemsTable.Name), 100, CancellationToken.None);
            Assert.Contains(letters, l => l.RecordId == "9" && l.Reason.Contains("updated_at", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task Rows_with_NULL_updated_at_are_synced_and_their_updates_are_found_by_row_hash()
    {
        _items.InsertMany(1, 3);
        _workspace.Source.Execute("INSERT INTO items (id, name, note, updated_at, seq) VALUES (4, 'no time', 1, NULL, 4), (5, 'no time either', NULL, NULL, 5)");
        var config = _workspace.Configure(SyncYaml.Config(Table, batchSize: 2));

        var initial = await _workspace.RunCompletedAsync(config);

        Assert.Equal(5, initial.Statistics.RecordsInserted);
        _workspace.AssertSynced(ItemsTable.Name, "id");

        _workspace.Source.Execute("UPDATE items SET name = 'still no time', note = x'00ff' WHERE id = 4");
        var update = await _workspace.RunCompletedAsync(config);

        Assert.Equal(1, update.Statistics.RecordsUpdated);
        Assert.Equal(0, update.Statistics.RecordsInserted);
        Assert.Contains(update.Warnings, w => w.Contains("NULL updated_at", StringComparison.Ordinal));
        _workspace.AssertSynced(ItemsTable.Name, "id");
        Assert.Equal(0, SyncWorkspace.Writes(await _workspace.RunCompletedAsync(config)));
    }

    private static void AssertCursorNotAhead(Core.State.Checkpoint checkpoint)
    {
        var limit = SystemClock.Instance.GetCurrentInstant() - Duration.FromSeconds(5);
        Assert.True(CursorPosition.TryParse(checkpoint.Position, out var cursor), $"not a cursor position: {checkpoint.Position}");
        var epochMs = long.Parse(checkpoint.Position.Value.Split('|')[0], CultureInfo.InvariantCulture);
        Assert.Equal(cursor.Value, epochMs);
        Assert.True(
            epochMs <= limit.ToUnixTimeMilliseconds(),
            $"checkpoint {checkpoint.Version} cursor {Instant.FromUnixTimeMilliseconds(epochMs)} is past source now minus the safety margin ({limit})");
    }

    public void Dispose() => _workspace.Dispose();
}
