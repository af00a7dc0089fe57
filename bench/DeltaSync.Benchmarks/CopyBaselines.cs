using System.Diagnostics;
using Microsoft.Data.Sqlite;

namespace DeltaSync.Benchmarks;

/// <summary>
/// Two ways to copy the table without DeltaSync, timed in-process (no runtime start-up): the floor SQLite itself
/// sets, and the loop an application would write by hand. Both write a fresh file with the durability settings of
/// DeltaSync's destination (WAL, synchronous=NORMAL) and no secondary index, as DeltaSync creates none.
/// </summary>
public static class CopyBaselines
{
    private const string DestinationPragmas = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL";

    /// <summary><c>ATTACH</c> + <c>INSERT INTO dst.items SELECT * FROM src.items</c>: SQLite copies page to page.</summary>
    public static TimeSpan AttachInsertSelect(string sourcePath, string destinationPath)
    {
        ItemsDatabase.DeleteDatabase(destinationPath);
        var watch = Stopwatch.StartNew();
        using var connection = ItemsDatabase.Open(destinationPath);
        ItemsDatabase.Execute(connection, DestinationPragmas);
        ItemsDatabase.Execute(connection, ItemsDatabase.CreateTableSql);
        using (var attach = connection.CreateCommand())
        {
            attach.CommandText = "ATTACH DATABASE $path AS src";
            attach.Parameters.AddWithValue("$path", sourcePath);
            attach.ExecuteNonQuery();
        }

        ItemsDatabase.Execute(connection, $"INSERT INTO main.items ({ItemsDatabase.Columns}) SELECT {ItemsDatabase.Columns} FROM src.items");
        watch.Stop();
        return watch.Elapsed;
    }

    /// <summary>A Microsoft.Data.Sqlite reader feeding one prepared INSERT, all in one transaction.</summary>
    public static TimeSpan AdoNetLoop(string sourcePath, string destinationPath)
    {
        ItemsDatabase.DeleteDatabase(destinationPath);
        var watch = Stopwatch.StartNew();
        using var source = ItemsDatabase.Open(sourcePath);
        using var destination = ItemsDatabase.Open(destinationPath);
        ItemsDatabase.Execute(destination, DestinationPragmas);
        ItemsDatabase.Execute(destination, ItemsDatabase.CreateTableSql);
        using var transaction = destination.BeginTransaction();
        using var insert = destination.CreateCommand();
        var names = ItemsDatabase.Columns.Split(", ");
        insert.CommandText = $"INSERT INTO items ({ItemsDatabase.Columns}) VALUES ({string.Join(", ", names.Select(n => "$" + n))})";
        var parameters = names.Select(n => insert.Parameters.Add(new SqliteParameter { ParameterName = "$" + n })).ToArray();
        insert.Prepare();

        using var select = source.CreateCommand();
        select.CommandText = $"SELECT {ItemsDatabase.Columns} FROM items";
        using var reader = select.ExecuteReader();
        while (reader.Read())
        {
            for (var i = 0; i < parameters.Length; i++)
            {
                parameters[i].Value = reader.GetValue(i);
            }

            insert.ExecuteNonQuery();
        }

        transaction.Commit();
        watch.Stop();
        return watch.Elapsed;
    }
}
