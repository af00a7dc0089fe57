using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using DeltaSync.Cli.Tests;
using Microsoft.Data.Sqlite;

namespace DeltaSync.Redis.Tests.Cli;

/// <summary>A SQLite-to-SQLite sync keeping its state in Redis (<c>state.storage.type: redis</c>), run as a user runs it.</summary>
public sealed class RedisStateCliTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("deltasync-redis-cli-").FullName;
    private RedisKeyspace? _keyspace;

    private RedisKeyspace Keyspace => _keyspace ?? throw new InvalidOperationException("the key prefix is created in InitializeAsync");

    public async Task InitializeAsync() => _keyspace = await RedisKeyspace.CreateAsync("cli");

    public async Task DisposeAsync()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_dir, recursive: true);
        if (_keyspace is not null)
        {
            await _keyspace.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_sync_with_redis_state_runs_and_every_state_command_works_on_it()
    {
        var config = CreateShop(Keyspace.Uri);
        var first = await RunAsync("run", "--config", config);
        // Half a minute ago: inside the cursor's lookback, and behind its safety margin.
        var changedAt = DateTime.UtcNow.AddSeconds(-30).ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);
        await ExecuteAsync("source.db", $"INSERT INTO customers VALUES (4, 'Di', '{changedAt}'); UPDATE customers SET name = 'Ada L', updated_at = '{changedAt}' WHERE id = 1");
        var second = await RunAsync("run", "--config", config);

        Assert.Equal(0, first.ExitCode);
        Assert.Equal(0, second.ExitCode);
        Assert.Equal(["1\tAda L", "2\tBo", "3\tCy", "4\tDi"], await RowsAsync("dest.db", "SELECT id, name FROM customers ORDER BY id"));
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(_dir, "reports"), "*.json"));
        Assert.Contains("checkpoints:shop/customers", await Keyspace.KeysAsync());

        var status = await RunAsync("status", "--config", config, "--json");
        using (var json = JsonDocument.Parse(status.StandardOutput))
        {
            Assert.Equal($"redis://{RedisKeyspace.HostAndPort}/0 (prefix {Keyspace.Prefix})", json.RootElement.GetProperty("state").GetString());
            var table = Assert.Single(json.RootElement.GetProperty("tables").EnumerateArray());
            Assert.Equal("completed", table.GetProperty("last_run_status").GetString());
        }

        var history = await RunAsync("state", "history", "--config", config, "--table", "customers", "--json");
        long newest;
        using (var versions = JsonDocument.Parse(history.StandardOutput))
        {
            newest = versions.RootElement[0].GetProperty("version").GetInt64();
            Assert.True(newest >= 2, history.ToString());
        }

        await RunAsync("state", "rollback", "--config", config, "--table", "customers", "--to", "1");
        var show = await RunAsync("state", "show", "--config", config, "--json");
        using (var json = JsonDocument.Parse(show.StandardOutput))
        {
            var checkpoint = json.RootElement.GetProperty("tables")[0].GetProperty("checkpoint");
            Assert.Equal(newest + 1, checkpoint.GetProperty("version").GetInt64());
            Assert.Contains("rollback to version 1", checkpoint.GetProperty("note").GetString(), StringComparison.Ordinal);
        }

        await RunAsync("state", "validate", "--config", config);
        var export = Path.Combine(_dir, "backup.json");
        await RunAsync("state", "export", "--config", config, "--file", export);
        await RunAsync("state", "reset", "--config", config);
        var afterReset = await RunAsync("state", "show", "--config", config, "--json");
        using (var json = JsonDocument.Parse(afterReset.StandardOutput))
        {
            Assert.Equal(JsonValueKind.Null, json.RootElement.GetProperty("tables")[0].GetProperty("checkpoint").ValueKind);
        }

        var import = await RunAsync("state", "import", "--config", config, "--file", export);
        Assert.Contains($"(prefix {Keyspace.Prefix})", import.StandardOutput, StringComparison.Ordinal);
        await RunAsync("state", "validate", "--config", config);
        var restored = await RunAsync("state", "history", "--config", config, "--table", "customers", "--json");
        using (var versions = JsonDocument.Parse(restored.StandardOutput))
        {
            Assert.Equal(newest + 1, versions.RootElement[0].GetProperty("version").GetInt64());
        }

        var third = await RunAsync("run", "--config", config);
        Assert.Equal(0, third.ExitCode);
        Assert.Equal(4, (await RowsAsync("dest.db", "SELECT id FROM customers")).Count);
    }

    [Fact]
    public async Task The_dead_letter_queue_commands_work_on_redis_state()
    {
        var config = CreateShop(Keyspace.Uri);
        await ExecuteAsync("source.db", "INSERT INTO customers VALUES (5, 'Ed', 'not a time'), (6, 'Flo', '2026-13-45')");
        var run = await CliProcess.RunAsync("run", "--config", config);
        Assert.True(run.ExitCode == 3, run.ToString());

        var list = await RunAsync("dlq", "list", "--config", config, "--json");
        string fixedId;
        using (var json = JsonDocument.Parse(list.StandardOutput))
        {
            var entries = json.RootElement.EnumerateArray().ToList();
            Assert.Equal(["5", "6"], entries.Select(e => e.GetProperty("record_id").GetString()).Order(StringComparer.Ordinal));
            fixedId = entries.Single(e => e.GetProperty("record_id").GetString() == "5").GetProperty("id").GetString()!;
        }

        var show = await RunAsync("dlq", "show", fixedId, "--config", config, "--json");
        Assert.Contains("not a time", show.StandardOutput, StringComparison.Ordinal);

        // Fixed at the source with a time older than the cursor: a run would not read it again, a replay does.
        await ExecuteAsync("source.db", "UPDATE customers SET updated_at = '2025-06-01T00:00:00Z' WHERE id = 5");
        await RunAsync("dlq", "replay", "--config", config, "--id", fixedId);
        Assert.Contains("5\tEd", string.Join("\n", await RowsAsync("dest.db", "SELECT id, name FROM customers ORDER BY id")), StringComparison.Ordinal);

        var purge = await RunAsync("dlq", "purge", "--config", config, "--all");
        Assert.Contains("1", purge.StandardOutput, StringComparison.Ordinal);
        using (var json = JsonDocument.Parse((await RunAsync("dlq", "list", "--config", config, "--json")).StandardOutput))
        {
            Assert.Empty(json.RootElement.EnumerateArray());
        }
    }

    [Fact]
    public async Task The_plain_host_and_port_form_reaches_the_redis_server()
    {
        // The test server wants a password, so the bare form is refused by the server itself, which proves it got there.
        var config = CreateShop(RedisKeyspace.HostAndPort);

        var run = await CliProcess.RunAsync("status", "--config", config);

        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains($"error (fatal): cannot connect to the Redis state store at {RedisKeyspace.HostAndPort}", run.StandardError, StringComparison.Ordinal);
        Assert.Contains("refused the credentials", run.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_redis_server_fails_the_run_with_a_message_naming_it_and_no_password_or_stack_trace()
    {
        const string Password = "never-print-this-one";
        var port = ClosedPort();
        var config = CreateShop($"127.0.0.1:{port},password={Password},connectTimeout=1000");

        var run = await CliProcess.RunAsync("run", "--config", config);

        Assert.NotEqual(0, run.ExitCode);
        Assert.Contains($"error (transient): cannot connect to the Redis state store at 127.0.0.1:{port}", run.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain(Password, run.StandardError + run.StandardOutput, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.StandardError, StringComparison.Ordinal);
    }

    /// <summary>Runs the CLI and fails the test with its output unless it exits 0.</summary>
    private static async Task<CliResult> RunAsync(params string[] arguments)
    {
        var result = await CliProcess.RunAsync(arguments);
        Assert.True(result.ExitCode == 0, $"deltasync {string.Join(' ', arguments)}: {result}");
        Assert.DoesNotContain(RedisKeyspace.Password, result.StandardOutput + result.StandardError, StringComparison.Ordinal);
        return result;
    }

    private string CreateShop(string stateConnection)
    {
        using (var connection = new SqliteConnection($"Data Source={Path.Combine(_dir, "source.db")};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = """
                CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, updated_at TEXT);
                INSERT INTO customers VALUES (1, 'Ada', '2026-01-01T10:00:00Z'), (2, 'Bo', '2026-01-02 11:00:00'), (3, 'Cy', 1767350000);
                """;
            command.ExecuteNonQuery();
        }

        var config = Path.Combine(_dir, "shop.yaml");
        File.WriteAllText(config, $$"""
            sync:
              source: {connection: "sqlite:source.db", tables: [customers]}
              destination: {connection: "sqlite:dest.db"}
            state:
              storage: {type: redis, connection: "{{stateConnection}}"}
            """);
        return config;
    }

    private async Task ExecuteAsync(string database, string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={Path.Combine(_dir, database)};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    private async Task<List<string>> RowsAsync(string database, string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={Path.Combine(_dir, database)};Pooling=False");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync())
        {
            rows.Add(string.Join('\t', Enumerable.Range(0, reader.FieldCount).Select(i => reader.GetValue(i).ToString())));
        }

        return rows;
    }

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
