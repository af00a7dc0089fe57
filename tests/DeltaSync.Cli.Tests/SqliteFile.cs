using Microsoft.Data.Sqlite;

namespace DeltaSync.Cli.Tests;

/// <summary>SQL against a SQLite file of a test's folder, without pooling (the CLI opens the same files).</summary>
public static class SqliteFile
{
    /// <summary>Runs <paramref name="sql"/> on <paramref name="folder"/>/<paramref name="database"/>; the first column of the first row, if any.</summary>
    public static object? Execute(string folder, string database, string sql)
    {
        using var connection = new SqliteConnection($"Data Source={Path.Combine(folder, database)};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }
}
