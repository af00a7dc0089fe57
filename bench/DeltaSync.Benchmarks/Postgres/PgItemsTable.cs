using Npgsql;

namespace DeltaSync.Benchmarks.Postgres;

/// <summary>
/// The PostgreSQL source: one <c>items</c> table of 8 columns (bigint key, text, integer, numeric(12,2), timestamptz,
/// boolean, double precision, 40-character text), generated on the server from a fixed seed.
/// </summary>
public static class PgItemsTable
{
    public const string Table = "items";
    public const string Columns = "id, name, quantity, price, updated_at, active, score, payload";

    /// <summary>The source's table; the anchors create the same at their destination (DeltaSync creates its own, with the same types and key).</summary>
    public const string CreateTableSql = """
        CREATE TABLE items (
          id bigint PRIMARY KEY,
          name text NOT NULL,
          quantity integer NOT NULL,
          price numeric(12,2) NOT NULL,
          updated_at timestamptz NOT NULL,
          active boolean NOT NULL,
          score double precision NOT NULL,
          payload text NOT NULL)
        """;

    // updated_at lies 1 to 365 days back, so no generated row falls inside the 5-minute tolerance window that a
    // timestamp run re-reads: the no-change run then reads only what really changed.
    private const string GenerateSql = """
        INSERT INTO items (id, name, quantity, price, updated_at, active, score, payload)
        SELECT g,
               (ARRAY['Compact','Deluxe','Classic','Rugged','Smart','Eco','Pro','Mini','Ultra','Basic'])[1 + floor(random() * 10)::int] || ' ' ||
               (ARRAY['Widget','Gadget','Bracket','Lamp','Kettle','Backpack','Charger','Bottle','Notebook','Speaker'])[1 + floor(random() * 10)::int] || ' ' ||
               floor(random() * 1000)::int,
               floor(random() * 10000)::int,
               round((1 + random() * 999)::numeric, 2),
               now() - interval '1 day' - random() * interval '364 days',
               random() < 0.5,
               random() * 1000,
               left(md5(random()::text) || md5(random()::text), 40)
        FROM generate_series(1, $1) AS g
        """;

    /// <summary>Creates and fills the table; generation is not what is measured.</summary>
    public static async Task GenerateAsync(BenchmarkDatabase database, long rows, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(database);
        await database.ExecuteAsync(CreateTableSql, cancellationToken).ConfigureAwait(false);
        await using (var connection = await database.OpenAsync(cancellationToken).ConfigureAwait(false))
        {
            // The seed holds for the session: random() in the INSERT on the same connection repeats the same rows.
            await using (var seed = new NpgsqlCommand("SELECT setseed(0.20240601)", connection))
            {
                await seed.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }

            await using var insert = new NpgsqlCommand(GenerateSql, connection);
            insert.Parameters.Add(new NpgsqlParameter<long> { TypedValue = rows });
            await insert.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await database.ExecuteAsync("CREATE INDEX items_updated_at ON items (updated_at)", cancellationToken).ConfigureAwait(false);

        await TidyAsync(database, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Vacuums the source and checkpoints the server before a timed case, so that dead rows left by earlier changes,
    /// hint-bit writes and a checkpoint falling due do not land in one case and not another.
    /// </summary>
    public static async Task TidyAsync(BenchmarkDatabase database, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(database);
        await database.ExecuteAsync("VACUUM (ANALYZE) items", cancellationToken).ConfigureAwait(false);
        await database.ExecuteAsync("CHECKPOINT", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Changes <paramref name="count"/> distinct random rows the way an application would (new price and name,
    /// <c>updated_at = now()</c>) in one transaction; returns how many rows changed.
    /// </summary>
    public static async Task<int> ChangeRowsAsync(BenchmarkDatabase database, long rows, int count, int seed, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(database);
        var random = new Random(seed);
        var ids = new HashSet<long>(count);
        while (ids.Count < Math.Min(count, rows))
        {
            ids.Add(random.NextInt64(1, rows + 1));
        }

        await using var connection = await database.OpenAsync(cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand(
            "UPDATE items SET price = price * 1.1 + 0.01, name = name || ' (v2)', updated_at = now() WHERE id = ANY($1)",
            connection);
        command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = [.. ids] });
        return await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Moves every <c>updated_at</c> of the last hour a day back, so that a later timestamp run does not re-read the
    /// previous round's changes (they would still be inside the tolerance window).
    /// </summary>
    public static Task AgeRecentChangesAsync(BenchmarkDatabase database, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(database);
        return database.ExecuteAsync("UPDATE items SET updated_at = updated_at - interval '1 day' WHERE updated_at >= now() - interval '1 hour'", cancellationToken);
    }
}
