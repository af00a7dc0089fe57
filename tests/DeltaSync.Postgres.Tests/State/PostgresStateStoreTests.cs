using System.Net;
using System.Net.Sockets;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.State;
using DeltaSync.Core.Tests.State;
using DeltaSync.Postgres.State;
using Npgsql;

namespace DeltaSync.Postgres.Tests.State;

/// <summary>The state-store contract and the lease against the test server, one fresh database per test.</summary>
public sealed class PostgresStateStoreTests : StateStoreContract, IAsyncLifetime
{
    private const string Stream = "sync/orders";
    private static readonly TimeSpan Ttl = TimeSpan.FromMinutes(5);

    private PgDatabase? _database;

    private PgDatabase Database => _database ?? throw new InvalidOperationException("the test database is created in InitializeAsync");

    public async Task InitializeAsync() => _database = await PgDatabase.CreateAsync("state");

    public async Task DisposeAsync()
    {
        if (_database is not null)
        {
            await _database.DisposeAsync();
        }
    }

    protected override async Task<IStateStore> CreateStoreAsync() => await OpenStoreAsync();

    protected override async Task<IStateStore> ReopenAsync() => await OpenStoreAsync();

    protected override async Task TamperAsync(string stream, long version, Func<string, string> change)
    {
        var payload = await Database.ScalarAsync<string>("SELECT payload FROM deltasync.state_checkpoints WHERE stream = $1 AND version = $2", stream, version);
        await using var connection = await Database.OpenAsync();
        await using var write = new NpgsqlCommand("UPDATE deltasync.state_checkpoints SET payload = $1 WHERE stream = $2 AND version = $3", connection);
        write.Parameters.Add(new NpgsqlParameter { Value = change(payload) });
        write.Parameters.Add(new NpgsqlParameter { Value = stream });
        write.Parameters.Add(new NpgsqlParameter { Value = version });
        Assert.Equal(1, await write.ExecuteNonQueryAsync(Ct));
    }

    [Fact]
    public async Task Initializing_creates_the_state_tables_at_schema_version_one_in_the_configured_schema()
    {
        await using var store = await OpenStoreAsync("Sync State");
        await store.AppendAsync(Stored(Stream, 1, T0), Ct);

        var tables = await Database.RowsAsync("SELECT table_name FROM information_schema.tables WHERE table_schema = 'Sync State' ORDER BY table_name");
        Assert.Equal(["state_checkpoints", "state_dead_letters", "state_leases", "state_meta", "state_runs"], tables);
        Assert.Equal("1", await Database.ScalarAsync<string>("""SELECT value FROM "Sync State".state_meta WHERE key = 'schema_version'"""));
        Assert.Equal(0L, await Database.ScalarAsync<long>("SELECT count(*) FROM pg_namespace WHERE nspname = 'deltasync'"));
        Assert.Equal($"postgresql://127.0.0.1:{PostgresConnectionFactory.Parse(Database.Uri).Port}/{Database.Name} (schema Sync State)", store.Description);
    }

    [Fact]
    public async Task Stores_in_two_schemas_of_one_database_keep_their_state_apart()
    {
        await using var first = await OpenStoreAsync();
        await using var second = await OpenStoreAsync("tenant_b");

        await first.AppendAsync(Stored(Stream, 1, T0, "first"), Ct);
        await second.AppendAsync(Stored(Stream, 1, T0, "second"), Ct);

        Assert.Equal("first", Assert.Single(await first.ReadHistoryAsync(Stream, 10, Ct)).Payload);
        Assert.Equal("second", Assert.Single(await second.ReadHistoryAsync(Stream, 10, Ct)).Payload);
    }

    [Fact]
    public async Task State_tables_join_a_schema_that_already_holds_destination_tables()
    {
        await Database.ExecuteAsync("CREATE SCHEMA deltasync");
        await Database.ExecuteAsync("CREATE TABLE deltasync.ledger (k text PRIMARY KEY)");
        await Database.ExecuteAsync("INSERT INTO deltasync.ledger VALUES ('kept')");

        await using var store = await OpenStoreAsync();
        await store.AppendAsync(Stored(Stream, 1, T0), Ct);

        Assert.Equal("kept", await Database.ScalarAsync<string>("SELECT k FROM deltasync.ledger"));
        Assert.Single(await store.ReadHistoryAsync(Stream, 10, Ct));
    }

