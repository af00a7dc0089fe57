using Npgsql;

namespace DeltaSync.Postgres.Tests;

/// <summary>
/// The PostgreSQL server scripts/test.sh started on 127.0.0.1 (wal_level=logical), named by <c>DELTASYNC_TEST_PG</c>.
/// Each test gets a database of its own, dropped when it is disposed.
/// </summary>
public sealed class PgDatabase : IAsyncDisposable
{
    private PgDatabase(string name, string uri, string connectionString)
    {
        Name = name;
        Uri = uri;
        ConnectionString = connectionString;
    }

    /// <summary>The database's name.</summary>
    public string Name { get; }

    /// <summary>A <c>postgresql://</c> URI for configs (with the test password).</summary>
    public string Uri { get; }

    /// <summary>The Npgsql connection string.</summary>
    public string ConnectionString { get; }

    /// <summary>The server URI from the environment; a missing variable fails the test with what to run.</summary>
    public static string ServerUri =>
        Environment.GetEnvironmentVariable("DELTASYNC_TEST_PG") is { Length: > 0 } uri
            ? uri
            : throw new InvalidOperationException(
                "DELTASYNC_TEST_PG is not set: the PostgreSQL tests need the server that ./scripts/test.sh starts " +
                "(or: source scripts/services.sh, then dotnet test)");

    public static async Task<PgDatabase> CreateAsync(string prefix = "t")
    {
        var name = $"{prefix}_{Guid.NewGuid():N}"[..Math.Min(40, prefix.Length + 33)].ToLowerInvariant();
        var server = PostgresConnectionFactory.Parse(ServerUri);
        await using (var admin = new NpgsqlConnection(server.ConnectionString))
        {
            await admin.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE {PostgresSql.Quote(name)}", admin);
            await create.ExecuteNonQueryAsync();
        }

        var uriBuilder = new UriBuilder(ServerUri) { Path = "/" + name };
        server.Database = name;
        return new PgDatabase(name, uriBuilder.Uri.ToString(), server.ConnectionString);
    }

    public async Task<NpgsqlConnection> OpenAsync()
    {
        var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    public async Task ExecuteAsync(string sql, params object?[] parameters)
    {
        await using var connection = await OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var p in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = p ?? DBNull.Value });
        }

        await command.ExecuteNonQueryAsync();
    }

    public async Task<T> ScalarAsync<T>(string sql, params object?[] parameters)
    {
        await using var connection = await OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var p in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { Value = p ?? DBNull.Value });
        }

        var value = await command.ExecuteScalarAsync();
        return value is null or DBNull ? default! : (T)value;
    }

    /// <summary>Every row of a query as tab-joined text, in the query's order (for comparing two tables).</summary>
    public async Task<List<string>> RowsAsync(string sql)
    {
        await using var connection = await OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync())
        {
            var fields = new string[reader.FieldCount];
            for (var i = 0; i < fields.Length; i++)
            {
                fields[i] = reader.IsDBNull(i) ? "NULL" : Core.Model.PortableValue.ToText(reader.GetValue(i)) ?? "NULL";
            }

            rows.Add(string.Join('\t', fields));
        }

        return rows;
    }

    public async ValueTask DisposeAsync()
    {
        var server = PostgresConnectionFactory.Parse(ServerUri);
        await using var admin = new NpgsqlConnection(server.ConnectionString);
        await admin.OpenAsync();
        // Slots hold the database open: drop them first (a test that failed mid-stream may leave one).
        await using (var slots = new NpgsqlCommand("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active", admin))
        {
            slots.Parameters.Add(new NpgsqlParameter { Value = Name });
            await slots.ExecuteNonQueryAsync();
        }

        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {PostgresSql.Quote(Name)} WITH (FORCE)", admin);
        await drop.ExecuteNonQueryAsync();
    }
}
