using DeltaSync.Core.Reporting;
using NodaTime;
using NodaTime.Text;

namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>
/// The spec's "Late-Arriving Data" edge cases against real SQLite databases: out-of-order updates, batch and network
/// delays (inside and beyond the tolerance window), clock skew — and a simulation of all of them at once across a DST
/// transition, settled by one reconciliation. (Delayed deletes are in <see cref="DeletionHandlingSyncTests"/>.)
/// </summary>
public sealed class LateArrivingDataSyncTests : IDisposable
{
    private static readonly LocalDateTimePattern Local = LocalDateTimePattern.CreateWithInvariantCulture("uuuu'-'MM'-'dd' 'HH':'mm':'ss'.'fff");

    private readonly SyncWorkspace _workspace = new();
    private readonly ManualClock _clock = new(Instant.FromUtc(2026, 3, 1, 12, 0));

    public LateArrivingDataSyncTests()
    {
        _workspace.Source.Execute("CREATE TABLE events (id INTEGER PRIMARY KEY, payload TEXT NOT NULL, updated_at TEXT NOT NULL)");
    }

    private const string Yaml = """
        sync:
          source: {connection: "sqlite:source.db", tables: [events]}
          destination: {connection: "sqlite:dest.db"}
          batch_size: 50
        cdc: {timestamp: {tolerance_window: 5 minutes, safety_margin: 5s}}
        """;

    private void Write(long id, string payload, Instant at) => _workspace.Source.Execute(
        "INSERT INTO events (id, payload, updated_at) VALUES ($id, $p, $at) ON CONFLICT (id) DO UPDATE SET payload = excluded.payload, updated_at = excluded.updated_at",
        ("$id", id),
        ("$p", payload),
        ("$at", ItemsTable.Timestamp(at)));

    private async Task<SyncReport> RunAsync(string yaml = Yaml, bool reconcile = false)
    {
        _clock.Advance(Duration.FromMinutes(1));
        var report = await _workspace.RunAsync(_workspace.Configure(yaml), clock: _clock, reconcile: reconcile);
        Assert.True(report.Metadata.Status == "completed", SyncWorkspace.Describe(report));
        return report;
    }

    private static TableReport Events(SyncReport report) => report.Tables.Single();

    [Fact]
    public async Task OutOfOrderUpdates_an_update_seen_before_its_insert_is_applied_as_an_upsert()
    {
        Write(1, "first", _clock.Now);
        await RunAsync();

        // Record 2 is inserted and updated before any sync sees it: its first arrival is the update, applied as an
        // insert of the newest values; the insert's own values never overwrite them.
        Write(2, "as inserted", _clock.Now);
        Write(2, "as updated", _clock.Now + Duration.FromSeconds(1));
        var report = await RunAsync();

        Assert.Equal(1, report.Statistics.RecordsInserted);
        Assert.Equal("as updated", _workspace.Destination.Scalar("SELECT payload FROM events WHERE id = 2"));
        _workspace.AssertSynced("events", "id");
        Assert.Equal(0, SyncWorkspace.Writes(await RunAsync()));
    }

    [Fact]
    public async Task BatchDelays_records_committed_late_inside_the_tolerance_window_are_caught_and_counted_out_of_order()
    {
        for (var id = 1; id <= 10; id++)
        {
            Write(id, "on time", _clock.Now + Duration.FromSeconds(id));
        }

        await RunAsync();
        var newest = _clock.Now;
        Write(11, "fresh", newest);
        await RunAsync();

        // A batch stamped two minutes before the newest synced row lands only now: the lookback re-reads it.
        Write(12, "delayed batch", newest - Duration.FromMinutes(2));
        Write(13, "delayed batch", newest - Duration.FromMinutes(2));
        var report = await RunAsync();

        Assert.Equal(2, report.Statistics.RecordsInserted);
        Assert.Equal(2, Events(report).RecordsOutOfOrder);
        Assert.Equal(0, Events(report).RecordsLate);
        Assert.Empty(report.LateArrivingData);
        Assert.Contains(report.Warnings, w => w.Contains("2 record(s) of 'events' arrived out of order (within the 5 minutes tolerance window) but were processed correctly", StringComparison.Ordinal));
        _workspace.AssertSynced("events", "id");
    }

    [Fact]
    public async Task NetworkDelays_records_later_than_the_tolerance_are_found_by_reconciliation_and_listed_in_late_arriving_data()
    {
        for (var id = 1; id <= 5; id++)
        {
            Write(id, "on time", _clock.Now);
        }

        await RunAsync();
        _clock.Advance(Duration.FromMinutes(30));
        Write(6, "fresh", _clock.Now);
        var before = await RunAsync();
        var watermark = InstantPattern.ExtendedIso.Parse(Events(before).Watermark!).Value;

        // Held up for 20 minutes, four times the tolerance: behind the watermark and the cursor's lookback.
        var delayed = watermark - Duration.FromMinutes(15);
        Write(7, "delayed in the network", delayed);
        var missed = await RunAsync();
        var reconciled = await RunAsync(reconcile: true);

        Assert.Equal(0, missed.Statistics.RecordsInserted);
        Assert.Equal(1, reconciled.Statistics.RecordsInserted);
        var late = Assert.Single(reconciled.LateArrivingData);
        Assert.Equal(("7", "events", true), (late.RecordId, late.Table, late.Handled));
        Assert.Equal(InstantPattern.ExtendedIso.Format(delayed), late.ExpectedTimestamp);
        Assert.True(late.DelaySeconds > 5 * 60, $"delay {late.DelaySeconds} s");
        Assert.Equal(1, Events(reconciled).RecordsLate);
        _workspace.AssertSynced("events", "id");
    }

