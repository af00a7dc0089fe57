using DeltaSync.Core.State;
using NodaTime;
using NodaTime.Text;

namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>The engine on a file state store: table leases with fencing epochs, and scheduled backups.</summary>
public sealed class FileStateSyncTests : IDisposable
{
    private const string FileState = "state:\n  storage: {type: file, path: state}";

    private readonly SyncWorkspace _workspace = new();
    private readonly ItemsTable _items;

    public FileStateSyncTests()
    {
        _items = new ItemsTable(_workspace.Source);
        _items.Create();
        _items.InsertMany(1, 12);
    }

    private string StateFolder => Path.Combine(_workspace.Folder, "state");

    [Fact]
    public async Task Each_run_takes_the_table_lease_with_a_higher_epoch_and_writes_it_into_its_checkpoints()
    {
        var config = _workspace.Configure(SyncYaml.Config(ItemsTable.Name, batchSize: 5, blocks: FileState));

        await _workspace.RunCompletedAsync(config);
        _items.InsertMany(13, 14);
        await _workspace.RunCompletedAsync(config);

        await using var store = new FileStateStore(StateFolder);
        var history = await new CheckpointHistory(store, SystemClock.Instance).ListAsync(SyncWorkspace.Stream(ItemsTable.Name), 100, CancellationToken.None);
        Assert.Equal(1, history[^1].Parsed!.Epoch);
        Assert.Equal(2, history[0].Parsed!.Epoch);
        _workspace.AssertSynced(ItemsTable.Name, "id");

        // The run released its lease: another owner takes it at once, with the next epoch.
        Assert.Equal(3, await store.AcquireLeaseAsync(SyncWorkspace.Stream(ItemsTable.Name), "other-host/1/1", TimeSpan.FromMinutes(1), CancellationToken.None));
    }

    [Fact]
    public async Task A_table_whose_lease_another_worker_holds_fails_naming_the_holder_and_the_others_sync()
    {
        var config = _workspace.Configure(SyncYaml.Config([ItemsTable.Name, "other"], blocks: FileState));
        _workspace.Source.Execute("CREATE TABLE other (id INTEGER PRIMARY KEY, updated_at TEXT); INSERT INTO other VALUES (1, '2026-01-01T00:00:00Z')");
        await using (var store = new FileStateStore(StateFolder))
        {
            await store.InitializeAsync(CancellationToken.None);
            await store.AcquireLeaseAsync(SyncWorkspace.Stream(ItemsTable.Name), "other-host/4242/1", TimeSpan.FromMinutes(5), CancellationToken.None);
        }

        var report = await _workspace.RunAsync(config);

        var items = Assert.Single(report.Tables, t => t.Table == ItemsTable.Name);
        Assert.Equal("failed", items.Status);
        Assert.Contains("held by 'other-host/4242/1'", items.Error, StringComparison.Ordinal);
        Assert.Equal("completed", Assert.Single(report.Tables, t => t.Table == "other").Status);
        Assert.False(_workspace.Destination.TableExists(ItemsTable.Name));
    }

    [Fact]
    public async Task A_run_writes_a_backup_when_due_and_a_backup_that_fails_is_only_a_warning()
    {
        var start = SystemClock.Instance.GetCurrentInstant();
        var clock = new ManualClock(start);
        var backups = Path.Combine(_workspace.Folder, "backups");
        var config = _workspace.Configure(SyncYaml.Config(ItemsTable.Name, blocks: FileState + "\n  backup: {interval: 1 hour, keep: 2}"));

        await _workspace.RunCompletedAsync(config, clock: clock);
        clock.Advance(Duration.FromMinutes(30));
        await _workspace.RunCompletedAsync(config, clock: clock);
        Assert.Equal(
            ["deltasync-state-" + InstantPattern.CreateWithInvariantCulture("uuuuMMdd'T'HHmmss'Z'").Format(start) + ".json"],
            Directory.GetFiles(backups).Select(Path.GetFileName));

        Directory.Delete(backups, recursive: true);
        await File.WriteAllTextAsync(backups, "a file where the backup folder should be");
        clock.Advance(Duration.FromHours(1));
        var report = await _workspace.RunCompletedAsync(config, clock: clock);

        Assert.Contains(report.Warnings, w => w.StartsWith($"State backup to {backups} failed: ", StringComparison.Ordinal));
    }

    public void Dispose() => _workspace.Dispose();
}
