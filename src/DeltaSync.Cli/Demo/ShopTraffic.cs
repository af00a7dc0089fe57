using System.Globalization;
using Microsoft.Data.Sqlite;
using NodaTime;

namespace DeltaSync.Cli.Demo;

/// <summary>What the shop application changed in one table, and so what an incremental sync should write.</summary>
/// <param name="Description">The changes in words, e.g. "20 new orders, 15 status changes".</param>
internal sealed record TableChanges(string Table, long Inserted, long Updated, long Deleted, string Description);

/// <summary>
/// Changes the source as the shop application would between two syncs: customers change e-mail addresses and close
/// accounts (soft delete: <c>deleted_at</c> is set, the row stays), orders are placed and move on, products are
/// repriced, discontinued (a hard DELETE) and added. Every changed row gets <c>updated_at</c> = now, in its table's
/// format; rows changed together share that timestamp.
/// </summary>
internal static class ShopTraffic
{
    public const int NewOrders = 20;
    public const int OrderStatusChanges = 15;
    public const int ClosedAccounts = 3;
    public const int PriceChanges = 5;
    public const int DiscontinuedProducts = 2;
    public const int NewProducts = 3;

    private static readonly Dictionary<string, string> NextStatus = new(StringComparer.Ordinal)
    {
        ["pending"] = "paid",
        ["paid"] = "shipped",
        ["shipped"] = "delivered",
        ["delivered"] = "refunded",
    };

    /// <summary>Applies the changes to the database at <paramref name="path"/>; one transaction per table.</summary>
    public static IReadOnlyList<TableChanges> Apply(string path, ShopFacts facts, Instant now)
    {
        var random = new Random(DemoShop.Seed + 1);
        using var connection = DemoShop.Open(path);
        var liveCustomers = Query(connection, "SELECT id, email FROM customers WHERE deleted_at IS NULL ORDER BY id")
            .Where(r => !facts.UnreadableIn(DemoShop.Customers).Contains(Text(r[0])))
            .ToArray();
        var products = Query(connection, "SELECT sku, price, name FROM products ORDER BY sku");
        return
        [
            ChangeCustomers(connection, random, liveCustomers, Math.Max(1, facts.Customers / 100), now),
            ChangeOrders(connection, random, facts, liveCustomers, products, now),
            ChangeProducts(connection, random, products, now),
        ];
    }

    private static TableChanges ChangeCustomers(SqliteConnection connection, Random random, object?[][] live, int emailChanges, Instant now)
    {
        var picked = live.ToArray();
        random.Shuffle(picked);
        emailChanges = Math.Min(emailChanges, picked.Length - ClosedAccounts);
        var stamp = DemoShop.CustomerTimestamp(now);
        using var transaction = connection.BeginTransaction();
        using (var update = DemoShop.Prepare(transaction, "UPDATE customers SET email = $email, updated_at = $now WHERE id = $id", "email", "now", "id"))
        {
            foreach (var row in picked.Take(emailChanges))
            {
                var email = (string)row[1]!;
                var at = email.IndexOf('@', StringComparison.Ordinal);
                var domain = ShopVocabulary.EmailDomains.First(d => !email.EndsWith("@" + d, StringComparison.Ordinal));
                DemoShop.Execute(update, email[..at] + "@" + domain, stamp, row[0]);
            }
        }

        using (var close = DemoShop.Prepare(transaction, "UPDATE customers SET deleted_at = $now, updated_at = $now WHERE id = $id", "now", "id"))
        {
            foreach (var row in picked.Skip(emailChanges).Take(ClosedAccounts))
            {
                DemoShop.Execute(close, stamp, row[0]);
            }
        }

        transaction.Commit();
        return new TableChanges(DemoShop.Customers, 0, emailChanges + ClosedAccounts, 0, $"{emailChanges} e-mail changes, {ClosedAccounts} accounts closed (soft delete: deleted_at set, row kept)");
    }

