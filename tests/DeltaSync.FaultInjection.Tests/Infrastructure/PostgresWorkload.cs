using System.Globalization;
using DeltaSync.Postgres.Tests;
using Npgsql;

namespace DeltaSync.FaultInjection.Tests.Infrastructure;

/// <summary>
/// <c>items</c> (and, with <see cref="SourceWorkload.HasEvents"/>, the keyless append-only <c>events</c>) in a fresh
/// PostgreSQL database of the test server. <c>updated_at</c> is set by the server (<c>now()</c>), as applications do.
/// </summary>
internal sealed class PostgresWorkload : SourceWorkload
{
    private PostgresWorkload(PgDatabase database)
    {
        Database = database;
    }

    public PgDatabase Database { get; }

    public override string Connection => Database.Uri;

    public override string ItemsColumns => "id, name, qty, amount, doc, updated_at, deleted";

    public static async Task<PostgresWorkload> CreateDatabaseAsync(bool hardDeletes, bool hasEvents) =>
        new(await PgDatabase.CreateAsync("fault_src")) { HardDeletes = hardDeletes, HasEvents = hasEvents };

    public override async Task<List<string[]>> ReadItemsAsync(bool crossSystem) => await ReadAsync(Database, $"SELECT {ItemsColumns} FROM items ORDER BY id", crossSystem);

    public override async Task<List<string[]>> ReadEventsAsync(bool crossSystem) => await ReadAsync(Database, $"SELECT {EventsColumns} FROM events", crossSystem);

    /// <summary>Rows of a query on a PostgreSQL database as canonical text.</summary>
    public static async Task<List<string[]>> ReadAsync(PgDatabase database, string sql, bool crossSystem)
    {
        await using var connection = await database.OpenAsync();
        return await CanonicalRows.ReadAsync(connection, sql, crossSystem);
    }

    public override async ValueTask DisposeAsync() => await Database.DisposeAsync();

    protected override async Task CreateCoreAsync(int rows, int padding)
    {
        await Database.ExecuteAsync($"""
            CREATE TABLE items (
              id bigint PRIMARY KEY,
              name text NOT NULL,
              qty integer NOT NULL,
              amount double precision,
              doc jsonb,
              updated_at timestamptz NOT NULL DEFAULT now(),
              deleted boolean NOT NULL DEFAULT false);
            CREATE INDEX items_by_updated_at ON items (updated_at, id);
            INSERT INTO items (id, name, qty, amount, doc)
              SELECT g, 'item ' || g || repeat('x', {padding}), g % 7, g * 0.25,
                     CASE WHEN g % 4 = 0 THEN NULL ELSE jsonb_build_object('g', g, 'tags', jsonb_build_array(g % 3, 'é€')) END
              FROM generate_series(1, {rows}) AS g;
            """);
        if (HasEvents)
        {
            await Database.ExecuteAsync($"""
                CREATE TABLE events (kind text NOT NULL, amount double precision, at timestamptz NOT NULL DEFAULT now());
                INSERT INTO events (kind, amount) SELECT 'seed ' || (g % 10), (g % 3) * 1.5 FROM generate_series(1, {Math.Max(1, rows / 10)}) AS g;
                """);
        }

        await Database.ExecuteAsync("ANALYZE");
    }

    protected override async Task ApplyAsync(IReadOnlyList<Change> changes)
    {
        await using var connection = await Database.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        foreach (var change in changes)
        {
            await using var command = new NpgsqlCommand(Sql(change.Kind), connection, transaction);
            if (change.Kind == ChangeKind.Event)
            {
                // Duplicate rows on purpose: a keyless table must keep each of them exactly once.
                command.Parameters.Add(new NpgsqlParameter { Value = "event " + (change.Salt % 4).ToString(CultureInfo.InvariantCulture) });
                command.Parameters.Add(new NpgsqlParameter { Value = (change.Salt % 3) * 1.5 });
            }
            else
            {
                command.Parameters.Add(new NpgsqlParameter { Value = change.Id });
                command.Parameters.Add(new NpgsqlParameter { Value = change.Salt });
            }

            await command.ExecuteNonQueryAsync();
        }

        await transaction.CommitAsync();
    }

    protected override async Task BulkCoreAsync(Bulk bulk)
    {
        var delete = HardDeletes
            ? "DELETE FROM items WHERE id % $5 = $6"
            : "UPDATE items SET deleted = true, updated_at = now() WHERE id % $5 = $6 AND NOT deleted";
        await using var connection = await Database.OpenAsync();
        await using var batch = new NpgsqlBatch(connection)
        {
            BatchCommands =
            {
                Command("UPDATE items SET name = name || ' b' || $7, qty = qty + 1, amount = coalesce(amount, 0) + 0.5, updated_at = now() WHERE id % $1 = $2 AND NOT deleted", bulk),
                Command("INSERT INTO items (id, name, qty, amount, doc) SELECT g, 'bulk ' || g, g % 9, g * 0.5, jsonb_build_object('bulk', $7) FROM generate_series($3::bigint, $3 + $4 - 1) AS g", bulk),
                Command(delete, bulk),
            },
        };
        if (HasEvents)
        {
            batch.BatchCommands.Add(Command("INSERT INTO events (kind, amount) SELECT 'bulk ' || (g % 5), (g % 4) * 0.75 FROM generate_series(1, $4) AS g", bulk));
        }

        // One batch without an explicit transaction runs as one implicit transaction. Each statement is sent every
        // parameter; PostgreSQL accepts parameters a statement does not use, since Npgsql declares their types.
        await batch.ExecuteNonQueryAsync();
    }

    private static NpgsqlBatchCommand Command(string sql, Bulk bulk)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var value in new object[] { (long)bulk.UpdateModulus, (long)bulk.UpdateRemainder, bulk.FirstNewId, bulk.Inserts, (long)bulk.DeleteModulus, (long)bulk.DeleteRemainder, bulk.Salt.ToString(CultureInfo.InvariantCulture) })
        {
            command.Parameters.Add(new NpgsqlParameter { Value = value });
        }

        return command;
    }

    private static string Sql(ChangeKind kind) => kind switch
    {
        ChangeKind.Insert => """
            INSERT INTO items (id, name, qty, amount, doc)
            VALUES ($1, 'item ' || $1 || ' v' || $2, $2 % 100, $2 / 8.0, CASE WHEN $2 % 5 = 0 THEN NULL ELSE jsonb_build_object('salt', $2) END)
            """,
        ChangeKind.Update => """
            UPDATE items SET name = 'item ' || $1 || ' v' || $2, qty = qty + 1, amount = $2 / 16.0,
                   doc = CASE WHEN $2 % 5 = 1 THEN NULL ELSE jsonb_build_object('salt', $2, 'u', true) END, updated_at = now()
            WHERE id = $1 AND NOT deleted
            """,
        ChangeKind.Delete => "DELETE FROM items WHERE id = $1",
        ChangeKind.SoftDelete => "UPDATE items SET deleted = true, updated_at = now() WHERE id = $1 AND NOT deleted",
        _ => "INSERT INTO events (kind, amount) VALUES ($1, $2)",
    };
}
