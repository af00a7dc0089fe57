using System.Text;
using DeltaSync.Core.Config;
using DeltaSync.Core.Model;
using DeltaSync.Core.State;
using NodaTime;

namespace DeltaSync.Core.Tests.State;

public sealed class FileStateStoreTests : StateStoreContract, IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "deltasync-tests", "file-state-" + Guid.NewGuid().ToString("N"));

    protected override async Task<IStateStore> CreateStoreAsync()
    {
        var store = new FileStateStore(_folder);
        await store.InitializeAsync(Ct);
        return store;
    }

    protected override Task<IStateStore> ReopenAsync() => CreateStoreAsync();

    public void Dispose()
    {
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    [Fact]
    public async Task A_checkpoint_is_one_file_per_version_under_its_escaped_stream_name()
    {
        await using var store = await CreateStoreAsync();

        await store.AppendAsync(Stored("sync/orders", 1, T0, "payload-1"), Ct);
        await store.AppendAsync(Stored("sync/orders", 2, T0, "payload-2"), Ct);

        var folder = Path.Combine(_folder, "checkpoints", "sync%2Forders");
        Assert.Equal(["000000000001.json", "000000000002.json"], Directory.GetFiles(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal("payload-2", await File.ReadAllTextAsync(Path.Combine(folder, "000000000002.json"), Ct));
        Assert.Equal("file:" + _folder, store.Description);
    }

    [Fact]
    public async Task Files_that_are_not_versions_are_ignored()
    {
        await using var store = await CreateStoreAsync();
        await store.AppendAsync(Stored("sync/orders", 1, T0), Ct);
        var folder = Path.Combine(_folder, "checkpoints", "sync%2Forders");
        await File.WriteAllTextAsync(Path.Combine(folder, ".0123abcd.tmp"), "half a write", Ct);
        await File.WriteAllTextAsync(Path.Combine(folder, "notes.json"), "{}", Ct);
        Directory.CreateDirectory(Path.Combine(_folder, "checkpoints", "lost+found"));

        Assert.Equal([1L], (await store.ReadHistoryAsync("sync/orders", 10, Ct)).Select(h => h.Version));
        Assert.Equal(["sync/orders"], await store.ListStreamsAsync(Ct));
    }

    [Theory]
    [InlineData("sync/orders", "sync%2Forders")]
    [InlineData("a b.c", "a%20b%2Ec")]
    [InlineData("ü", "%C3%BC")]
    [InlineData("..", "%2E%2E")]
    public void Stream_names_are_percent_encoded_reversibly(string stream, string escaped)
    {
        Assert.Equal(escaped, FileStateStore.Escape(stream));
        Assert.True(FileStateStore.TryUnescape(escaped, out var back));
        Assert.Equal(stream, back);
    }

    [Theory]
    [InlineData("sync%2forders")]
    [InlineData(".deleted-0123")]
    [InlineData("100%")]
    [InlineData("%FF")]
    [InlineData("")]
    public void Names_this_store_did_not_write_are_not_streams(string name) =>
        Assert.False(FileStateStore.TryUnescape(name, out _));

    [Fact]
    public async Task A_truncated_or_binary_checkpoint_file_is_still_listed_and_repaired_past()
    {
        await using var store = await CreateStoreAsync();
        var history = new CheckpointHistory(store, SystemClock.Instance);
        await history.AppendAsync(Checkpoint(1, "cursor:100"), Ct);
        await history.AppendAsync(Checkpoint(2, "cursor:200"), Ct);
        await history.AppendAsync(Checkpoint(3, "cursor:300"), Ct);
        var truncated = await File.ReadAllBytesAsync(VersionFile("sync/orders", 3), Ct);
        await File.WriteAllBytesAsync(VersionFile("sync/orders", 3), truncated[..(truncated.Length / 2)], Ct);
        await File.WriteAllBytesAsync(VersionFile("sync/orders", 2), [0xFF, 0xFE, 0x00, 0xC3, 0x28, 0x7B], Ct);

        var stored = await store.ReadHistoryAsync("sync/orders", 10, Ct);
        var loaded = await history.LoadAsync("sync/orders", new RecoveryOptions(true, true, false), Ct);

        Assert.Equal([3L, 2L, 1L], stored.Select(s => s.Version));
        Assert.Equal(Encoding.UTF8.GetString(truncated[..(truncated.Length / 2)]), stored[0].Payload);
        Assert.NotNull(loaded.Checkpoint);
        Assert.Equal(4, loaded.Checkpoint.Version);
        Assert.Equal(Position.Parse("cursor:100"), loaded.Checkpoint.Position);
    }

    [Fact]
    public async Task No_temporary_files_are_left_behind()
    {
        await using var store = await CreateStoreAsync();
        await store.AppendAsync(Stored("sync/orders", 1, T0), Ct);
        await Assert.ThrowsAsync<StateConflictException>(() => store.AppendAsync(Stored("sync/orders", 1, T0), Ct));
        await store.AddDeadLettersAsync([Letter("sync/orders", "1", "{}", T0), Letter("sync/orders", "1", "{}", T0)], Ct);
        await store.AppendRunAsync(new RunRecord("run-1", T0, "succeeded", "{}"), Ct);
        await store.AppendRunAsync(new RunRecord("run-1", T0 + Duration.FromSeconds(1), "succeeded", "{}"), Ct);

        Assert.Empty(Directory.EnumerateFiles(_folder, ".*", SearchOption.AllDirectories));
        Assert.Single(Directory.EnumerateFiles(Path.Combine(_folder, "runs")));
    }

    private string VersionFile(string stream, long version) =>
        Path.Combine(_folder, "checkpoints", FileStateStore.Escape(stream), $"{version:D12}.json");

    protected override async Task TamperAsync(string stream, long version, Func<string, string> change)
    {
        var file = VersionFile(stream, version);
        await File.WriteAllTextAsync(file, change(await File.ReadAllTextAsync(file, Ct)), Ct);
    }

    private static Checkpoint Checkpoint(long version, string position) => OrdersCheckpoint(version, position);
}
