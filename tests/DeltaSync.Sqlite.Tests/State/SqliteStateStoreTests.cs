using DeltaSync.Core.Config;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.State;
using DeltaSync.Core.Tests.State;
using DeltaSync.Sqlite.State;
using Microsoft.Data.Sqlite;
using NodaTime;

namespace DeltaSync.Sqlite.Tests.State;

public sealed class SqliteStateStoreTests : StateStoreContract, IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "deltasync-tests", "sqlite-state-" + Guid.NewGuid().ToString("N"));

    // A folder that does not exist yet: the store creates it.
    private string DatabasePath => Path.Combine(_folder, "nested", "state.db");

    protected override async Task<IStateStore> CreateStoreAsync()
    {
        var store = new SqliteStateStore(DatabasePath);
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
    public async Task Initializing_creates_a_WAL_database_at_schema_version_one()
    {
        await using var store = await CreateStoreAsync();

        await using var connection = await OpenAsync();
        Assert.Equal("wal", await ScalarAsync(connection, "PRAGMA journal_mode"));
        Assert.Equal("1", await ScalarAsync(connection, "SELECT value FROM meta WHERE key = 'schema_version'"));
        Assert.Equal("sqlite:" + DatabasePath, store.Description);
    }

    [Fact]
    public async Task Initializing_a_current_database_needs_no_write_lock_and_a_missing_table_is_recreated()
    {
        await using (await CreateStoreAsync())
        {
        }

        // Another process holds the write lock (a run saving state): opening the store to read must not wait for it.
        await using (var writer = await OpenAsync())
        {
            await ScalarAsync(writer, "BEGIN IMMEDIATE");
            var store = new SqliteStateStore(DatabasePath);
            await using (store)
            {
                var init = store.InitializeAsync(Ct);
                Assert.Same(init, await Task.WhenAny(init, Task.Delay(TimeSpan.FromSeconds(3), Ct)));
                await init;
            }

            await ScalarAsync(writer, "ROLLBACK");
        }

        await using (var connection = await OpenAsync())
        {
            await ScalarAsync(connection, "DROP TABLE conflict_reviews");
        }

        await using (await CreateStoreAsync())
        {
        }

        await using (var connection = await OpenAsync())
        {
            Assert.Equal(1L, await ScalarAsync(connection, "SELECT count(*) FROM sqlite_master WHERE name = 'conflict_reviews'"));
        }
    }

    [Fact]
    public async Task A_database_from_a_newer_DeltaSync_is_refused()
    {
        await using (await CreateStoreAsync())
        {
        }

        await using (var connection = await OpenAsync())
        {
            await ScalarAsync(connection, "UPDATE meta SET value = '2' WHERE key = 'schema_version'");
        }

        await using var store = new SqliteStateStore(DatabasePath);
        var error = await Assert.ThrowsAsync<SyncException>(() => store.InitializeAsync(Ct));
        Assert.Equal(ErrorClass.Fatal, error.ErrorClass);
        Assert.Contains("schema version 2", error.Message, StringComparison.Ordinal);
    }

    protected override async Task TamperAsync(string stream, long version, Func<string, string> change)
    {
        await using var connection = await OpenAsync();
        await using var read = connection.CreateCommand();
        read.CommandText = "SELECT payload FROM checkpoints WHERE stream = $stream AND version = $version";
        read.Parameters.AddWithValue("$stream", stream);
        read.Parameters.AddWithValue("$version", version);
        var payload = (string)(await read.ExecuteScalarAsync(Ct))!;
        await using var write = connection.CreateCommand();
        write.CommandText = "UPDATE checkpoints SET payload = $payload WHERE stream = $stream AND version = $version";
        write.Parameters.AddWithValue("$payload", change(payload));
        write.Parameters.AddWithValue("$stream", stream);
        write.Parameters.AddWithValue("$version", version);
        Assert.Equal(1, await write.ExecuteNonQueryAsync(Ct));
    }

    private async Task<SqliteConnection> OpenAsync()
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = DatabasePath, Pooling = false }.ToString());
        await connection.OpenAsync(Ct);
        return connection;
    }

    private static async Task<object?> ScalarAsync(SqliteConnection connection, string sql)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return await command.ExecuteScalarAsync(Ct);
    }

}
