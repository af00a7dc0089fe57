using StackExchange.Redis;

namespace DeltaSync.Redis.Tests;

/// <summary>
/// The Redis server scripts/test.sh started on 127.0.0.1 (with a password), named by <c>DELTASYNC_TEST_REDIS</c>.
/// Each test gets a key prefix of its own, whose keys are deleted when it is disposed.
/// </summary>
public sealed class RedisKeyspace : IAsyncDisposable
{
    private readonly ConnectionMultiplexer _connection;

    private RedisKeyspace(ConnectionMultiplexer connection, string prefix)
    {
        _connection = connection;
        Prefix = prefix;
    }

    /// <summary>The key prefix of this test (ends with a colon).</summary>
    public string Prefix { get; }

    /// <summary>A <c>redis://</c> URI for configs and stores: the test password and this test's <c>?prefix=</c>.</summary>
    public string Uri => ServerUri + "?prefix=" + System.Uri.EscapeDataString(Prefix);

    /// <summary>The raw database (keys not prefixed), to look behind a store's back.</summary>
    public IDatabase Database => _connection.GetDatabase();

    /// <summary>The server URI from the environment; a missing variable fails the test with what to run.</summary>
    public static string ServerUri =>
        Environment.GetEnvironmentVariable("DELTASYNC_TEST_REDIS") is { Length: > 0 } uri
            ? uri
            : throw new InvalidOperationException(
                "DELTASYNC_TEST_REDIS is not set: the Redis tests need the server that ./scripts/test.sh starts " +
                "(or: source scripts/services.sh, then dotnet test)");

    /// <summary>The test server's password (from <see cref="ServerUri"/>).</summary>
    public static string Password => RedisConnectionFactory.Parse(ServerUri).Options.Password ?? "";

    /// <summary>Host and port of the test server.</summary>
    public static string HostAndPort => RedisConnectionFactory.Parse(ServerUri).Server;

    public static async Task<RedisKeyspace> CreateAsync(string name = "t")
    {
        var options = RedisConnectionFactory.Parse(ServerUri).Options;
        var connection = await ConnectionMultiplexer.ConnectAsync(options);
        return new RedisKeyspace(connection, $"test:{name}:{Guid.NewGuid():N}:");
    }

    /// <summary>Every key under this test's prefix, without the prefix.</summary>
    public async Task<List<string>> KeysAsync()
    {
        var server = _connection.GetServers()[0];
        var keys = new List<string>();
        await foreach (var key in server.KeysAsync(pattern: Prefix + "*", pageSize: 1000))
        {
            keys.Add(((string)key!)[Prefix.Length..]);
        }

        return keys;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var key in await KeysAsync())
        {
            await Database.KeyDeleteAsync(Prefix + key);
        }

        await _connection.DisposeAsync();
    }
}
