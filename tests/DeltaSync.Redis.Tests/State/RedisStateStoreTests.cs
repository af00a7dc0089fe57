using System.Globalization;
using System.Net;
using System.Net.Sockets;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.State;
using DeltaSync.Core.Tests.State;
using DeltaSync.Redis.State;
using StackExchange.Redis;

namespace DeltaSync.Redis.Tests.State;

/// <summary>The state-store contract and the lease against the test server, one fresh key prefix per test.</summary>
public sealed class RedisStateStoreTests : StateStoreContract, IAsyncLifetime
{
    private const string Stream = "sync/orders";
    private static readonly TimeSpan Ttl = TimeSpan.FromMinutes(5);

    private RedisKeyspace? _keyspace;

    private RedisKeyspace Keyspace => _keyspace ?? throw new InvalidOperationException("the key prefix is created in InitializeAsync");

    public async Task InitializeAsync() => _keyspace = await RedisKeyspace.CreateAsync("state");

    public async Task DisposeAsync()
    {
        if (_keyspace is not null)
        {
            await _keyspace.DisposeAsync();
        }
    }

    protected override async Task<IStateStore> CreateStoreAsync() => await OpenStoreAsync();

    protected override async Task<IStateStore> ReopenAsync() => await OpenStoreAsync();

    protected override async Task TamperAsync(string stream, long version, Func<string, string> change)
    {
        var key = Keyspace.Prefix + "checkpoints:" + stream;
        var member = (string)Assert.Single(await Keyspace.Database.SortedSetRangeByScoreAsync(key, version, version))!;
        var payloadStart = member.IndexOf('\n', member.IndexOf('\n', StringComparison.Ordinal) + 1) + 1;
        Assert.True(await Keyspace.Database.SortedSetRemoveAsync(key, member));
        Assert.True(await Keyspace.Database.SortedSetAddAsync(key, member[..payloadStart] + change(member[payloadStart..]), version));
    }

