using System.Globalization;
using DeltaSync.Postgres;
using Npgsql;

namespace DeltaSync.Benchmarks.Postgres;

/// <summary>A database the benchmark created: its name, a <c>postgresql://</c> URI for configs and a connection string.</summary>
public sealed record BenchmarkDatabase(string Name, string Uri, string ConnectionString)
{
    /// <summary>An unpooled connection: closing it ends the session, so no idle session lingers in a database to be dropped.</summary>
    public async Task<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        return connection;
    }

    public async Task ExecuteAsync(string sql, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>
/// The server named by <c>--postgres</c>. Every database it creates has the run's unique prefix
/// (<c>dsbench_YYYYMMDD_HHMMSS_xxxx_…</c>) and is dropped again, at the latest when the server is disposed.
/// </summary>
public sealed class BenchmarkServer : IAsyncDisposable
{
    private readonly string _uri;
    private readonly NpgsqlConnectionStringBuilder _admin;
    private readonly string _prefix;
    private readonly List<string> _created = [];

    private BenchmarkServer(string uri, NpgsqlConnectionStringBuilder admin, string description, bool logicalReplication)
    {
        _uri = uri;
        _admin = admin;
        Description = description;
        LogicalReplication = logicalReplication;
        _prefix = string.Create(CultureInfo.InvariantCulture, $"dsbench_{DateTime.UtcNow:yyyyMMdd_HHmmss}_{Random.Shared.Next(0x10000):x4}");
    }

    /// <summary>Version and the settings that decide how fast writes are (durability, WAL, buffers).</summary>
    public string Description { get; }

    /// <summary>Whether <c>wal_level</c> is <c>logical</c>, which native logical replication needs.</summary>
    public bool LogicalReplication { get; }

    /// <summary>Connects to the server's own database (the one in the URI) and reads what it is.</summary>
    public static async Task<BenchmarkServer> ConnectAsync(string uri, CancellationToken cancellationToken)
    {
        var admin = Unpooled(PostgresConnectionFactory.Parse(uri));
        await using var connection = new NpgsqlConnection(admin.ConnectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(
            "SELECT current_setting('server_version'), current_setting('wal_level'), current_setting('fsync'), current_setting('synchronous_commit'), " +
            "current_setting('shared_buffers'), current_setting('max_wal_size'), current_setting('max_sync_workers_per_subscription')",
            connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var walLevel = reader.GetString(1);
        var description =
            $"PostgreSQL {reader.GetString(0)} at {admin.Host}:{admin.Port}: wal_level {walLevel}, fsync {reader.GetString(2)}, synchronous_commit {reader.GetString(3)}, " +
            $"shared_buffers {reader.GetString(4)}, max_wal_size {reader.GetString(5)}, max_sync_workers_per_subscription {reader.GetString(6)}";
        return new BenchmarkServer(uri, admin, description, walLevel == "logical");
    }

    /// <summary>Creates <c>PREFIX_suffix</c>.</summary>
    public async Task<BenchmarkDatabase> CreateDatabaseAsync(string suffix, CancellationToken cancellationToken)
    {
        var name = $"{_prefix}_{suffix}";
        await AdminAsync($"CREATE DATABASE {PostgresSql.Quote(name)}", null, cancellationToken).ConfigureAwait(false);
        _created.Add(name);
        var builder = new NpgsqlConnectionStringBuilder(_admin.ConnectionString) { Database = name };
        return new BenchmarkDatabase(name, new UriBuilder(_uri) { Path = "/" + name }.Uri.ToString(), builder.ConnectionString);
    }

    /// <summary>Drops the database, first any replication slot left on it (a slot keeps a database from being dropped).</summary>
    public async Task DropDatabaseAsync(BenchmarkDatabase database, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(database);
        await DropAsync(database.Name, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var name in _created.ToList())
        {
            try
            {
                await DropAsync(name, CancellationToken.None).ConfigureAwait(false);
            }
            catch (NpgsqlException e)
            {
                Console.Error.WriteLine($"# could not drop database {name}: {e.Message}; drop it by hand");
            }
        }
    }

    private async Task DropAsync(string name, CancellationToken cancellationToken)
    {
        await AdminAsync("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active", name, cancellationToken).ConfigureAwait(false);
        await AdminAsync($"DROP DATABASE IF EXISTS {PostgresSql.Quote(name)} WITH (FORCE)", null, cancellationToken).ConfigureAwait(false);
        _created.Remove(name);
    }

    private async Task AdminAsync(string sql, string? parameter, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(_admin.ConnectionString);
        await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(sql, connection);
        if (parameter is not null)
        {
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = parameter });
        }

        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>No pooling (see <see cref="BenchmarkDatabase.OpenAsync"/>) and no command timeout: loads take minutes at 10M rows.</summary>
    private static NpgsqlConnectionStringBuilder Unpooled(NpgsqlConnectionStringBuilder builder)
    {
        builder.Pooling = false;
        builder.CommandTimeout = 0;
        builder.ApplicationName = "deltasync benchmark";
        return builder;
    }
}
