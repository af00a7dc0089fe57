using Microsoft.Data.Sqlite;
using NodaTime;
using NodaTime.Text;

namespace DeltaSync.Cli.Demo;

/// <summary>A table of the demo shop and its key column (every demo table has a one-column key).</summary>
internal sealed record ShopTable(string Name, string Key);

/// <summary>What <see cref="DemoShop.Create"/> generated: sizes and the rows planted to exercise the engine's edge cases.</summary>
/// <param name="UnreadableKeys">Per table, the keys whose <c>updated_at</c> is garbage: they must end up in the dead-letter queue.</param>
internal sealed record ShopFacts(
    int Customers,
    int Orders,
    int Products,
    int SoftDeletedCustomers,
    int CustomersWithoutUpdatedAt,
    int OrdersWithoutUpdatedAt,
    int CustomersSharingImportTimestamp,
    int OrdersSharingNightlyTimestamps,
    IReadOnlyDictionary<string, IReadOnlyList<string>> UnreadableKeys)
{
    public int RowsOf(string table) => table switch
    {
        DemoShop.Customers => Customers,
        DemoShop.Orders => Orders,
        _ => Products,
    };

    public IReadOnlyList<string> UnreadableIn(string table) => UnreadableKeys.TryGetValue(table, out var keys) ? keys : [];
}

/// <summary>
/// Generates the demo's source database: a small shop whose three tables store <c>updated_at</c> in three formats
/// (ISO-8601 with milliseconds and Z, zone-less <c>YYYY-MM-DD HH:MM:SS</c>, epoch milliseconds) and contain what
/// real shops contain: soft-deleted rows, rows that never got an <c>updated_at</c>, rows written by bulk jobs that
/// share one timestamp, and a row whose <c>updated_at</c> is garbage. The same seed always gives the same rows;
/// dates are relative to the day the demo runs, so the shop looks current.
/// </summary>
internal static class DemoShop
{
    public const string Customers = "customers";
    public const string Orders = "orders";
    public const string Products = "products";
    public const string UnreadableTimestamp = "not-a-date";
    public const int Seed = 20_240_917;

    public static readonly IReadOnlyList<ShopTable> Tables = [new(Customers, "id"), new(Orders, "id"), new(Products, "sku")];

    private static readonly InstantPattern IsoMilliseconds = InstantPattern.CreateWithInvariantCulture("uuuu'-'MM'-'dd'T'HH':'mm':'ss'.'fff'Z'");
    private static readonly LocalDateTimePattern SqlDateTime = LocalDateTimePattern.CreateWithInvariantCulture("uuuu'-'MM'-'dd' 'HH':'mm':'ss");

    private const string Schema = """
        CREATE TABLE customers (
          id         INTEGER PRIMARY KEY,
          email      TEXT NOT NULL,
          name       TEXT NOT NULL,
          country    TEXT NOT NULL,
          created_at TEXT NOT NULL,  -- ISO-8601 UTC, 'YYYY-MM-DDTHH:MM:SS.fffZ'
          updated_at TEXT,           -- same format; NULL for customers migrated from the old shop
          deleted_at TEXT            -- set when the customer closed the account (soft delete)
        );
        CREATE INDEX customers_updated_at ON customers (updated_at);
        CREATE TABLE products (
          sku        TEXT PRIMARY KEY,
          name       TEXT NOT NULL,
          price      REAL NOT NULL,
          stock      INTEGER NOT NULL,
          updated_at INTEGER         -- epoch milliseconds
        );
        CREATE TABLE orders (
          id          INTEGER PRIMARY KEY,
          customer_id INTEGER NOT NULL,
          sku         TEXT NOT NULL,
          quantity    INTEGER NOT NULL,
          total       REAL NOT NULL,
          status      TEXT NOT NULL,
          updated_at  TEXT           -- 'YYYY-MM-DD HH:MM:SS', UTC without an offset
        );
        CREATE INDEX orders_updated_at ON orders (updated_at);
        """;

