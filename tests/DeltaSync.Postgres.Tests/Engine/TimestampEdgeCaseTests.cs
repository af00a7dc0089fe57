using DeltaSync.Core.Capture;
using DeltaSync.Core.Model;
using DeltaSync.Core.Reporting;
using Microsoft.Data.Sqlite;
using Npgsql;
using NodaTime;
using NodaTime.Text;

namespace DeltaSync.Postgres.Tests.Engine;

/// <summary>
/// The spec's timestamp and data-quality cases (issue 6) on a real PostgreSQL source, checked at the destination:
/// timezone mismatches, DST gaps and overlaps, leap seconds, precisions, NULL and missing timestamps, invalid,
/// duplicate, backdated and future timestamps. The source's clock is the server's own (the cursor is commit-aware).
/// </summary>
public sealed class TimestampEdgeCaseTests
{
    private const string Orders = "{name: orders, cdc_method: timestamp}";

    private static string Table(string type) =>
        $"CREATE TABLE orders (id bigint PRIMARY KEY, label text NOT NULL, created_at {type}, updated_at {type});";

    [Fact]
    public async Task TimezoneMismatch_zone_less_values_are_read_in_the_source_zone_and_copied_as_written()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Table("timestamp") + """
            INSERT INTO orders (id, label, updated_at) VALUES
              (1, 'a', (now() AT TIME ZONE 'America/New_York') - interval '2 hours'),
              (2, 'b', (now() AT TIME ZONE 'America/New_York') - interval '1 hour');
            """);
        var config = w.Config(Orders, blocks: "cdc: {timestamp: {timezone: America/New_York, tolerance_window: 0s}}");

        var first = await w.RunCompletedAsync(config);

        Assert.Equal(2, first.Statistics.RecordsInserted);
        await w.AssertSameAsync("SELECT id, label, updated_at FROM orders ORDER BY id");
        // The high-water mark is the instant: New York wall-clock time read in New York, not as UTC.
        var newest = await w.Source.ScalarAsync<DateTime>("SELECT max(updated_at) AT TIME ZONE 'America/New_York' FROM orders");
        Assert.Equal(Instant.FromDateTimeUtc(newest), Parse(first.Tables.Single().HighWaterMark));
        Assert.Equal(0, first.Tables.Single().RecordsFutureTimestamp);

        // A New York "now" written after the first run is ahead of its cursor: read, and nothing before it again.
        await w.Source.ExecuteAsync("INSERT INTO orders (id, label, updated_at) VALUES (3, 'c', clock_timestamp() AT TIME ZONE 'America/New_York')");
        var second = await w.RunCompletedAsync(config);

        Assert.Equal(1, second.Statistics.RecordsProcessed);
        Assert.Equal(1, second.Statistics.RecordsInserted);
        await w.AssertSameAsync("SELECT id, label, updated_at FROM orders ORDER BY id");
    }

    [Fact]
    public async Task DstGap_a_skipped_wall_clock_time_is_shifted_forward_synced_and_warned_about()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Table("timestamp") + """
            INSERT INTO orders (id, label, updated_at) VALUES
              (1, 'before', '2026-03-29 01:30:00'), (2, 'in the gap', '2026-03-29 02:30:00'), (3, 'after', '2026-03-29 03:15:00');
            """);
        var config = w.Config(Orders, blocks: "cdc: {timestamp: {timezone: Europe/Berlin}}");

        var report = await w.RunCompletedAsync(config);

        Assert.Equal(3, report.Statistics.RecordsInserted);
        await w.AssertSameAsync("SELECT id, label, updated_at FROM orders ORDER BY id");
        var table = report.Tables.Single();
        Assert.Equal(new DstResolvedReport(1, 0), table.DstResolved);
        Assert.Contains(report.Warnings, x => x.Contains("orders: 1 zone-less timestamp(s) fell in a DST gap or overlap in Europe/Berlin", StringComparison.Ordinal));
        // 02:30 shifted forward by the gap's hour: 03:30 CEST, 01:30 UTC.
        Assert.Equal(Instant.FromUtc(2026, 3, 29, 1, 30), Parse(table.HighWaterMark));
    }

    [Fact]
    public async Task DstOverlap_a_repeated_wall_clock_time_takes_the_earlier_offset_and_is_warned_about()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Table("timestamp") + """
            INSERT INTO orders (id, label, updated_at) VALUES
              (1, 'before', '2026-10-25 01:00:00'), (2, 'twice', '2026-10-25 02:15:00'), (3, 'twice too', '2026-10-25 02:30:00.25');
            """);
        var config = w.Config(Orders, blocks: "cdc: {timestamp: {timezone: Europe/Berlin}}");

        var report = await w.RunCompletedAsync(config);

        Assert.Equal(3, report.Statistics.RecordsInserted);
        await w.AssertSameAsync("SELECT id, label, updated_at FROM orders ORDER BY id");
        var table = report.Tables.Single();
        Assert.Equal(new DstResolvedReport(0, 2), table.DstResolved);
        Assert.Contains(report.Warnings, x => x.Contains("overlap: 2, earlier offset", StringComparison.Ordinal));
        Assert.Equal(Instant.FromUtc(2026, 10, 25, 0, 30) + Duration.FromMilliseconds(250), Parse(table.HighWaterMark));
    }

    [Fact]
    public async Task LeapSecond_PostgreSQL_stores_23_59_60_as_the_next_second_and_it_syncs()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        // PostgreSQL accepts :60 on input and stores the next minute's first second; there is no :60 left to read.
        await w.Source.ExecuteAsync(Table("timestamptz") + """
            INSERT INTO orders (id, label, updated_at) VALUES
              (1, 'leap', '2016-12-31 23:59:60+00'), (2, 'before', '2016-12-31 23:59:59.5+00'), (3, 'after', '2017-01-01 00:00:00.5+00');
            """);
        Assert.Equal(
            new DateTime(2017, 1, 1, 0, 0, 0, DateTimeKind.Utc),
            await w.Source.ScalarAsync<DateTime>("SELECT updated_at FROM orders WHERE id = 1"));
        var config = w.Config(Orders, batchSize: 1, blocks: "cdc: {timestamp: {tolerance_window: 0s}}");

        var report = await w.RunCompletedAsync(config);
        var again = await w.RunCompletedAsync(config);

        Assert.Equal(3, report.Statistics.RecordsInserted);
        Assert.Equal(0, report.Statistics.RecordsDeadLettered);
        await w.AssertSameAsync("SELECT id, label, updated_at FROM orders ORDER BY id");
        Assert.Equal(0, again.Statistics.RecordsProcessed);
    }

    [Fact]
    public async Task PrecisionMicroseconds_ties_below_a_millisecond_cross_batch_boundaries_without_loop_or_skip()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Table("timestamptz"));
        var config = w.Config(Orders, batchSize: 1, blocks: "cdc: {timestamp: {tolerance_window: 0s, safety_margin: 0s}}");
        await w.RunCompletedAsync(config);

        // Five rows inside one millisecond, two of them at the same microsecond; keys against time order. They are
        // stamped after the first run's cursor (this transaction started after it).
        await w.Source.ExecuteAsync("""
            INSERT INTO orders (id, label, updated_at) VALUES
              (5, 'a', now() + interval '0.000101 s'),
              (4, 'b', now() + interval '0.000102 s'),
              (3, 'c', now() + interval '0.000102 s'),
              (2, 'd', now() + interval '0.000999 s'),
              (1, 'e', now() + interval '0.000100 s');
            """);
        var first = await w.RunCompletedAsync(config);
        var second = await w.RunCompletedAsync(config);

        Assert.Equal(5, first.Statistics.RecordsInserted);
        await w.AssertSameAsync("SELECT id, label, updated_at FROM orders ORDER BY id");
        Assert.Equal(0, PgSyncWorkspace.Writes(second));
    }

    [Fact]
    public async Task PrecisionSecondsVsMicroseconds_a_seconds_column_into_a_SQLite_destination_is_read_once()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        // timestamptz(0): the source keeps whole seconds, so every row below ties; the destination is text.
        await w.Source.ExecuteAsync(Table("timestamptz(0)"));
        var config = w.Config(Orders, destination: "sqlite:dest.db", batchSize: 2, blocks: "cdc: {timestamp: {tolerance_window: 0s, safety_margin: 0s}}");
        await w.RunCompletedAsync(config);
        await w.Source.ExecuteAsync("INSERT INTO orders (id, label, updated_at) SELECT g, 'row ' || g, date_trunc('second', now()) + interval '1 second' FROM generate_series(1, 7) g");

        var first = await w.RunCompletedAsync(config);
        var second = await w.RunCompletedAsync(config);

        // Rows a moment ahead of the server clock are read again until it passes them: never rewritten.
        Assert.Equal(7, first.Statistics.RecordsInserted);
        Assert.Equal(0, PgSyncWorkspace.Writes(second));
        Assert.Equal(7, SqliteFile.Rows(w.SqlitePath("dest.db"), "SELECT id FROM orders").Count);
        var source = await w.Source.ScalarAsync<DateTime>("SELECT max(updated_at) FROM orders");
        Assert.All(
            SqliteFile.Rows(w.SqlitePath("dest.db"), "SELECT updated_at FROM orders"),
            text => Assert.Equal(Instant.FromDateTimeUtc(source), Parse(text)));
    }

    [Fact]
    public async Task NullTimestamps_FallBackToCreatedAt_rows_are_ordered_by_created_at_counted_and_warned_about()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Table("timestamptz") + """
            INSERT INTO orders (id, label, created_at, updated_at) VALUES
              (1, 'stamped', now() - interval '3 hours', now() - interval '2 hours'),
              (2, 'created only', now() - interval '90 minutes', NULL),
              (3, 'created only', now() - interval '1 hour', NULL);
            """);
        var config = w.Config(Orders, blocks: "cdc: {timestamp: {tolerance_window: 0s}}");

        var first = await w.RunCompletedAsync(config);

        Assert.Equal(3, first.Statistics.RecordsInserted);
        Assert.Equal(new NullTimestampsReport(2, 0), first.Tables.Single().NullTimestamps);
        Assert.Contains(first.Warnings, x => x.Contains("orders: 2 row(s) have NULL updated_at; their created_at was used", StringComparison.Ordinal));
        var newest = await w.Source.ScalarAsync<DateTime>("SELECT created_at FROM orders WHERE id = 3");
        Assert.Equal(Instant.FromDateTimeUtc(newest), Parse(first.Tables.Single().HighWaterMark));

        await w.Source.ExecuteAsync("INSERT INTO orders (id, label, created_at) VALUES (4, 'new, created only', clock_timestamp())");
        var second = await w.RunCompletedAsync(config);

        Assert.Equal(1, second.Statistics.RecordsProcessed);
        Assert.Equal(new NullTimestampsReport(1, 0), second.Tables.Single().NullTimestamps);
        await w.AssertSameAsync("SELECT id, label, created_at, updated_at FROM orders ORDER BY id");
    }

    [Fact]
    public async Task NullTimestamps_RowHash_rows_without_either_timestamp_are_compared_by_row_hash_every_run()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Table("timestamptz") + """
            INSERT INTO orders (id, label, created_at, updated_at) VALUES
              (1, 'stamped', NULL, now() - interval '1 hour'), (2, 'nothing', NULL, NULL), (3, 'nothing either', NULL, NULL);
            """);
        var config = w.Config(Orders, blocks: "cdc: {timestamp: {tolerance_window: 0s}}");

        var first = await w.RunCompletedAsync(config);
        await w.Source.ExecuteAsync("UPDATE orders SET label = 'changed without a timestamp' WHERE id = 2");
        var second = await w.RunCompletedAsync(config);

        Assert.Equal(3, first.Statistics.RecordsInserted);
        Assert.Equal(new NullTimestampsReport(0, 2), first.Tables.Single().NullTimestamps);
        Assert.Equal(1, second.Statistics.RecordsUpdated);
        Assert.Contains(second.Warnings, x => x.Contains("2 row(s) of 'orders' have NULL updated_at (and no created_at to fall back on)", StringComparison.Ordinal));
        await w.AssertSameAsync("SELECT id, label, updated_at FROM orders ORDER BY id");
        Assert.Equal(0, PgSyncWorkspace.Writes(await w.RunCompletedAsync(config)));
    }

    [Fact]
    public async Task MissingTimestamps_without_a_created_at_column_rows_are_never_skipped_silently()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TABLE notes (id bigint PRIMARY KEY, body text, updated_at timestamptz);
            INSERT INTO notes VALUES (1, 'a', now() - interval '1 hour'), (2, 'b', NULL), (3, 'c', NULL);
            """);
        var config = w.Config("{name: notes, cdc_method: timestamp}");

        var first = await w.RunCompletedAsync(config);
        await w.Source.ExecuteAsync("UPDATE notes SET body = 'b2' WHERE id = 2; INSERT INTO notes VALUES (4, 'd', NULL)");
        var second = await w.RunCompletedAsync(config);

        Assert.Equal(3, first.Statistics.RecordsInserted);
        Assert.Equal(new NullTimestampsReport(0, 2), first.Tables.Single().NullTimestamps);
        Assert.Equal(1, second.Statistics.RecordsUpdated);
        Assert.Equal(1, second.Statistics.RecordsInserted);
        Assert.Contains(second.Warnings, x => x.Contains("3 row(s) of 'notes' have NULL updated_at", StringComparison.Ordinal));
        await w.AssertSameAsync("SELECT id, body, updated_at FROM notes ORDER BY id");
    }

    [Fact]
    public async Task InvalidTimestamps_DeadLettered_cannot_arise_PostgreSQL_refuses_them_and_infinity_is_applied_and_flagged()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Table("timestamptz") + "INSERT INTO orders (id, label, updated_at) VALUES (1, 'fine', now() - interval '1 hour')");

        // A typed column never holds an impossible date: the database refuses it, so there is nothing to dead-letter.
        foreach (var text in new[] { "2026-02-30 10:00:00", "2026-13-01 00:00:00", "garbage", "" })
        {
            var refused = await Assert.ThrowsAsync<PostgresException>(() => w.Source.ExecuteAsync("INSERT INTO orders (id, label, updated_at) VALUES (2, 'bad', $1::text::timestamptz)", text));
            Assert.StartsWith("22", refused.SqlState, StringComparison.Ordinal);
        }

        // 'infinity' is valid to PostgreSQL: applied as it is, flagged as a future timestamp, the cursor bounded.
        await w.Source.ExecuteAsync("INSERT INTO orders (id, label, updated_at) VALUES (3, 'forever', 'infinity')");
        var config = w.Config(Orders);

        var report = await w.RunCompletedAsync(config);

        Assert.Equal(2, report.Statistics.RecordsInserted);
        Assert.Equal(0, report.Statistics.RecordsDeadLettered);
        Assert.Equal(1, report.Tables.Single().RecordsFutureTimestamp);
        await w.AssertSameAsync("SELECT id, label, updated_at FROM orders ORDER BY id");
        AssertCursorNotAhead(report, await w.Source.ScalarAsync<DateTime>("SELECT now()"));
    }

    [Fact]
    public async Task DuplicateTimestamps_AcrossBatchBoundary_are_each_applied_once_and_never_again()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Table("timestamptz"));
        var config = w.Config(Orders, batchSize: 3, blocks: "cdc: {timestamp: {tolerance_window: 5 minutes}}");
        await w.RunCompletedAsync(config);
        await w.Source.ExecuteAsync("INSERT INTO orders (id, label, updated_at) SELECT g, 'row ' || g, now() - interval '30 seconds' FROM generate_series(1, 20) g");

        var first = await w.RunCompletedAsync(config);
        var second = await w.RunCompletedAsync(config);

        Assert.Equal(20, first.Statistics.RecordsInserted);
        await w.AssertSameAsync("SELECT id, label, updated_at FROM orders ORDER BY id");
        Assert.Equal(0, PgSyncWorkspace.Writes(second));
        Assert.Equal(20, second.Statistics.RecordsUnchanged);
    }

    [Fact]
    public async Task BackdatedRecords_InsideLookback_are_synced_by_the_next_run()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Table("timestamptz") + "INSERT INTO orders (id, label, updated_at) SELECT g, 'row ' || g, now() - interval '1 minute' FROM generate_series(1, 5) g");
        var config = w.Config(Orders, batchSize: 2, blocks: "cdc: {timestamp: {tolerance_window: 10 minutes}}");
        await w.RunCompletedAsync(config);

        // Committed now, stamped minutes before the cursor: inside the 10-minute lookback.
        await w.Source.ExecuteAsync("""
            INSERT INTO orders (id, label, updated_at) VALUES (6, 'backdated', now() - interval '4 minutes');
            UPDATE orders SET label = 'backdated edit', updated_at = now() - interval '3 minutes' WHERE id = 2;
            """);
        var report = await w.RunCompletedAsync(config);

        Assert.Equal(1, report.Statistics.RecordsInserted);
        Assert.Equal(1, report.Statistics.RecordsUpdated);
        await w.AssertSameAsync("SELECT id, label, updated_at FROM orders ORDER BY id");
    }

    [Fact]
    public async Task FutureTimestamps_AppliedFlaggedCursorBounded_by_the_server_clock()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Table("timestamptz"));
        var config = w.Config(Orders, blocks: "cdc: {timestamp: {tolerance_window: 0s, max_future_skew: 5 minutes}}");
        await w.RunCompletedAsync(config);
        await w.Source.ExecuteAsync("""
            INSERT INTO orders (id, label, updated_at) VALUES
              (1, 'now', clock_timestamp() - interval '1 second'), (2, 'a bit ahead', now() + interval '1 minute'), (3, 'an hour ahead', now() + interval '1 hour');
            """);

        var report = await w.RunCompletedAsync(config);

        Assert.Equal(3, report.Statistics.RecordsInserted);
        Assert.Equal(1, report.Tables.Single().RecordsFutureTimestamp);
        Assert.Contains(report.Warnings, x => x.Contains("orders: 1 row(s) have updated_at more than max_future_skew", StringComparison.Ordinal));
        await w.AssertSameAsync("SELECT id, label, updated_at FROM orders ORDER BY id");
        AssertCursorNotAhead(report, await w.Source.ScalarAsync<DateTime>("SELECT now()"));

        // The cursor did not jump an hour ahead with row 3: a row written now is still read.
        await w.Source.ExecuteAsync("INSERT INTO orders (id, label, updated_at) VALUES (4, 'later', clock_timestamp())");
        var next = await w.RunCompletedAsync(config);
        Assert.Equal(1, next.Statistics.RecordsInserted);
        await w.AssertSameAsync("SELECT id, label, updated_at FROM orders ORDER BY id");
    }

    private static void AssertCursorNotAhead(SyncReport report, DateTime serverNow)
    {
        var position = Position.Parse(report.Tables.Single().Position);
        Assert.True(CursorPosition.TryParse(position, out var cursor), $"not a cursor position: {position}");
        var micros = (serverNow.Ticks - DateTime.UnixEpoch.Ticks) / 10;
        Assert.True(cursor.Value <= micros, $"cursor {cursor.Value} µs is past the server's clock ({micros} µs)");
    }

    private static Instant? Parse(string? iso) =>
        iso is null ? null
        : InstantPattern.ExtendedIso.Parse(iso) is { Success: true } instant ? instant.Value
        : OffsetDateTimePattern.ExtendedIso.Parse(iso).Value.ToInstant();

}
