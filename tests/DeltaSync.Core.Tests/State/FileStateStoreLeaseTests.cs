using System.Text.Json.Nodes;
using DeltaSync.Core.State;

namespace DeltaSync.Core.Tests.State;

public sealed class FileStateStoreLeaseTests : LeaseStoreContract, IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "deltasync-tests", "file-leases-" + Guid.NewGuid().ToString("N"));

    protected override async Task<IStateStore> CreateStoreAsync()
    {
        var store = new FileStateStore(_folder);
        await store.InitializeAsync(Ct);
        return store;
    }

    protected override Task<IStateStore> ReopenAsync() => CreateStoreAsync();

    protected override async Task ExpireLeaseAsync(string stream)
    {
        var path = LeaseFile(stream);
        var lease = JsonNode.Parse(await File.ReadAllTextAsync(path, Ct))!.AsObject();
        lease["expires_at"] = DateTimeOffset.UtcNow.AddSeconds(-1).ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);
        await File.WriteAllTextAsync(path, lease.ToJsonString(), Ct);
    }

    public void Dispose()
    {
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    [Fact]
    public async Task A_lease_is_one_json_file_per_stream_with_owner_epoch_and_expiry()
    {
        await using var store = await CreateStoreAsync();

        var epoch = await Leases(store).AcquireLeaseAsync(Stream, "worker-a", Ttl, Ct);

        var lease = JsonNode.Parse(await File.ReadAllTextAsync(LeaseFile(Stream), Ct))!.AsObject();
        Assert.Equal((Stream, "worker-a", epoch), (lease["stream"]!.GetValue<string>(), lease["owner"]!.GetValue<string>(), lease["epoch"]!.GetValue<long>()));
        Assert.True(DateTimeOffset.Parse(lease["expires_at"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture) > DateTimeOffset.UtcNow.AddMinutes(4));
        Assert.Empty(Directory.EnumerateFiles(_folder, ".*", SearchOption.AllDirectories));
        Assert.Empty(await store.ListStreamsAsync(Ct));
    }

    [Fact]
    public async Task While_another_process_holds_the_lock_file_a_lease_operation_waits_for_it()
    {
        await using var store = await CreateStoreAsync();
        await Leases(store).AcquireLeaseAsync(Stream, "worker-a", Ttl, Ct);
        var held = new FileStream(LeaseFile(Stream)[..^".json".Length] + ".lock", FileMode.Open, FileAccess.ReadWrite, FileShare.None);

        var acquire = Leases(store).AcquireLeaseAsync(Stream, "worker-a", Ttl, Ct);
        var finishedWhileLocked = await Task.WhenAny(acquire, Task.Delay(200, Ct)) == acquire;
        await held.DisposeAsync();

        Assert.False(finishedWhileLocked);
        Assert.Equal(1, await acquire);
    }

    [Fact]
    public async Task An_unreadable_lease_file_is_reported_not_silently_reset_to_epoch_one()
    {
        await using var store = await CreateStoreAsync();
        await Leases(store).AcquireLeaseAsync(Stream, "worker-a", Ttl, Ct);
        await File.WriteAllTextAsync(LeaseFile(Stream), "{\"owner\":", Ct);

        var error = await Assert.ThrowsAsync<InvalidDataException>(() => Leases(store).AcquireLeaseAsync(Stream, "worker-b", Ttl, Ct));

        Assert.Contains(LeaseFile(Stream), error.Message, StringComparison.Ordinal);
        Assert.Contains("rather than deleting it", error.Message, StringComparison.Ordinal);
    }

    private string LeaseFile(string stream) => Path.Combine(_folder, "leases", FileStateStore.Escape(stream) + ".json");
}