    /// <summary>Creates <paramref name="path"/> (which must not exist) with the shop, in one transaction.</summary>
    public static ShopFacts Create(string path, int customers, Instant now)
    {
        var random = new Random(Seed);
        var historyEnd = now.InUtc().Date.AtStartOfDayInZone(DateTimeZone.Utc).ToInstant() - Duration.FromHours(1);
        var history = new History(historyEnd - Duration.FromDays(540), historyEnd);
        using var connection = Open(path, create: true);
        using (var ddl = connection.CreateCommand())
        {
            // WAL, as a live shop database would be: the application keeps writing while DeltaSync reads.
            ddl.CommandText = "PRAGMA journal_mode = WAL;" + Schema;
            ddl.ExecuteNonQuery();
        }

        using var transaction = connection.BeginTransaction();
        var products = InsertProducts(transaction, random, history, Math.Max(20, customers / 10));
        var customerStats = InsertCustomers(transaction, random, history, customers);
        var orderStats = InsertOrders(transaction, random, history, customers * 3, customers, products);
        transaction.Commit();
        return new ShopFacts(
            customers,
            customers * 3,
            products.Count,
            customerStats.SoftDeleted,
            customerStats.WithoutUpdatedAt,
            orderStats.WithoutUpdatedAt,
            customerStats.SharingTimestamp,
            orderStats.SharingTimestamp,
            new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal)
            {
                [Customers] = [customerStats.UnreadableKey],
                [Orders] = [orderStats.UnreadableKey],
            });
    }

    /// <summary>A connection that is closed for real on dispose (no pool), so the files can be deleted and synced at once.</summary>
    public static SqliteConnection Open(string path, bool create = false)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = create ? SqliteOpenMode.ReadWriteCreate : SqliteOpenMode.ReadWrite,
            Pooling = false,
            DefaultTimeout = 30,
        }.ToString());
        connection.Open();
        return connection;
    }

    public static string CustomerTimestamp(Instant instant) => IsoMilliseconds.Format(instant);

    public static string OrderTimestamp(Instant instant) => SqlDateTime.Format(instant.InUtc().LocalDateTime);

    public static long ProductTimestamp(Instant instant) => instant.ToUnixTimeMilliseconds();

    /// <summary>A prepared INSERT with one parameter per column, in order.</summary>
    public static SqliteCommand PrepareInsert(SqliteTransaction transaction, string table, params string[] columns) =>
        Prepare(transaction, $"INSERT INTO {table} ({string.Join(", ", columns)}) VALUES ({string.Join(", ", columns.Select(c => "$" + c))})", columns);

    /// <summary>A statement prepared once and run per row; its parameters are <c>$name</c> for each of <paramref name="parameters"/>.</summary>
    public static SqliteCommand Prepare(SqliteTransaction transaction, string sql, params string[] parameters)
    {
        var command = transaction.Connection!.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(new SqliteParameter("$" + parameter, DBNull.Value));
        }

        command.Prepare();
        return command;
    }

    /// <summary>Runs a prepared command with <paramref name="values"/> bound in parameter order (null binds NULL).</summary>
    public static void Execute(SqliteCommand command, params object?[] values)
    {
        for (var i = 0; i < values.Length; i++)
        {
            command.Parameters[i].Value = values[i] ?? DBNull.Value;
        }

        command.ExecuteNonQuery();
    }

    private static List<(string Sku, double Price)> InsertProducts(SqliteTransaction transaction, Random random, History history, int count)
    {
        using var insert = PrepareInsert(transaction, Products, "sku", "name", "price", "stock", "updated_at");
        // The spring price list was loaded in one statement: a third of the catalogue shares its timestamp.
        var priceListImport = history.At(0.6);
        var products = new List<(string, double)>(count);
        for (var i = 1; i <= count; i++)
        {
            var (code, noun, low, high) = ShopVocabulary.Categories[random.Next(ShopVocabulary.Categories.Length)];
            var sku = $"{code}-{i:D4}";
            var price = Math.Round(low + (random.NextDouble() * (high - low)), 2);
            var updated = random.NextDouble() < 0.33 ? priceListImport : history.Any(random);
            Execute(insert, sku, $"{Pick(random, ShopVocabulary.Adjectives)} {noun}", price, (long)random.Next(0, 500), ProductTimestamp(updated));
            products.Add((sku, price));
        }

        return products;
    }

    private static (int SoftDeleted, int WithoutUpdatedAt, int SharingTimestamp, string UnreadableKey) InsertCustomers(
        SqliteTransaction transaction, Random random, History history, int count)
    {
        using var insert = PrepareInsert(transaction, Customers, "id", "email", "name", "country", "created_at", "updated_at", "deleted_at");
        // The first customers came over from the old shop in one import: they share created_at and updated_at.
        var imported = count * 3 / 20;
        var importedAt = history.At(0.05);
        var unreadable = count / 2;
        int softDeleted = 0, withoutUpdatedAt = 0;
        for (var id = 1; id <= count; id++)
        {
            var first = Pick(random, ShopVocabulary.FirstNames);
            var last = Pick(random, ShopVocabulary.LastNames);
            var email = $"{first}.{last}{id}@{Pick(random, ShopVocabulary.EmailDomains)}".ToLowerInvariant();
            var created = id <= imported ? importedAt : history.Any(random);
            var updated = id <= imported ? importedAt : history.After(random, created);
            string? deletedAt = null;
            if (id > imported && random.NextDouble() < 0.02)
            {
                updated = history.After(random, updated);
                deletedAt = CustomerTimestamp(updated);
                softDeleted++;
            }

            var updatedText = CustomerTimestamp(updated);
            if (id == unreadable)
            {
                updatedText = UnreadableTimestamp;
            }
            else if (id > imported && deletedAt is null && random.NextDouble() < 0.01)
            {
                updatedText = null;
                withoutUpdatedAt++;
            }

            Execute(insert, (long)id, email, $"{first} {last}", Pick(random, ShopVocabulary.Countries), CustomerTimestamp(created), updatedText, deletedAt);
        }

        return (softDeleted, withoutUpdatedAt, imported, unreadable.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    private static (int WithoutUpdatedAt, int SharingTimestamp, string UnreadableKey) InsertOrders(
        SqliteTransaction transaction, Random random, History history, int count, int customers, List<(string Sku, double Price)> products)
    {
        using var insert = PrepareInsert(transaction, Orders, "id", "customer_id", "sku", "quantity", "total", "status", "updated_at");
        var unreadable = count / 3;
        int withoutUpdatedAt = 0, nightly = 0;
        for (var id = 1; id <= count; id++)
        {
            var (sku, price) = products[random.Next(products.Count)];
            var quantity = random.Next(1, 5);
            var placed = history.Any(random);
            var age = history.End - placed;
            var status = age < Duration.FromDays(2) ? Pick(random, "pending", "paid")
                : age < Duration.FromDays(7) ? Pick(random, "paid", "shipped")
                : Pick(random, "delivered", "delivered", "delivered", "delivered", "delivered", "cancelled", "refunded");
            var updated = placed;
            if (status == "delivered")
            {
                // Deliveries are confirmed by the nightly fulfilment job at 02:00:00: many orders share that second.
                var day = placed.InUtc().Date.PlusDays(random.Next(1, 6));
                updated = Instant.Min(day.At(new LocalTime(2, 0)).InUtc().ToInstant(), history.End);
            }

            string? updatedText = OrderTimestamp(updated);
            if (id == unreadable)
            {
                updatedText = UnreadableTimestamp;
            }
            else if (random.NextDouble() < 0.005)
            {
                updatedText = null;
                withoutUpdatedAt++;
            }
            else if (status == "delivered")
            {
                nightly++;
            }

            Execute(insert, (long)id, (long)random.Next(1, customers + 1), sku, (long)quantity, Math.Round(price * quantity, 2), status, updatedText);
        }

        return (withoutUpdatedAt, nightly, unreadable.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    private static T Pick<T>(Random random, params T[] items) => items[random.Next(items.Length)];

    /// <summary>The shop's past: instants between <see cref="Start"/> and <see cref="End"/>.</summary>
    private sealed record History(Instant Start, Instant End)
    {
        public Instant At(double fraction) => Start + ((End - Start) * fraction);

        public Instant Any(Random random) => After(random, Start);

        public Instant After(Random random, Instant from) => from + Duration.FromMilliseconds((long)(random.NextDouble() * (End - from).TotalMilliseconds));
    }
}
