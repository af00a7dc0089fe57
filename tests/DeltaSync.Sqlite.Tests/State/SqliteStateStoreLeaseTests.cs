using DeltaSync.Core.State;
using DeltaSync.Core.Tests.State;
using DeltaSync.Sqlite.State;
using Microsoft.Data.Sqlite;

namespace DeltaSync.Sqlite.Tests.State;

public sealed class SqliteStateStoreLeaseTests : LeaseStoreContract, IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "deltasync-tests", "sqlite-leases-" + Guid.NewGuid().ToString("N"));

    private string DatabasePath => Path.Combine(_folder, "state.db");

    protected override async Task<IStateStore> CreateStoreAsync()
    {
        var store = new SqliteStateStore(DatabasePath);
        await store.InitializeAsync(Ct);
        return store;
    }

    protected override Task<IStateStore> ReopenAsync() => CreateStoreAsync();

    protected override async Task ExpireLeaseAsync(string stream)
    {
        await using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = DatabasePath, Pooling = false, DefaultTimeout = 30 }.ToString());
        await connection.OpenAsync(Ct);
        await using var command = connection.CreateCommand();
        command.CommandText = "UPDATE leases SET expires_at_ms = $past WHERE stream = $stream";
        command.Parameters.AddWithValue("$past", DateTimeOffset.UtcNow.AddSeconds(-1).ToUnixTimeMilliseconds());
        command.Parameters.AddWithValue("$stream", stream);
        Assert.Equal(1, await command.ExecuteNonQueryAsync(Ct));
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }
}