    [Fact]
    public async Task Stores_initializing_at_the_same_time_all_succeed_and_share_one_state()
    {
        using var start = new ManualResetEventSlim();
        var opening = Enumerable.Range(0, 8)
            .Select(_ => Task.Run(
                async () =>
                {
                    start.Wait(Ct);
                    return await OpenStoreAsync();
                },
                Ct))
            .ToList();
        start.Set();

        var stores = await Task.WhenAll(opening);
        try
        {
            for (var i = 0; i < stores.Length; i++)
            {
                await stores[i].AppendAsync(Stored(Stream, i + 1, T0), Ct);
            }

            Assert.Equal(stores.Length, (await stores[0].ReadHistoryAsync(Stream, 100, Ct)).Count);
            Assert.Equal(1L, await Database.ScalarAsync<long>("SELECT count(*) FROM deltasync.state_meta"));
        }
        finally
        {
            foreach (var store in stores)
            {
                await store.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_state_schema_from_a_newer_DeltaSync_is_refused()
    {
        await using (await OpenStoreAsync())
        {
        }

        await Database.ExecuteAsync("UPDATE deltasync.state_meta SET value = '2' WHERE key = 'schema_version'");

        await using var store = new PostgresStateStore(Database.Uri);
        var error = await Assert.ThrowsAsync<SyncException>(() => store.InitializeAsync(Ct));
        Assert.Equal(ErrorClass.Fatal, error.ErrorClass);
        Assert.Contains("schema version 2", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("postgresql://deltasync:{0}@127.0.0.1:{1}/state?connect_timeout=5")]
    [InlineData("Host=127.0.0.1;Port={1};Username=deltasync;Password={0};Database=state;Timeout=5")]
    public async Task A_server_that_is_not_listening_fails_transiently_without_showing_the_password(string template)
    {
        const string Password = "pa55-w0rd-not-for-logs";
        var connection = string.Format(System.Globalization.CultureInfo.InvariantCulture, template, Password, ClosedPort());
        await using var store = new PostgresStateStore(connection);

        var error = await Assert.ThrowsAsync<SyncException>(() => store.InitializeAsync(Ct));

        Assert.Equal(ErrorClass.Transient, error.ErrorClass);
        Assert.Contains("127.0.0.1", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Password, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Password, error.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(Password, store.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Owners_racing_for_a_lease_have_exactly_one_winner()
    {
        await using var store = await OpenStoreAsync();
        for (var round = 0; round < 10; round++)
        {
            var stream = $"sync/race-{round}";
            using var start = new ManualResetEventSlim();
            var attempts = Enumerable.Range(0, 6)
                .Select(worker => Task.Run(
                    async () =>
                    {
                        start.Wait(Ct);
                        try
                        {
                            return (Owner: $"worker-{worker}", Epoch: (long?)await store.AcquireLeaseAsync(stream, $"worker-{worker}", Ttl, Ct));
                        }
                        catch (LeaseHeldException)
                        {
                            return (Owner: $"worker-{worker}", Epoch: null);
                        }
                    },
                    Ct))
                .ToList();
            start.Set();

            var winner = Assert.Single(await Task.WhenAll(attempts), a => a.Epoch is not null);

            Assert.Equal(1, winner.Epoch);
            Assert.Equal(winner.Owner, await Database.ScalarAsync<string>("SELECT owner FROM deltasync.state_leases WHERE stream = $1", stream));
        }
    }

    private async Task<PostgresStateStore> OpenStoreAsync(string schema = "deltasync")
    {
        var store = new PostgresStateStore(Database.Uri, schema);
        try
        {
            await store.InitializeAsync(Ct);
            return store;
        }
        catch
        {
            await store.DisposeAsync();
            throw;
        }
    }

    /// <summary>Moves a lease's expiry into the past, as waiting out its time to live would, without waiting.</summary>
    private Task ExpireLeaseAsync(string stream) =>
        Database.ExecuteAsync("UPDATE deltasync.state_leases SET expires_at = now() - interval '1 second' WHERE stream = $1", stream);

    /// <summary>A loopback port nothing listens on: bound by the system, then closed again.</summary>
    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
