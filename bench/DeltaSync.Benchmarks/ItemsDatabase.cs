using System.Globalization;
using Microsoft.Data.Sqlite;

namespace DeltaSync.Benchmarks;

/// <summary>The generated source: one <c>items</c> table of 8 columns, reproducible from its seed.</summary>
public static class ItemsDatabase
{
    public const string Table = "items";
    public const string Columns = "id, sku, name, price, quantity, category, payload, updated_at";

    /// <summary>Declared like a typical catalogue table; copies use the same text so affinities match.</summary>
    public const string CreateTableSql =
        "CREATE TABLE items (id INTEGER PRIMARY KEY, sku TEXT, name TEXT, price REAL, quantity INTEGER, category TEXT, payload TEXT, updated_at TEXT)";

    private const string TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";
    private const string PayloadAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    private const long YearMilliseconds = 365L * 24 * 3600 * 1000;

    private static readonly string[] Adjectives = ["Compact", "Deluxe", "Classic", "Rugged", "Smart", "Eco", "Pro", "Mini", "Ultra", "Basic"];
    private static readonly string[] Nouns = ["Widget", "Gadget", "Bracket", "Lamp", "Kettle", "Backpack", "Charger", "Bottle", "Notebook", "Speaker"];
    private static readonly string[] Categories = ["tools", "kitchen", "garden", "office", "outdoor", "electronics", "toys", "sports", "books", "home", "auto", "health"];

    /// <summary>
    /// Writes <paramref name="rows"/> rows with ids 1…rows and <c>updated_at</c> spread uniformly over the year before
    /// <paramref name="now"/>. Generation is not what is measured, so durability is switched off to make it quick.
    /// </summary>
    public static void Generate(string path, int rows, DateTime now, int seed)
    {
        DeleteDatabase(path);
        using var connection = Open(path);
        Execute(connection, "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -65536");
        Execute(connection, CreateTableSql);
        var random = new Random(seed);
        using (var transaction = connection.BeginTransaction())
        {
            using var insert = connection.CreateCommand();
            insert.CommandText = $"INSERT INTO items ({Columns}) VALUES ($id, $sku, $name, $price, $quantity, $category, $payload, $updated_at)";
            // Untyped parameters: each value binds as its own storage class (integer, real, text).
            var p = Columns.Split(", ").Select(c => insert.Parameters.Add(new SqliteParameter { ParameterName = "$" + c })).ToArray();
            insert.Prepare();
            for (var id = 1; id <= rows; id++)
            {
                p[0].Value = (long)id;
                p[1].Value = "SKU-" + id.ToString("D8", CultureInfo.InvariantCulture);
                p[2].Value = $"{Adjectives[random.Next(Adjectives.Length)]} {Nouns[random.Next(Nouns.Length)]} {random.Next(1000)}";
                p[3].Value = random.Next(100, 100_000) / 100.0;
                p[4].Value = (long)random.Next(0, 10_000);
                p[5].Value = Categories[random.Next(Categories.Length)];
                p[6].Value = Payload(random, 40);
                p[7].Value = Timestamp(now.AddMilliseconds(-random.NextInt64(YearMilliseconds)));
                insert.ExecuteNonQuery();
            }

            transaction.Commit();
        }

        Execute(connection, "CREATE INDEX items_updated_at ON items (updated_at)");
    }

    /// <summary>
    /// Changes <paramref name="count"/> distinct random rows the way an application would: new price and name,
    /// <c>updated_at</c> set to now. Returns the ids changed.
    /// </summary>
    public static IReadOnlySet<long> ChangeRows(string path, int rows, int count, int seed)
    {
        var random = new Random(seed);
        var ids = new HashSet<long>(count);
        while (ids.Count < Math.Min(count, rows))
        {
            ids.Add(random.NextInt64(1, rows + 1L));
        }

        using var connection = Open(path);
        using var transaction = connection.BeginTransaction();
        using var update = connection.CreateCommand();
        update.CommandText = "UPDATE items SET price = round(price * 1.1 + 0.01, 2), name = name || ' (v2)', updated_at = $now WHERE id = $id";
        var nowParameter = update.Parameters.Add("$now", SqliteType.Text);
        var idParameter = update.Parameters.Add("$id", SqliteType.Integer);
        nowParameter.Value = Timestamp(DateTime.UtcNow);
        update.Prepare();
        foreach (var id in ids)
        {
            idParameter.Value = id;
            update.ExecuteNonQuery();
        }

        transaction.Commit();
        return ids;
    }

    /// <summary>
    /// Moves every <c>updated_at</c> of the last hour a day back, so the next round's incremental run does not also
    /// re-read the previous round's changes (they would still be inside the tolerance window).
    /// </summary>
    public static void AgeRecentChanges(string path)
    {
        using var connection = Open(path);
        Execute(
            connection,
            "UPDATE items SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', updated_at, '-1 day') " +
            "WHERE updated_at >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-1 hour')");
    }

    public static SqliteConnection Open(string path)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        connection.Open();
        return connection;
    }

    public static void Execute(SqliteConnection connection, string sql)
    {
        ArgumentNullException.ThrowIfNull(connection);
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    /// <summary>Removes a database with its journal and WAL files.</summary>
    public static void DeleteDatabase(string path)
    {
        foreach (var suffix in new[] { "", "-journal", "-wal", "-shm" })
        {
            File.Delete(path + suffix);
        }
    }

    private static string Timestamp(DateTime utc) => utc.ToString(TimestampFormat, CultureInfo.InvariantCulture);

    private static string Payload(Random random, int length) =>
        string.Create(length, random, (chars, r) =>
        {
            for (var i = 0; i < chars.Length; i++)
            {
                chars[i] = PayloadAlphabet[r.Next(PayloadAlphabet.Length)];
            }
        });
}