    private static TableChanges ChangeOrders(SqliteConnection connection, Random random, ShopFacts facts, object?[][] customers, List<object?[]> products, Instant now)
    {
        // Open orders move on first; when there are too few (small shops), delivered orders are refunded.
        var candidates = Query(connection, "SELECT id, status FROM orders WHERE status IN ('pending', 'paid', 'shipped', 'delivered') ORDER BY id")
            .Where(r => !facts.UnreadableIn(DemoShop.Orders).Contains(Text(r[0])))
            .ToArray();
        random.Shuffle(candidates);
        var moving = candidates.OrderBy(r => (string)r[1]! == "delivered" ? 1 : 0).Take(OrderStatusChanges).ToList();
        var firstNewId = (long)Query(connection, "SELECT max(id) FROM orders")[0][0]! + 1;
        var stamp = DemoShop.OrderTimestamp(now);
        using var transaction = connection.BeginTransaction();
        using (var insert = DemoShop.PrepareInsert(transaction, DemoShop.Orders, "id", "customer_id", "sku", "quantity", "total", "status", "updated_at"))
        {
            for (var i = 0; i < NewOrders; i++)
            {
                var product = products[random.Next(products.Count)];
                var quantity = random.Next(1, 4);
                DemoShop.Execute(insert, firstNewId + i, customers[random.Next(customers.Length)][0], product[0], (long)quantity, Math.Round((double)product[1]! * quantity, 2), "pending", stamp);
            }
        }

        using (var update = DemoShop.Prepare(transaction, "UPDATE orders SET status = $status, updated_at = $now WHERE id = $id", "status", "now", "id"))
        {
            foreach (var row in moving)
            {
                DemoShop.Execute(update, NextStatus[(string)row[1]!], stamp, row[0]);
            }
        }

        transaction.Commit();
        return new TableChanges(DemoShop.Orders, NewOrders, moving.Count, 0, $"{NewOrders} new orders, {moving.Count} status changes");
    }

    private static TableChanges ChangeProducts(SqliteConnection connection, Random random, List<object?[]> products, Instant now)
    {
        var picked = products.ToArray();
        random.Shuffle(picked);
        var stamp = DemoShop.ProductTimestamp(now);
        using var transaction = connection.BeginTransaction();
        using (var reprice = DemoShop.Prepare(transaction, "UPDATE products SET price = $price, updated_at = $now WHERE sku = $sku", "price", "now", "sku"))
        {
            foreach (var row in picked.Take(PriceChanges))
            {
                var price = (double)row[1]!;
                DemoShop.Execute(reprice, Math.Round(price * (random.Next(2) == 0 ? 0.85 : 1.10), 2), stamp, row[0]);
            }
        }

        using (var discontinue = DemoShop.Prepare(transaction, "DELETE FROM products WHERE sku = $sku", "sku"))
        {
            foreach (var row in picked.Skip(PriceChanges).Take(DiscontinuedProducts))
            {
                DemoShop.Execute(discontinue, row[0]);
            }
        }

        using (var insert = DemoShop.PrepareInsert(transaction, DemoShop.Products, "sku", "name", "price", "stock", "updated_at"))
        {
            for (var i = 1; i <= NewProducts; i++)
            {
                var (code, noun, low, high) = ShopVocabulary.Categories[random.Next(ShopVocabulary.Categories.Length)];
                var sku = $"{code}-{products.Count + i:D4}";
                DemoShop.Execute(insert, sku, $"Limited Edition {noun}", Math.Round(low + (random.NextDouble() * (high - low)), 2), (long)random.Next(20, 200), stamp);
            }
        }

        transaction.Commit();
        return new TableChanges(
            DemoShop.Products,
            NewProducts,
            PriceChanges,
            DiscontinuedProducts,
            $"{PriceChanges} price changes, {DiscontinuedProducts} discontinued (hard DELETE), {NewProducts} new products");
    }

    private static List<object?[]> Query(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<object?[]>();
        while (reader.Read())
        {
            var row = new object?[reader.FieldCount];
            for (var i = 0; i < row.Length; i++)
            {
                row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            }

            rows.Add(row);
        }

        return rows;
    }

    private static string Text(object? value) => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";
}