    [Fact]
    public async Task Initializing_records_schema_version_one_and_every_key_is_under_the_prefix()
    {
        await using var store = await OpenStoreAsync();
        await store.AppendAsync(Stored(Stream, 1, T0), Ct);
        await store.AddDeadLettersAsync([Letter(Stream, "1", "{}", T0)], Ct);
        await store.AppendRunAsync(new RunRecord("run-1", T0, "succeeded", "{}"), Ct);
        await store.AcquireLeaseAsync(Stream, "worker-a", Ttl, Ct);

        Assert.Equal("1", (string?)await Keyspace.Database.HashGetAsync(Keyspace.Prefix + "meta", "schema_version"));
        Assert.Equal(
            ["checkpoints:sync/orders", "dead_letters", "dead_letters:attempts", "dead_letters:failure", "dead_letters:next", "dead_letters:order", "dead_letters:order:sync/orders", "dead_letters:rank", "lease:sync/orders", "meta", "runs", "runs:order", "runs:rank", "streams"],
            (await Keyspace.KeysAsync()).Order(StringComparer.Ordinal));
        Assert.Equal($"redis://{RedisKeyspace.HostAndPort}/0 (prefix {Keyspace.Prefix})", store.Description);
        Assert.DoesNotContain(RedisKeyspace.Password, store.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task State_from_a_newer_DeltaSync_is_refused()
    {
        await using (await OpenStoreAsync())
        {
        }

        await Keyspace.Database.HashSetAsync(Keyspace.Prefix + "meta", "schema_version", "2");

        await using var store = new RedisStateStore(Keyspace.Uri);
        var error = await Assert.ThrowsAsync<SyncException>(() => store.InitializeAsync(Ct));
        Assert.Equal(ErrorClass.Fatal, error.ErrorClass);
        Assert.Contains("schema version 2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stores_with_different_prefixes_in_one_database_keep_their_state_apart()
    {
        await using var first = await OpenStoreAsync();
        await using var second = new RedisStateStore($"{RedisKeyspace.ServerUri}?prefix={Uri.EscapeDataString(Keyspace.Prefix + "tenant-b:")}");
        await second.InitializeAsync(Ct);

        await first.AppendAsync(Stored(Stream, 1, T0, "first"), Ct);
        await second.AppendAsync(Stored(Stream, 1, T0, "second"), Ct);

        Assert.Equal("first", Assert.Single(await first.ReadHistoryAsync(Stream, 10, Ct)).Payload);
        Assert.Equal("second", Assert.Single(await second.ReadHistoryAsync(Stream, 10, Ct)).Payload);
        Assert.Equal([Stream], await first.ListStreamsAsync(Ct));
    }

    [Fact]
    public async Task A_StackExchange_configuration_string_opens_the_same_state_as_the_URI()
    {
        await using var uri = await OpenStoreAsync();
        await uri.AppendAsync(Stored(Stream, 1, T0, "via uri"), Ct);
        var native = $"{RedisKeyspace.HostAndPort},password={RedisKeyspace.Password},prefix={Keyspace.Prefix}";

        foreach (var connection in new[] { native, "redis://" + native })
        {
            await using var store = new RedisStateStore(connection);
            await store.InitializeAsync(Ct);

            Assert.Equal("via uri", Assert.Single(await store.ReadHistoryAsync(Stream, 10, Ct)).Payload);
            Assert.Equal(uri.Description, store.Description);
        }
    }

    [Fact]
    public async Task A_server_that_is_not_listening_fails_transiently_naming_the_server_without_the_password()
    {
        const string Password = "pa55-w0rd-not-for-logs";
        var port = ClosedPort();
        foreach (var connection in new[] { $"redis://:{Password}@127.0.0.1:{port}/3", $"127.0.0.1:{port},password={Password},connectTimeout=2000" })
        {
            await using var store = new RedisStateStore(connection);

            var error = await Assert.ThrowsAsync<SyncException>(() => store.InitializeAsync(Ct));

            Assert.Equal(ErrorClass.Transient, error.ErrorClass);
            Assert.StartsWith($"cannot connect to the Redis state store at 127.0.0.1:{port} (tried ", error.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(Password, error.ToString(), StringComparison.Ordinal);
            Assert.DoesNotContain(Password, store.Description, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_wrong_password_is_a_fatal_error_that_does_not_show_it()
    {
        const string Password = "not-the-test-password";
        await using var store = new RedisStateStore($"redis://:{Password}@{RedisKeyspace.HostAndPort}?prefix={Keyspace.Prefix}");

        var error = await Assert.ThrowsAsync<SyncException>(() => store.InitializeAsync(Ct));

        Assert.Equal(ErrorClass.Fatal, error.ErrorClass);
        Assert.Contains(RedisKeyspace.HostAndPort, error.Message, StringComparison.Ordinal);
        Assert.Contains("refused the credentials", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Password, error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dead_letters_failing_at_the_same_instant_keep_the_order_they_were_queued_in()
    {
        await using var store = await OpenStoreAsync();
        var letters = Enumerable.Range(0, 12).Select(i => Letter(Stream, (12 - i).ToString(CultureInfo.InvariantCulture), "{}", T0)).ToList();
        await store.AddDeadLettersAsync(letters[..5], Ct);
        await store.AddDeadLettersAsync(letters[5..], Ct);

        Assert.Equal(letters, await store.ReadDeadLettersAsync(Stream, 100, Ct));
        Assert.Equal(letters[..3], await store.ReadDeadLettersAsync(null, 3, Ct));
        Assert.Empty(await store.ReadDeadLettersAsync(null, 0, Ct));
    }

    [Fact]
    public async Task A_dead_letter_failing_again_later_moves_behind_newer_ones_and_keeps_its_first_record()
    {
        await using var store = await OpenStoreAsync();
        var first = Letter(Stream, "1", """{"id":1}""", T0);
        var second = Letter(Stream, "2", """{"id":2}""", T0 + NodaTime.Duration.FromSeconds(1));
        await store.AddDeadLettersAsync([first, second], Ct);

        await store.AddDeadLettersAsync([first with { Table = "renamed", FailedAt = T0 + NodaTime.Duration.FromSeconds(2), Reason = "again" }], Ct);

        var stored = await store.ReadDeadLettersAsync(Stream, 10, Ct);
        Assert.Equal([second, first with { FailedAt = T0 + NodaTime.Duration.FromSeconds(2), Reason = "again", Attempts = 2 }], stored);
        Assert.Equal(1, await store.RemoveDeadLettersAsync([first, first], Ct));
        Assert.Equal([second], await store.ReadDeadLettersAsync(null, 10, Ct));
    }

    [Fact]
    public async Task Versions_beyond_what_a_sorted_set_score_holds_exactly_are_refused()
    {
        await using var store = await OpenStoreAsync();

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => store.AppendAsync(Stored(Stream, (1L << 53) + 1, T0), Ct));
        await store.AppendAsync(Stored(Stream, 1L << 53, T0), Ct);

        Assert.Equal(1L << 53, Assert.Single(await store.ReadHistoryAsync(Stream, 10, Ct)).Version);
    }

    [Fact]
    public async Task A_lease_expires_after_its_time_to_live_on_the_servers_clock()
    {
        await using var store = await OpenStoreAsync();
        await store.AcquireLeaseAsync(Stream, "worker-a", TimeSpan.FromMilliseconds(1), Ct);
        var expiresAt = (long)await Keyspace.Database.HashGetAsync(Keyspace.Prefix + "lease:" + Stream, "expires_at_ms");

        // Wait on the server's clock (what the script compares with), not on this process's: a millisecond or two.
        while (await ServerMillisecondsAsync() <= expiresAt)
        {
            await Task.Yield();
        }

        Assert.Equal(2, await store.AcquireLeaseAsync(Stream, "worker-b", Ttl, Ct));
    }

    [Fact]
    public async Task Owners_racing_for_a_lease_have_exactly_one_winner()
    {
        await using var store = await OpenStoreAsync();
        await using var other = await OpenStoreAsync();
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
                            var epoch = await (worker % 2 == 0 ? store : other).AcquireLeaseAsync(stream, $"worker-{worker}", Ttl, Ct);
                            return (Owner: $"worker-{worker}", Epoch: (long?)epoch);
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
            Assert.Equal(winner.Owner, (string?)await Keyspace.Database.HashGetAsync(Keyspace.Prefix + "lease:" + stream, "owner"));
        }
    }

    private async Task<RedisStateStore> OpenStoreAsync()
    {
        var store = new RedisStateStore(Keyspace.Uri);
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

    private async Task<long> ServerMillisecondsAsync()
    {
        var time = (RedisResult[])(await Keyspace.Database.ExecuteAsync("TIME"))!;
        return ((long)time[0] * 1000) + ((long)time[1] / 1000);
    }

    /// <summary>Moves a lease's expiry into the past, as waiting out its time to live would, without waiting.</summary>
    private Task ExpireLeaseAsync(string stream) =>
        Keyspace.Database.HashSetAsync(Keyspace.Prefix + "lease:" + stream, "expires_at_ms", 0);

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
