using DeltaSync.Core.State;
using DeltaSync.Core.Tests.State;
using DeltaSync.Redis.State;

namespace DeltaSync.Redis.Tests.State;

/// <summary>The shared lease contract against a real Redis state store, one fresh key prefix per test.</summary>
public sealed class RedisStateStoreLeaseTests : LeaseStoreContract, IAsyncLifetime
{
    private RedisKeyspace? _keyspace;

    private RedisKeyspace Keyspace => _keyspace ?? throw new InvalidOperationException("the key prefix is created in InitializeAsync");

    public async Task InitializeAsync() => _keyspace = await RedisKeyspace.CreateAsync("leases");

    public async Task DisposeAsync()
    {
        if (_keyspace is not null)
        {
            await _keyspace.DisposeAsync();
        }
    }

    protected override async Task<IStateStore> CreateStoreAsync()
    {
        var store = new RedisStateStore(Keyspace.Uri);
        await store.InitializeAsync(Ct);
        return store;
    }

    protected override Task<IStateStore> ReopenAsync() => CreateStoreAsync();

    protected override async Task ExpireLeaseAsync(string stream)
    {
        var key = Keyspace.Prefix + "lease:" + stream;
        Assert.True(await Keyspace.Database.KeyExistsAsync(key), $"no lease at {key}");
        await Keyspace.Database.HashSetAsync(key, "expires_at_ms", DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeMilliseconds());
    }
}
