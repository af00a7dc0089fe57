using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using Microsoft.Data.Sqlite;

namespace DeltaSync.Sqlite;

/// <summary>Turns a connection text (<c>sqlite:path.db</c>, <c>sqlite:///abs/path.db</c>, <c>Data Source=…</c>) into open connections.</summary>
public static class SqliteConnectionFactory
{
    /// <summary>True when the text names a SQLite database.</summary>
    public static bool Accepts(string connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        return connection.StartsWith("sqlite:", StringComparison.OrdinalIgnoreCase)
            || connection.StartsWith("Data Source=", StringComparison.OrdinalIgnoreCase)
            || connection.EndsWith(".db", StringComparison.OrdinalIgnoreCase)
            || connection.EndsWith(".sqlite", StringComparison.OrdinalIgnoreCase)
            || connection.EndsWith(".sqlite3", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The database file path, resolved against <paramref name="baseDirectory"/> when relative.</summary>
    public static string ResolvePath(string connection, string baseDirectory)
    {
        ArgumentNullException.ThrowIfNull(connection);
        string path;
        if (connection.StartsWith("sqlite:", StringComparison.OrdinalIgnoreCase))
        {
            path = connection["sqlite:".Length..];
            if (path.StartsWith("//", StringComparison.Ordinal))
            {
                path = path[2..];
            }

            var query = path.IndexOf('?', StringComparison.Ordinal);
            if (query >= 0)
            {
                path = path[..query];
            }

            path = Uri.UnescapeDataString(path);
        }
        else if (connection.StartsWith("Data Source=", StringComparison.OrdinalIgnoreCase))
        {
            path = new SqliteConnectionStringBuilder(connection).DataSource;
        }
        else
        {
            path = connection;
        }

        return Path.GetFullPath(path, baseDirectory);
    }

    /// <summary>Opens a connection; <paramref name="mustExist"/> turns a missing file into a clear fatal error.</summary>
    public static SqliteConnection Open(string path, bool mustExist, string role)
    {
        if (mustExist && !File.Exists(path))
        {
            throw new SyncException(ErrorClass.Fatal, $"{role} database '{path}' does not exist");
        }

        if (!mustExist)
        {
            var folder = Path.GetDirectoryName(path);
            if (!string.IsNullOrEmpty(folder))
            {
                Directory.CreateDirectory(folder);
            }
        }

        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = mustExist ? SqliteOpenMode.ReadWrite : SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
            DefaultTimeout = 30,
        };
        var connection = new SqliteConnection(builder.ToString());
        try
        {
            connection.Open();
            Execute(connection, "PRAGMA busy_timeout = 10000");
        }
        catch (SqliteException e)
        {
            connection.Dispose();
            throw new SyncException(ErrorClass.Fatal, $"cannot open {role} database '{path}': {e.Message}", e);
        }

        return connection;
    }

    internal static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }
}
