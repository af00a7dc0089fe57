using DeltaSync.Core.State;
using DeltaSync.Core.Tests.State;
using DeltaSync.Postgres.State;

namespace DeltaSync.Postgres.Tests.State;

/// <summary>The shared lease contract against a real PostgreSQL state store.</summary>
public sealed class PostgresStateStoreLeaseTests : LeaseStoreContract, IAsyncLifetime
{
    private PgDatabase? _database;

    private PgDatabase Database => _database ?? throw new InvalidOperationException("the test database is created in InitializeAsync");

    public async Task InitializeAsync() => _database = await PgDatabase.CreateAsync("leases");

    public async Task DisposeAsync()
    {
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }
    }

    protected override async Task<IStateStore> CreateStoreAsync()
    {
        var store = new PostgresStateStore(Database.Uri);
        await store.InitializeAsync(Ct);
        return store;
    }

    protected override Task<IStateStore> ReopenAsync() => CreateStoreAsync();

    protected override Task ExpireLeaseAsync(string stream) =>
        Database.ExecuteAsync("UPDATE deltasync.state_leases SET expires_at = now() - interval '1 second' WHERE stream = $1", stream);
}
