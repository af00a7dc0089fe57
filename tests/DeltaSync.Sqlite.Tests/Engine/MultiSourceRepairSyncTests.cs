using DeltaSync.Core.Conflicts;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.Reporting;
using DeltaSync.Core.State;
using NodaTime;

namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>
/// <c>dlq replay</c> and reconciliation on a table two SQLite sources write: both go through the conflict merge, so
/// record bases stay right and other sources' rows are left alone.
/// </summary>
public sealed class MultiSourceRepairSyncTests : IDisposable
{
    private static readonly Instant Start = Instant.FromUtc(2026, 3, 1, 12, 0);

    private readonly SyncWorkspace _workspace = new();
    private readonly ManualClock _clock = new(Start);
    private readonly SqliteTestDb _crm;
    private readonly SqliteTestDb _shop;

    public MultiSourceRepairSyncTests()
    {
        _crm = new SqliteTestDb(Path.Combine(_workspace.Folder, "crm.db"));
        _shop = new SqliteTestDb(Path.Combine(_workspace.Folder, "shop.db"));
        foreach (var db in new[] { _crm, _shop })
        {
            db.Execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, updated_at TEXT NOT NULL)");
        }
    }

    private const string Yaml = """
        sync:
          sources:
            - {name: crm, connection: "sqlite:crm.db", tables: [customers]}
            - {name: shop, connection: "sqlite:shop.db", tables: [customers]}
          destination: {connection: "sqlite:dest.db"}
        conflict_resolution: {default_strategy: last_write_wins}
        """;

    private string Ago(int seconds) => ItemsTable.Timestamp(_clock.Now - Duration.FromSeconds(seconds));

    private static void Upsert(SqliteTestDb db, long id, string name, string? email, string updatedAt) =>
        db.Execute(
            "INSERT INTO customers VALUES ($id, $name, $email, $at) ON CONFLICT (id) DO UPDATE SET name = excluded.name, email = excluded.email, updated_at = excluded.updated_at",
            ("$id", id),
            ("$name", name),
            ("$email", email),
            ("$at", updatedAt));

    private async Task<SyncReport> RunAsync(bool reconcile = false)
    {
        _clock.Advance(Duration.FromMinutes(1));
        return await _workspace.RunAsync(_workspace.Configure(Yaml), clock: _clock, reconcile: reconcile);
    }

    private object? Dest(string column, long id) =>
        _workspace.Destination.Scalar($"SELECT {column} FROM customers WHERE id = $id", ("$id", id));

    private RecordBase Base(long id)
    {
        var body = (string)_workspace.Destination.Scalar(
            "SELECT body FROM _deltasync_records WHERE destination_table = 'customers' AND key = $key",
            ("$key", new Core.Model.RecordKey([id]).Encoded))!;
        return RecordBaseCodec.Decode(id.ToString(System.Globalization.CultureInfo.InvariantCulture), body);
    }

    [Fact]
    public async Task A_replayed_record_is_merged_into_its_base_and_a_later_change_of_the_other_source_still_conflicts_with_it()
    {
        Upsert(_shop, 2, "Bob", "bob@shop", Ago(600));
        Upsert(_crm, 2, "Bob", "bob@crm", "not a time");
        var first = await RunAsync();
        Assert.Equal("partial", first.Metadata.Status);
        Assert.Equal("bob@shop", Dest("email", 2));

        // crm fixes its timestamp; the replay reads the row again and merges it: crm's later insert wins by last write.
        Upsert(_crm, 2, "Bob", "bob@crm", Ago(30));
        var config = _workspace.Configure(Yaml);
        var connector = new SqliteConnector(_clock);
        IReadOnlyList<TableReplayResult> replayed;
        await using (var store = await _workspace.OpenStateAsync())
        await using (var source = await connector.OpenSourceAsync(config.Sync.SourceNamed("crm"), config, CancellationToken.None))
        await using (var destination = await connector.OpenDestinationAsync(config.Sync.Destination, config, CancellationToken.None))
        {
            var entries = await new DeadLetterQueue(config, store).ListAsync(null, CancellationToken.None);
            replayed = await new DeadLetterReplay(config, source, destination, store, _clock).ReplayAsync(entries, CancellationToken.None);
            Assert.Empty(await store.ReadDeadLettersAsync(null, 10, CancellationToken.None));
            Assert.Contains(await store.ReadConflictLogAsync(null, 10, CancellationToken.None), e => e.Kind == "detected");
        }

        var result = Assert.Single(replayed);
        Assert.Equal((1, 1), (result.Applied, result.ConflictsDetected));
        Assert.Equal("bob@crm", Dest("email", 2));
        var merged = Base(2);
        Assert.Equal("bob@crm", merged.SourceViews["crm"]["email"]);
        Assert.Equal("crm", merged.Writers["email"].Source);

        // shop changes the field crm's replayed write set: a conflict between the two sources, not a destination edit.
        Upsert(_shop, 2, "Bob", "bob@shop2", Ago(5));
        var later = await RunAsync();
        var conflict = Assert.Single(later.Conflicts);
        Assert.Equal(["email"], conflict.Fields);
        Assert.Equal(["crm", "shop"], conflict.SourceValues.Keys.Order());
        Assert.Equal("bob@shop2", Dest("email", 2));
    }

    [Fact]
    public async Task Reconciliation_deletes_what_its_source_hard_deleted_and_leaves_the_other_sources_rows()
    {
        Upsert(_crm, 1, "Ann", "ann@crm", Ago(600));
        Upsert(_shop, 3, "Cy", "cy@shop", Ago(600));
        await RunAsync();
        Assert.Equal(2L, _workspace.Destination.Count("customers"));

        _crm.Execute("DELETE FROM customers WHERE id = 1");
        var report = await RunAsync(reconcile: true);

        Assert.Equal("completed", report.Metadata.Status);
        Assert.Null(Dest("email", 1));
        Assert.Equal("cy@shop", Dest("email", 3));
        Assert.False(Base(1).Exists);
        Assert.True(Base(3).Exists);
        Assert.Contains(report.Warnings, w => w.Contains("from source 'crm' found 1 row(s)", StringComparison.Ordinal));
        // The two sources' passes run side by side: shop's reconciliation sees crm's row 1 as foreign only when it runs
        // before crm's pass has deleted that row. Either way it never counts its own row 3 as foreign.
        Assert.All(
            report.Warnings.Where(w => w.Contains("from source 'shop' found", StringComparison.Ordinal)),
            w => Assert.Contains("from source 'shop' found 1 row(s)", w, StringComparison.Ordinal));

        // Nothing left to repair: a second reconciliation writes nothing.
        var again = await RunAsync(reconcile: true);
        Assert.Equal(0, SyncWorkspace.Writes(again));
        Assert.Equal("cy@shop", Dest("email", 3));
    }

    public void Dispose() => _workspace.Dispose();
}