    [Fact]
    public async Task ClockSkew_future_timestamps_are_applied_without_pushing_the_watermark_past_the_source_clock()
    {
        Write(1, "on time", _clock.Now);
        // The application's clock runs 10 minutes ahead of the database's.
        Write(2, "from the future", _clock.Now + Duration.FromMinutes(10));
        var report = await RunAsync();
        var sourceNow = _clock.Now;

        Assert.Equal(2, report.Statistics.RecordsInserted);
        var watermark = InstantPattern.ExtendedIso.Parse(Events(report).Watermark!).Value;
        Assert.True(watermark <= sourceNow - Duration.FromMinutes(5), $"watermark {watermark} is past the source clock {sourceNow} minus the tolerance");

        // A row written on time just after is neither missed nor reported late.
        Write(3, "on time, later", _clock.Now + Duration.FromSeconds(10));
        var next = await RunAsync();
        Assert.Equal(1, next.Statistics.RecordsInserted);
        Assert.Empty(next.LateArrivingData);
        _workspace.AssertSynced("events", "id");
    }

    [Fact]
    public async Task Simulation_skew_late_commits_hard_deletes_and_a_DST_transition_settle_after_one_reconciliation()
    {
        // Zone-less local times in Berlin; the runs cross the spring-forward at 01:00 UTC on 29 March 2026.
        var berlin = DateTimeZoneProviders.Tzdb["Europe/Berlin"];
        var clock = new ManualClock(Instant.FromUtc(2026, 3, 29, 0, 20));
        var yaml = """
            sync:
              source: {connection: "sqlite:source.db", tables: [events]}
              destination: {connection: "sqlite:dest.db"}
              batch_size: 50
            cdc: {timestamp: {timezone: Europe/Berlin, tolerance_window: 5 minutes, safety_margin: 5s}}
            """;
        var tolerance = Duration.FromMinutes(5);
        var random = new Random(20260329);
        var written = new Dictionary<long, Instant>();
        var lateByTolerance = new List<(long Id, Instant At)>();
        var live = new List<long>();
        long next = 0;
        Instant? watermark = null;
        var reports = new List<SyncReport>();

        void Stamp(long id, Instant at)
        {
            _workspace.Source.Execute(
                "INSERT INTO events (id, payload, updated_at) VALUES ($id, $p, $at) ON CONFLICT (id) DO UPDATE SET payload = excluded.payload, updated_at = excluded.updated_at",
                ("$id", id),
                ("$p", "v" + random.Next()),
                ("$at", Local.Format(at.InZone(berlin).LocalDateTime)));
            written[id] = at;
            if (watermark is { } w && at < w)
            {
                // The watermark had passed it when it arrived: later than the tolerance.
                lateByTolerance.Add((id, at));
            }
        }

        for (var step = 0; step < 40; step++)
        {
            // The source's application clock drifts by up to ±10 minutes.
            var skew = Duration.FromSeconds(random.Next(-600, 601));
            for (var i = 0; i < 20; i++)
            {
                var id = ++next;
                if (random.NextDouble() < 0.05)
                {
                    // Committed late: stamped up to twice the tolerance window ago.
                    Stamp(id, clock.Now - Duration.FromSeconds(random.Next(1, (int)(2 * tolerance.TotalSeconds) + 1)));
                }
                else
                {
                    Stamp(id, clock.Now + skew);
                }

                live.Add(id);
            }

            if (live.Count > 50 && random.NextDouble() < 0.5)
            {
                // About 1% of rows are hard-deleted: no updated_at tells timestamp CDC.
                var victim = live[random.Next(live.Count)];
                live.Remove(victim);
                _workspace.Source.Execute("DELETE FROM events WHERE id = $id", ("$id", victim));
                lateByTolerance.RemoveAll(l => l.Id == victim);
            }

            clock.Advance(Duration.FromSeconds(90));
            var report = await _workspace.RunAsync(_workspace.Configure(yaml), clock: clock);
            Assert.True(report.Metadata.Status == "completed", SyncWorkspace.Describe(report));
            reports.Add(report);
            watermark = Events(report).Watermark is { } text ? InstantPattern.ExtendedIso.Parse(text).Value : null;
        }

        clock.Advance(Duration.FromMinutes(1));
        var reconciliation = await _workspace.RunAsync(_workspace.Configure(yaml), clock: clock, reconcile: true);
        reports.Add(reconciliation);

        Assert.True(reconciliation.Metadata.Status == "completed", SyncWorkspace.Describe(reconciliation));
        _workspace.AssertSynced("events", "id");
        Assert.True(lateByTolerance.Count >= 5, $"the simulation produced only {lateByTolerance.Count} records later than the tolerance");
        var listed = reports.SelectMany(r => r.LateArrivingData).ToLookup(l => l.RecordId);
        var missing = lateByTolerance.Where(l => !listed.Contains(l.Id.ToString(System.Globalization.CultureInfo.InvariantCulture))).Select(l => l.Id).ToList();
        Assert.True(missing.Count == 0, $"records later than the tolerance but not in late_arriving_data: {string.Join(", ", missing)}");
        Assert.All(reports.SelectMany(r => r.LateArrivingData), l => Assert.True(l.Handled && l.DelaySeconds > 0));
        Assert.Equal(0, SyncWorkspace.Writes(await _workspace.RunAsync(_workspace.Configure(yaml), clock: clock)));
    }

    public void Dispose() => _workspace.Dispose();
}
