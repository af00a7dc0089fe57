using DeltaSync.Core.Capture;
using DeltaSync.Core.Reporting;
using NodaTime;
using NodaTime.Text;

namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>
/// The spec's timestamp and data-quality cases (issue 6), each set up in a real SQLite source and checked at the SQLite
/// destination: timezone mismatches, DST gaps and overlaps, leap seconds, precisions, NULL and missing timestamps,
/// invalid, duplicate, backdated and future timestamps.
/// </summary>
public sealed class TimestampEdgeCaseTests : IDisposable
{
    private const string Orders = "{name: orders, cdc_method: timestamp}";

    private readonly SyncWorkspace _workspace = new();

    public TimestampEdgeCaseTests()
    {
        // An untyped updated_at keeps whatever shape it is given: text, integer or real.
        _workspace.Source.Execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, label TEXT NOT NULL, created_at, updated_at)");
    }

    [Fact]
    public async Task TimezoneMismatch_zone_less_values_are_read_in_the_source_zone_and_copied_as_written()
    {
        // 12:00 UTC is 08:00 in New York (EDT): zone-less source values are New York wall-clock times.
        var clock = new ManualClock(Instant.FromUtc(2026, 6, 1, 12, 0));
        var config = Configure(blocks: "cdc: {timestamp: {timezone: America/New_York, tolerance_window: 0s, safety_margin: 5s}}");
        Insert(1, "2026-06-01 07:00:00");
        Insert(2, "2026-06-01 07:59:00");

        var first = await _workspace.RunCompletedAsync(config, clock: clock);

        Assert.Equal(2, first.Statistics.RecordsInserted);
        Assert.Equal(Instant.FromUtc(2026, 6, 1, 11, 59), Parse(first.Tables.Single().HighWaterMark));
        Assert.Equal(0, first.Tables.Single().RecordsFutureTimestamp);
        _workspace.AssertSynced("orders", "id");

        // A New York time after the previous run (08:10 EDT = 12:10 UTC): the cursor, kept in the zone's wall-clock
        // frame, was not ahead of it, so it is read; nothing earlier is read again.
        clock.Advance(Duration.FromMinutes(15));
        Insert(3, "2026-06-01 08:10:00");
        var second = await _workspace.RunCompletedAsync(config, clock: clock);

        Assert.Equal(1, second.Statistics.RecordsProcessed);
        Assert.Equal(1, second.Statistics.RecordsInserted);
        Assert.Equal(Instant.FromUtc(2026, 6, 1, 12, 10), Parse(second.Tables.Single().HighWaterMark));
        _workspace.AssertSynced("orders", "id");
        Assert.Equal(0, (await _workspace.RunCompletedAsync(config, clock: clock)).Statistics.RecordsProcessed);
    }

    [Fact]
    public async Task DstGap_a_skipped_wall_clock_time_is_shifted_forward_synced_and_warned_about()
    {
        var clock = new ManualClock(Instant.FromUtc(2026, 3, 29, 12, 0));
        var config = Configure(blocks: "cdc: {timestamp: {timezone: Europe/Berlin}}");
        Insert(1, "2026-03-29 01:30:00");
        Insert(2, "2026-03-29 02:30:00"); // Berlin skips 02:00-03:00 that night
        Insert(3, "2026-03-29 03:15:00");

        var report = await _workspace.RunCompletedAsync(config, clock: clock);

        Assert.Equal(3, report.Statistics.RecordsInserted);
        _workspace.AssertSynced("orders", "id");
        var table = report.Tables.Single();
        Assert.Equal(new DstResolvedReport(1, 0), table.DstResolved);
        Assert.Contains(report.Warnings, w => w.Contains("orders: 1 zone-less timestamp(s) fell in a DST gap or overlap in Europe/Berlin", StringComparison.Ordinal));
        // 02:30 does not exist that night; shifted forward by the hour it is 03:30 CEST, 01:30 UTC (later than row 3).
        Assert.Equal(Instant.FromUtc(2026, 3, 29, 1, 30), Parse(table.HighWaterMark));
    }

    [Fact]
    public async Task DstOverlap_a_repeated_wall_clock_time_takes_the_earlier_offset_and_is_warned_about()
    {
        var clock = new ManualClock(Instant.FromUtc(2026, 10, 25, 12, 0));
        var config = Configure(blocks: "cdc: {timestamp: {timezone: Europe/Berlin}}");
        Insert(1, "2026-10-25 01:00:00");
        Insert(2, "2026-10-25 02:15:00"); // Berlin lives 02:00-03:00 twice that night
        Insert(3, "2026-10-25 02:30:00.250");

        var report = await _workspace.RunCompletedAsync(config, clock: clock);

        Assert.Equal(3, report.Statistics.RecordsInserted);
        _workspace.AssertSynced("orders", "id");
        var table = report.Tables.Single();
        Assert.Equal(new DstResolvedReport(0, 2), table.DstResolved);
        Assert.Contains(report.Warnings, w => w.Contains("DST gap or overlap in Europe/Berlin", StringComparison.Ordinal) && w.Contains("overlap: 2, earlier offset", StringComparison.Ordinal));
        // The earlier offset (CEST, +02:00): 02:30:00.250 is 00:30:00.250 UTC, not 01:30:00.250.
        Assert.Equal(Instant.FromUtc(2026, 10, 25, 0, 30) + Duration.FromMilliseconds(250), Parse(table.HighWaterMark));
    }

    [Fact]
    public async Task LeapSecond_23_59_60_is_synced_in_order_and_not_dead_lettered()
    {
        var clock = new ManualClock(Instant.FromUtc(2016, 12, 31, 23, 0));
        var config = Configure(batchSize: 1, blocks: "cdc: {timestamp: {tolerance_window: 0s, safety_margin: 0s}}");
        await _workspace.RunCompletedAsync(config, clock: clock);

        // Keys in the opposite order of time: the cursor order comes from the timestamps alone.
        Insert(1, "2017-01-01T00:00:00Z");
        Insert(2, "2016-12-31T23:59:60.500Z");
        Insert(3, "2016-12-31 23:59:60");
        Insert(4, "2017-01-01T00:59:60+01:00");
        Insert(5, "2016-12-31T23:59:59.500Z");
        clock.Advance(Duration.FromHours(2));

        var report = await _workspace.RunCompletedAsync(config, clock: clock);

        Assert.Equal(5, report.Statistics.RecordsInserted);
        Assert.Equal(0, report.Statistics.RecordsDeadLettered);
        _workspace.AssertSynced("orders", "id");
        Assert.Equal(Instant.FromUtc(2017, 1, 1, 0, 0), Parse(report.Tables.Single().HighWaterMark));
        // The cursor ends on the newest row, 00:00:00 (id 1): the three leap-second rows sorted before it.
        var cursor = Cursor(await _workspace.NewestCheckpointAsync("orders"));
        Assert.Equal(Instant.FromUtc(2017, 1, 1, 0, 0).ToUnixTimeMilliseconds(), cursor.Value);
        Assert.Equal("1", cursor.Key?.ToString());
        Assert.Equal(0, (await _workspace.RunCompletedAsync(config, clock: clock)).Statistics.RecordsProcessed);
    }

    [Fact]
    public async Task PrecisionSecondsVsMilliseconds_one_instant_in_every_shape_is_one_tie_read_once()
    {
        var clock = new ManualClock(Instant.FromUtc(2026, 3, 1, 11, 0));
        var config = Configure(batchSize: 2, blocks: "cdc: {timestamp: {tolerance_window: 0s}}");
        await _workspace.RunCompletedAsync(config, clock: clock);

        // 2026-03-01T12:00:00Z as seconds text, milliseconds text, epoch seconds, epoch milliseconds (integer and text).
        Insert(1, "2026-03-01 12:00:00");
        Insert(2, "2026-03-01T12:00:00.000Z");
        Insert(3, 1772366400L);
        Insert(4, 1772366400000L);
        Insert(5, "1772366400");
        Insert(6, "2026-03-01T13:00:00.000+01:00");
        clock.Advance(Duration.FromHours(2));

        var first = await _workspace.RunCompletedAsync(config, clock: clock);

        Assert.Equal(6, first.Statistics.RecordsInserted);
        _workspace.AssertSynced("orders", "id");
        Assert.Equal(Instant.FromUtc(2026, 3, 1, 12, 0), Parse(first.Tables.Single().HighWaterMark));
        var idle = await _workspace.RunCompletedAsync(config, clock: clock);
        Assert.Equal(0, idle.Statistics.RecordsProcessed);

        // Later rows at the same instant with larger keys are read; nothing before the cursor is read again.
        Insert(7, 1772366400.0);
        Insert(8, "2026-03-01T12:00:00Z");
        var more = await _workspace.RunCompletedAsync(config, clock: clock);
        Assert.Equal(2, more.Statistics.RecordsProcessed);
        _workspace.AssertSynced("orders", "id");
    }

    [Fact]
    public async Task PrecisionNanoseconds_text_finer_than_the_cursor_neither_loops_nor_skips_at_batch_boundaries()
    {
        var clock = new ManualClock(Instant.FromUtc(2026, 3, 1, 11, 0));
        var config = Configure(batchSize: 1, blocks: "cdc: {timestamp: {tolerance_window: 0s}}");
        await _workspace.RunCompletedAsync(config, clock: clock);

        // Nanosecond text; the cursor keeps milliseconds (SQLite's own reading), so rows tie at the batch boundaries.
        Insert(3, "2026-03-01T12:00:00.123456789Z");
        Insert(1, "2026-03-01T12:00:00.123000001Z");
        Insert(2, "2026-03-01T12:00:00.123499999Z");
        Insert(5, "2026-03-01T12:00:00.123999999Z");
        Insert(4, "2026-03-01T12:00:00.124000000Z");
        clock.Advance(Duration.FromHours(2));

        var first = await _workspace.RunCompletedAsync(config, clock: clock);
        var second = await _workspace.RunCompletedAsync(config, clock: clock);

        Assert.Equal(5, first.Statistics.RecordsInserted);
        _workspace.AssertSynced("orders", "id"); // the text arrives with all nine digits
        Assert.Equal(0, second.Statistics.RecordsProcessed);
        Assert.Equal(0, SyncWorkspace.Writes(second));
        // The finest reading is kept as the commit time: nanoseconds of the newest row.
        Assert.Equal(Instant.FromUtc(2026, 3, 1, 12, 0) + Duration.FromNanoseconds(124_000_000), Parse(first.Tables.Single().HighWaterMark));

        Insert(6, "2026-03-01T12:00:00.124000001Z");
        var third = await _workspace.RunCompletedAsync(config, clock: clock);
        Assert.Equal(1, third.Statistics.RecordsInserted);
        _workspace.AssertSynced("orders", "id");
    }

    [Fact]
    public async Task NullTimestamps_FallBackToCreatedAt_rows_are_ordered_by_created_at_counted_and_warned_about()
    {
        var clock = new ManualClock(Instant.FromUtc(2026, 3, 1, 12, 0));
        var config = Configure(batchSize: 2, blocks: "cdc: {timestamp: {tolerance_window: 0s}}");
        Insert(1, "2026-03-01T10:00:00Z", created: "2026-03-01T09:00:00Z");
        Insert(2, null, created: "2026-03-01T10:30:00Z");
        Insert(3, null, created: "2026-03-01T11:00:00Z");

        var first = await _workspace.RunCompletedAsync(config, clock: clock);

        Assert.Equal(3, first.Statistics.RecordsInserted);
        _workspace.AssertSynced("orders", "id");
        Assert.Equal(new NullTimestampsReport(2, 0), first.Tables.Single().NullTimestamps);
        Assert.Contains(first.Warnings, w => w.Contains("orders: 2 row(s) have NULL updated_at; their created_at was used", StringComparison.Ordinal));
        Assert.Equal(Instant.FromUtc(2026, 3, 1, 11, 0), Parse(first.Tables.Single().HighWaterMark));

        // A new row without updated_at is found by its created_at, like any other cursor value: only it is read.
        clock.Advance(Duration.FromMinutes(10));
        Insert(4, null, created: "2026-03-01T12:05:00Z");
        var second = await _workspace.RunCompletedAsync(config, clock: clock);

        Assert.Equal(1, second.Statistics.RecordsProcessed);
        Assert.Equal(1, second.Statistics.RecordsInserted);
        Assert.Equal(new NullTimestampsReport(1, 0), second.Tables.Single().NullTimestamps);
        _workspace.AssertSynced("orders", "id");
        Assert.Equal(0, (await _workspace.RunCompletedAsync(config, clock: clock)).Statistics.RecordsProcessed);
    }

    [Fact]
    public async Task NullTimestamps_RowHash_rows_without_either_timestamp_are_compared_by_row_hash_every_run()
    {
        var clock = new ManualClock(Instant.FromUtc(2026, 3, 1, 12, 0));
        var config = Configure(blocks: "cdc: {timestamp: {tolerance_window: 0s}}");
        Insert(1, "2026-03-01T10:00:00Z");
        Insert(2, null);
        Insert(3, null, created: "not a date either");

        var first = await _workspace.RunCompletedAsync(config, clock: clock);

        Assert.Equal(3, first.Statistics.RecordsInserted);
        Assert.Equal(new NullTimestampsReport(0, 2), first.Tables.Single().NullTimestamps);
        _workspace.AssertSynced("orders", "id");

        _workspace.Source.Execute("UPDATE orders SET label = 'changed without a timestamp' WHERE id = 2");
        var second = await _workspace.RunCompletedAsync(config, clock: clock);

        Assert.Equal(1, second.Statistics.RecordsUpdated);
        Assert.Contains(second.Warnings, w => w.Contains("2 row(s) of 'orders' have NULL updated_at (and no created_at to fall back on)", StringComparison.Ordinal));
        _workspace.AssertSynced("orders", "id");
        Assert.Equal(0, SyncWorkspace.Writes(await _workspace.RunCompletedAsync(config, clock: clock)));
    }

    [Fact]
    public async Task MissingTimestamps_without_a_created_at_column_rows_are_never_skipped_silently()
    {
        _workspace.Source.Execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, updated_at TEXT)");
        _workspace.Source.Execute("INSERT INTO notes VALUES (1, 'a', '2026-03-01T10:00:00Z'), (2, 'b', NULL), (3, 'c', NULL)");
        var clock = new ManualClock(Instant.FromUtc(2026, 3, 1, 12, 0));
        // created_at_field names a column the table does not have: nothing to fall back on, and nothing to complain about.
        var config = _workspace.Configure(SyncYaml.Config("{name: notes, cdc_method: timestamp, created_at_field: created}"));

        var first = await _workspace.RunCompletedAsync(config, clock: clock);

        Assert.Equal(3, first.Statistics.RecordsInserted);
        Assert.Equal(new NullTimestampsReport(0, 2), first.Tables.Single().NullTimestamps);
        Assert.DoesNotContain(first.Warnings, w => w.Contains("not a column", StringComparison.Ordinal));
        _workspace.AssertSynced("notes", "id");

        _workspace.Source.Execute("UPDATE notes SET body = 'b2' WHERE id = 2; INSERT INTO notes VALUES (4, 'd', NULL)");
        var second = await _workspace.RunCompletedAsync(config, clock: clock);

        Assert.Equal(1, second.Statistics.RecordsUpdated);
        Assert.Equal(1, second.Statistics.RecordsInserted);
        Assert.Contains(second.Warnings, w => w.Contains("3 row(s) of 'notes' have NULL updated_at", StringComparison.Ordinal));
        _workspace.AssertSynced("notes", "id");
    }

    [Fact]
    public async Task InvalidTimestamps_DeadLettered_with_the_reason_while_the_other_rows_sync()
    {
        var clock = new ManualClock(Instant.FromUtc(2026, 3, 1, 12, 0));
        var config = Configure(batchSize: 2);
        Insert(1, "2026-03-01T10:00:00Z");
        Insert(2, "2026-02-30 10:00:00");
        Insert(3, "2026-13-01 00:00:00");
        Insert(4, "garbage");
        Insert(5, "");
        Insert(6, "2026-03-01T11:00:00Z");

        var report = await _workspace.RunAsync(config, clock: clock);

        Assert.Equal("partial", report.Metadata.Status);
        Assert.Equal(2, report.Statistics.RecordsInserted);
        Assert.Equal(4, report.Statistics.RecordsDeadLettered);
        await using (var state = await _workspace.OpenStateAsync())
        {
            var letters = (await state.ReadDeadLettersAsync(SyncWorkspace.Stream("orders"), 100, CancellationToken.None)).ToDictionary(l => l.RecordId);
            Assert.Equal(["2", "3", "4", "5"], letters.Keys.Order());
            Assert.Contains("2026-02-30", letters["2"].Reason, StringComparison.Ordinal);
            Assert.Contains("2026-13-01", letters["3"].Reason, StringComparison.Ordinal);
            Assert.Contains("garbage", letters["4"].Reason, StringComparison.Ordinal);
            Assert.Contains("empty", letters["5"].Reason, StringComparison.Ordinal);
            Assert.All(letters.Values, l => Assert.StartsWith("updated_at: ", l.Reason, StringComparison.Ordinal));
        }

        var columns = _workspace.Source.Columns("orders");
        SyncWorkspace.AssertSameRows(_workspace.Source.Dump("orders", columns, ["id"], "id IN (1, 6)"), _workspace.Destination.Dump("orders", columns, ["id"]), "orders");

        // Fixed at the source, a row syncs on the next run (its timestamp is newer than the cursor).
        clock.Advance(Duration.FromMinutes(10));
        _workspace.Source.Execute("UPDATE orders SET updated_at = '2026-03-01T12:05:00Z' WHERE id = 4");
        var next = await _workspace.RunAsync(config, clock: clock);
        Assert.Equal(1, next.Statistics.RecordsInserted);
        Assert.Equal(1L, _workspace.Destination.Scalar("SELECT count(*) FROM orders WHERE id = 4"));
    }

    [Fact]
    public async Task DuplicateTimestamps_AcrossBatchBoundary_are_each_applied_once_and_never_again()
    {
        var clock = new ManualClock(Instant.FromUtc(2026, 3, 1, 12, 0));
        var config = Configure(batchSize: 3, blocks: "cdc: {timestamp: {tolerance_window: 5 minutes}}");
        await _workspace.RunCompletedAsync(config, clock: clock);
        for (var id = 1; id <= 20; id++)
        {
            Insert(id, "2026-03-01T12:00:00.500Z");
        }

        clock.Advance(Duration.FromMinutes(1));
        var first = await _workspace.RunCompletedAsync(config, clock: clock);
        var second = await _workspace.RunCompletedAsync(config, clock: clock);

        Assert.Equal(20, first.Statistics.RecordsInserted);
        _workspace.AssertSynced("orders", "id");
        // The lookback reads them again; the ledger recognises every one.
        Assert.Equal(0, SyncWorkspace.Writes(second));
        Assert.Equal(20, second.Statistics.RecordsUnchanged);
    }

    [Fact]
    public async Task BackdatedRecords_InsideLookback_are_synced_by_the_next_run()
    {
        var clock = new ManualClock(Instant.FromUtc(2026, 3, 1, 12, 0));
        var config = Configure(batchSize: 2, blocks: "cdc: {timestamp: {tolerance_window: 10 minutes, safety_margin: 0s}}");
        for (var id = 1; id <= 5; id++)
        {
            Insert(id, $"2026-03-01T11:5{id}:00Z");
        }

        await _workspace.RunCompletedAsync(config, clock: clock);

        // The cursor stands at the snapshot's clock (12:00). Committed now, stamped 8 and 7 minutes before it: inside
        // the 10-minute lookback.
        Insert(6, "2026-03-01T11:52:00Z");
        _workspace.Source.Execute("UPDATE orders SET label = 'backdated edit', updated_at = '2026-03-01T11:53:00Z' WHERE id = 2");
        clock.Advance(Duration.FromMinutes(1));
        var report = await _workspace.RunCompletedAsync(config, clock: clock);

        Assert.Equal(1, report.Statistics.RecordsInserted);
        Assert.Equal(1, report.Statistics.RecordsUpdated);
        _workspace.AssertSynced("orders", "id");
    }

    [Fact]
    public async Task FutureTimestamps_AppliedFlaggedCursorBounded_by_the_source_clock()
    {
        var clock = new ManualClock(Instant.FromUtc(2026, 3, 1, 12, 0));
        var config = Configure(blocks: "cdc: {timestamp: {tolerance_window: 0s, safety_margin: 5s, max_future_skew: 5 minutes}}");
        await _workspace.RunCompletedAsync(config, clock: clock);
        Insert(1, "2026-03-01T11:59:58Z"); // after the cursor the first run left (the clock minus the safety margin)
        Insert(2, "2026-03-01T12:02:00Z"); // ahead, but within max_future_skew
        Insert(3, "2026-03-01T13:00:00Z"); // an hour ahead of the source clock

        var report = await _workspace.RunCompletedAsync(config, clock: clock);

        Assert.Equal(3, report.Statistics.RecordsInserted);
        _workspace.AssertSynced("orders", "id");
        Assert.Equal(1, report.Tables.Single().RecordsFutureTimestamp);
        Assert.Contains(report.Warnings, w => w.Contains("orders: 1 row(s) have updated_at more than max_future_skew", StringComparison.Ordinal));
        var cursor = Cursor(await _workspace.NewestCheckpointAsync("orders"));
        Assert.True(cursor.Value <= (clock.Now - Duration.FromSeconds(5)).ToUnixTimeMilliseconds(), $"cursor {Instant.FromUnixTimeMilliseconds(cursor.Value)} passed the source clock");

        // The cursor did not jump an hour ahead with row 3: a row written a few minutes later is still read.
        clock.Advance(Duration.FromMinutes(10));
        Insert(4, "2026-03-01T12:09:00Z");
        var next = await _workspace.RunCompletedAsync(config, clock: clock);
        Assert.Equal(1, next.Statistics.RecordsInserted);
        _workspace.AssertSynced("orders", "id");
    }

    private Core.Config.SyncConfig Configure(int batchSize = 1000, string blocks = "") =>
        _workspace.Configure(SyncYaml.Config(Orders, batchSize, blocks));

    private void Insert(long id, object? updatedAt, object? created = null) =>
        _workspace.Source.Execute(
            "INSERT INTO orders (id, label, created_at, updated_at) VALUES ($id, $label, $created, $updated)",
            ("$id", id),
            ("$label", $"order {id}"),
            ("$created", created),
            ("$updated", updatedAt));

    private static Instant? Parse(string? iso) => iso is null ? null : InstantPattern.ExtendedIso.Parse(iso).Value;

    private static CursorPosition Cursor(Core.State.Checkpoint checkpoint)
    {
        Assert.True(CursorPosition.TryParse(checkpoint.Position, out var cursor), $"not a cursor position: {checkpoint.Position}");
        return cursor;
    }

    public void Dispose() => _workspace.Dispose();
}
