using DeltaSync.Core.Config;
using DeltaSync.Core.Model;
using DeltaSync.Core.State;
using DeltaSync.Core.Tests.Config;
using NodaTime;

namespace DeltaSync.Core.Tests.State;

public sealed class StateBackupTests : IDisposable
{
    private static readonly Instant T0 = Instant.FromUtc(2025, 3, 14, 9, 26, 53);
    private static readonly CancellationToken Ct = CancellationToken.None;

    private readonly string _folder = Path.Combine(Path.GetTempPath(), "deltasync-tests", "backup-" + Guid.NewGuid().ToString("N"));
    private readonly TestClock _clock = new(T0);

    private string Backups => Path.Combine(_folder, "backups");

    public void Dispose()
    {
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    [Fact]
    public async Task A_backup_is_written_only_when_the_newest_is_at_least_the_interval_old()
    {
        await using var store = await StoreWithStateAsync();
        var backup = new StateBackup(Config("{interval: 1 hour, keep: 24, path: backups}"), store, _clock);

        var first = await backup.TakeIfDueAsync(Ct);
        _clock.Advance(Duration.FromMinutes(59));
        var tooSoon = await backup.TakeIfDueAsync(Ct);
        _clock.Advance(Duration.FromMinutes(1));
        var due = await backup.TakeIfDueAsync(Ct);

        Assert.Equal(Path.Combine(Backups, "deltasync-state-20250314T092653Z.json"), first);
        Assert.Null(tooSoon);
        Assert.Equal(Path.Combine(Backups, "deltasync-state-20250314T102653Z.json"), due);
        Assert.Equal([due, first], backup.List().Select(b => b.Path));
        Assert.Equal([T0 + Duration.FromHours(1), T0], backup.List().Select(b => b.TakenAt));
        Assert.Empty(Directory.EnumerateFiles(Backups, ".*"));
    }

    [Fact]
    public async Task Backups_beyond_keep_are_deleted_oldest_first_and_other_files_are_left_alone()
    {
        await using var store = await StoreWithStateAsync();
        var backup = new StateBackup(Config("{interval: 10 minutes, keep: 3, path: backups}"), store, _clock);
        Directory.CreateDirectory(Backups);
        await File.WriteAllTextAsync(Path.Combine(Backups, "notes.txt"), "mine", Ct);
        await File.WriteAllTextAsync(Path.Combine(Backups, "deltasync-state-latest.json"), "not a backup name", Ct);

        var written = new List<string?>();
        for (var i = 0; i < 5; i++)
        {
            written.Add(await backup.TakeIfDueAsync(Ct));
            _clock.Advance(Duration.FromMinutes(10));
        }

        Assert.All(written, Assert.NotNull);
        Assert.Equal(written.Skip(2).Reverse(), backup.List().Select(b => b.Path));
        Assert.Equal(
            ["deltasync-state-20250314T094653Z.json", "deltasync-state-20250314T095653Z.json", "deltasync-state-20250314T100653Z.json", "deltasync-state-latest.json", "notes.txt"],
            Directory.EnumerateFiles(Backups).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_backup_carries_the_conflict_log_and_review_queue_into_the_restored_store()
    {
        await using var store = await StoreWithStateAsync();
        var logged = new ConflictLogRecord("conflict_a:detected", "conflict_a", "shop/crm/orders", "detected", T0, """{"conflict_id":"conflict_a"}""");
        var review = new ConflictReview("conflict_a", "shop/crm/orders", "orders", "7", "0107", T0, """{"conflict_id":"conflict_a"}""");
        await store.AppendConflictLogAsync([logged], Ct);
        await store.AddConflictReviewsAsync([review], Ct);
        var config = Config("{}");
        var path = await new StateBackup(config, store, _clock).TakeIfDueAsync(Ct);
        await using var fresh = new FileStateStore(Path.Combine(_folder, "restored"));
        await fresh.InitializeAsync(Ct);

        await new StateAdmin(config, fresh, _clock).ImportAsync(await File.ReadAllTextAsync(path!, Ct), replace: true, Ct);

        Assert.Equal([logged], await fresh.ReadConflictLogAsync(null, 10, Ct));
        Assert.Equal([review], await fresh.ReadConflictReviewsAsync(null, 10, Ct));
    }

    [Fact]
    public async Task A_backup_restores_into_a_fresh_store_with_the_same_checkpoints_and_dead_letters()
    {
        await using var store = await StoreWithStateAsync();
        var config = Config("{}");
        var path = await new StateBackup(config, store, _clock).TakeIfDueAsync(Ct);
        Assert.Equal(Path.Combine(_folder, "backups"), Path.GetDirectoryName(path));
        await using var fresh = new FileStateStore(Path.Combine(_folder, "restored"));
        await fresh.InitializeAsync(Ct);

        var result = await new StateAdmin(config, fresh, _clock).ImportAsync(await File.ReadAllTextAsync(path!, Ct), replace: false, Ct);

        Assert.Equal((3, 2), (result.Versions, result.DeadLetters));
        Assert.Equal(await store.ListStreamsAsync(Ct), await fresh.ListStreamsAsync(Ct));
        foreach (var stream in await store.ListStreamsAsync(Ct))
        {
            Assert.Equal(await store.ReadHistoryAsync(stream, 100, Ct), await fresh.ReadHistoryAsync(stream, 100, Ct));
        }

        Assert.Equal(await store.ReadDeadLettersAsync(null, 100, Ct), await fresh.ReadDeadLettersAsync(null, 100, Ct));
        var loaded = await new CheckpointHistory(fresh, _clock).LoadAsync("shop/orders", new RecoveryOptions(true, false, false), Ct);
        Assert.Equal(Position.Parse("cursor:200"), loaded.Checkpoint!.Position);
    }

    [Fact]
    public async Task After_a_run_a_failed_backup_is_a_warning_and_no_block_means_no_backup()
    {
        await using var store = await StoreWithStateAsync();
        Directory.CreateDirectory(_folder);
        await File.WriteAllTextAsync(Path.Combine(_folder, "in-the-way"), "a file where the folder should be", Ct);

        var warning = await StateBackup.AfterRunAsync(Config("{path: in-the-way}"), store, _clock, Ct);
        var none = await StateBackup.AfterRunAsync(ConfigText.Parse(ConfigText.Minimal), store, _clock, Ct);
        var fine = await StateBackup.AfterRunAsync(Config("{keep: 1}"), store, _clock, Ct);

        Assert.StartsWith($"State backup to {Path.Combine(_folder, "in-the-way")} failed: ", warning, StringComparison.Ordinal);
        Assert.Null(none);
        Assert.Null(fine);
        Assert.Single(Directory.EnumerateFiles(Backups));
        Assert.False(Directory.Exists(Path.Combine(ConfigText.Folder, "backups")));
    }

    /// <summary>A configuration living in this test's folder, with <paramref name="backup"/> as its <c>state.backup</c>.</summary>
    private SyncConfig Config(string backup) =>
        ConfigLoader.Parse(ConfigText.Minimal + $"\n  name: shop\nstate:\n  backup: {backup}", Path.Combine(_folder, "shop.yaml"), _ => null);

    /// <summary>A file store holding two streams' checkpoints and two dead letters.</summary>
    private async Task<FileStateStore> StoreWithStateAsync()
    {
        var store = new FileStateStore(Path.Combine(_folder, "state"));
        await store.InitializeAsync(Ct);
        var history = new CheckpointHistory(store, _clock);
        await history.AppendAsync(Checkpoint("shop/orders", 1, "cursor:100"), Ct);
        await history.AppendAsync(Checkpoint("shop/orders", 2, "cursor:200"), Ct);
        await history.AppendAsync(Checkpoint("shop/customers", 1, "cursor:7"), Ct);
        await store.AddDeadLettersAsync(
            [
                new DeadLetter("shop/orders", "orders", "42", """{"id":42}""", "bad total", ErrorClass.Permanent, Position.Parse("cursor:42"), T0, 3),
                new DeadLetter("shop/customers", "customers", "7", """{"id":7}""", "bad date", ErrorClass.Permanent, Position.Parse("cursor:7"), T0),
            ],
            Ct);
        return store;
    }

    private static Checkpoint Checkpoint(string stream, long version, string position) => new(
        stream,
        stream[(stream.IndexOf('/', StringComparison.Ordinal) + 1)..],
        version,
        Position.Parse(position),
        "cursor",
        T0,
        T0,
        "fp",
        CheckpointCounters.Zero,
        Epoch: 1,
        RunId: "run-1",
        CreatedAt: T0 + Duration.FromSeconds(version));
}

/// <summary>A clock the test moves by hand.</summary>
internal sealed class TestClock(Instant start) : IClock
{
    private Instant _now = start;

    public Instant GetCurrentInstant() => _now;

    public void Advance(Duration by) => _now += by;
}
