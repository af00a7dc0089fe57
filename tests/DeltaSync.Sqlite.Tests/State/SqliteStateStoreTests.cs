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

    [Fact]
    public async Task A_checkpoint_row_changed_by_hand_is_reported_corrupt_and_repaired_from_the_previous_version()
    {
        await using var store = await CreateStoreAsync();
        var history = new CheckpointHistory(store, SystemClock.Instance);
        await history.AppendAsync(Checkpoint(1, "cursor:100"), Ct);
        await history.AppendAsync(Checkpoint(2, "cursor:200"), Ct);
        await CorruptAsync("sync/orders", 2, "replace(payload, 'cursor:200', 'cursor:900')");

        var listed = await history.ListAsync("sync/orders", 10, Ct);
        var loaded = await history.LoadAsync("sync/orders", new RecoveryOptions(ValidateOnStart: true, AutoRepair: true, ResetOnCorruption: false), Ct);

        Assert.Contains("checksum mismatch", listed[0].Problem, StringComparison.Ordinal);
        Assert.NotNull(loaded.Checkpoint);
        Assert.Equal(3, loaded.Checkpoint.Version);
        Assert.Equal(Position.Parse("cursor:100"), loaded.Checkpoint.Position);
        Assert.Contains("version 2", Assert.Single(loaded.Warnings), StringComparison.Ordinal);
        Assert.Equal([3L, 2L, 1L], (await store.ReadHistoryAsync("sync/orders", 10, Ct)).Select(h => h.Version));
    }

    [Fact]
    public async Task Without_auto_repair_a_truncated_checkpoint_row_stops_the_load_naming_stream_and_version()
    {
        await using var store = await CreateStoreAsync();
        var history = new CheckpointHistory(store, SystemClock.Instance);
        await history.AppendAsync(Checkpoint(1, "cursor:100"), Ct);
        await history.AppendAsync(Checkpoint(2, "cursor:200"), Ct);
        await CorruptAsync("sync/orders", 2, "substr(payload, 1, 40)");

        var error = await Assert.ThrowsAsync<CheckpointCorruptException>(
            () => history.LoadAsync("sync/orders", new RecoveryOptions(ValidateOnStart: true, AutoRepair: false, ResetOnCorruption: false), Ct));

        Assert.Contains("'sync/orders'", error.Message, StringComparison.Ordinal);
        Assert.Contains("version 2", error.Message, StringComparison.Ordinal);
        Assert.Equal(2, (await store.ReadHistoryAsync("sync/orders", 10, Ct)).Count);
    }

    private async Task CorruptAsync(string stream, long version, string newPayloadExpression)
    {
        await using var connection = await OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = $"UPDATE checkpoints SET payload = {newPayloadExpression} WHERE stream = $stream AND version = $version";
        command.Parameters.AddWithValue("$stream", stream);
        command.Parameters.AddWithValue("$version", version);
        Assert.Equal(1, await command.ExecuteNonQueryAsync(Ct));
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

    private static Checkpoint Checkpoint(long version, string position) => new(
        "sync/orders",
        "orders",
        version,
        Position.Parse(position),
        "cursor",
        T0,
        T0 - Duration.FromSeconds(5),
        "fp-1",
        CheckpointCounters.Zero,
        Epoch: 1,
        RunId: "run-1",
        CreatedAt: T0 + Duration.FromSeconds(version));
}
