using System.Globalization;
using DeltaSync.Sqlite.Tests.Engine;
using Microsoft.Data.Sqlite;

namespace DeltaSync.FaultInjection.Tests.Infrastructure;

/// <summary>
/// <c>items</c> in a SQLite file (WAL mode, as an application sharing it with a reader would have it), with a column per
/// change-tracking style (<c>updated_at</c>, per-row <c>row_version</c>, table-wide <c>seq</c>) and an untyped
/// <c>note</c> that holds integers, reals, text, blobs and NULLs, so storage classes are compared too.
/// </summary>
internal sealed class SqliteWorkload : SourceWorkload
{
    private const string Now = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";
    private readonly SqliteTestDb _db;

    public SqliteWorkload(string path)
    {
        _db = new SqliteTestDb(path);
    }

    public string Path => _db.Path;

    public override string Connection => "sqlite:///" + _db.Path.TrimStart('/');

    public override string ItemsColumns => "id, name, qty, price, data, note, updated_at, row_version, seq, deleted";

    public override Task<List<string[]>> ReadItemsAsync(bool crossSystem) => ReadAsync(Path, $"SELECT {ItemsColumns} FROM items ORDER BY id", crossSystem);

    public override Task<List<string[]>> ReadEventsAsync(bool crossSystem) => throw new NotSupportedException("the SQLite workload has no events table");

    /// <summary>Rows of a query on a SQLite file as canonical text.</summary>
    public static async Task<List<string[]>> ReadAsync(string path, string sql, bool crossSystem)
    {
        await using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false, DefaultTimeout = 60, Mode = SqliteOpenMode.ReadOnly }.ToString());
        await connection.OpenAsync();
        return await CanonicalRows.ReadAsync(connection, sql, crossSystem);
    }

    public override ValueTask DisposeAsync()
    {
        SqliteConnection.ClearAllPools();
        return ValueTask.CompletedTask;
    }

    protected override Task CreateCoreAsync(int rows, int padding) => Task.Run(() =>
    {
        _db.Execute("PRAGMA journal_mode = WAL");
        _db.Execute("""
            CREATE TABLE items (
              id INTEGER PRIMARY KEY,
              name TEXT NOT NULL,
              qty INTEGER,
              price REAL,
              data BLOB,
              note,
              updated_at TEXT NOT NULL,
              row_version INTEGER NOT NULL DEFAULT 1,
              seq INTEGER NOT NULL,
              deleted INTEGER NOT NULL DEFAULT 0);
            CREATE INDEX items_by_updated_at ON items (updated_at);
            CREATE UNIQUE INDEX items_by_seq ON items (seq);
            """);
        var pad = new string('x', padding);
        _db.Transaction(execute =>
        {
            for (var id = 1L; id <= rows; id++)
            {
                execute(
                    $"INSERT INTO items (id, name, qty, price, data, note, updated_at, seq) VALUES ($id, $name, $qty, $price, $data, $note, {Now}, $id)",
                    [("$id", id), ("$name", Name(id, 0) + pad), ("$qty", id % 7), ("$price", id * 0.25), ("$data", Bytes(id, 0)), ("$note", Note(id, 0))]);
            }
        });
    });

    protected override Task ApplyAsync(IReadOnlyList<Change> changes) => Task.Run(() => _db.Transaction(execute =>
    {
        foreach (var change in changes)
        {
            var next = "(SELECT coalesce(max(seq), 0) + 1 FROM items)";
            switch (change.Kind)
            {
                case ChangeKind.Insert:
                    execute(
                        $"INSERT INTO items (id, name, qty, price, data, note, updated_at, seq) VALUES ($id, $name, $qty, $price, $data, $note, {Now}, {next})",
                        [("$id", change.Id), ("$name", Name(change.Id, change.Salt)), ("$qty", change.Salt % 100), ("$price", change.Salt / 8.0), ("$data", Bytes(change.Id, change.Salt)), ("$note", Note(change.Id, change.Salt))]);
                    break;
                case ChangeKind.Update:
                    execute(
                        $"UPDATE items SET name = $name, qty = coalesce(qty, 0) + 1, price = $price, note = $note, updated_at = {Now}, row_version = row_version + 1, seq = {next} WHERE id = $id AND deleted = 0",
                        [("$id", change.Id), ("$name", Name(change.Id, change.Salt)), ("$price", change.Salt / 16.0), ("$note", Note(change.Id, change.Salt))]);
                    break;
                case ChangeKind.Delete:
                    execute("DELETE FROM items WHERE id = $id", [("$id", change.Id)]);
                    break;
                default:
                    execute($"UPDATE items SET deleted = 1, updated_at = {Now}, row_version = row_version + 1, seq = {next} WHERE id = $id AND deleted = 0", [("$id", change.Id)]);
                    break;
            }
        }
    }));

    protected override Task BulkCoreAsync(Bulk bulk) => Task.Run(() => _db.Transaction(execute =>
    {
        // seq stays unique and table-wide increasing: every changed row moves above the current maximum, by its id (not by
        // its old seq, which would double the maximum every bulk and overflow 64 bits within a long run's trials).
        var top = $"(SELECT coalesce(max(seq), 0) FROM items)";
        execute(
            $"UPDATE items SET name = name || ' b' || $salt, qty = coalesce(qty, 0) + 1, price = coalesce(price, 0) + 0.5, updated_at = {Now}, row_version = row_version + 1, seq = {top} + id WHERE id % $m = $r AND deleted = 0",
            [("$salt", bulk.Salt), ("$m", bulk.UpdateModulus), ("$r", bulk.UpdateRemainder)]);
        execute(
            $"""
            WITH RECURSIVE n(id) AS (SELECT $first UNION ALL SELECT id + 1 FROM n WHERE id < $last)
            INSERT INTO items (id, name, qty, price, data, note, updated_at, seq)
            SELECT id, 'bulk ' || id, id % 9, id * 0.5, x'0102', CASE id % 3 WHEN 0 THEN id WHEN 1 THEN 'n' || id ELSE NULL END, {Now}, {top} + id FROM n
            """,
            [("$first", bulk.FirstNewId), ("$last", bulk.FirstNewId + bulk.Inserts - 1)]);
        execute(
            HardDeletes
                ? "DELETE FROM items WHERE id % $m = $r"
                : $"UPDATE items SET deleted = 1, updated_at = {Now}, row_version = row_version + 1, seq = {top} + id WHERE id % $m = $r AND deleted = 0",
            [("$m", bulk.DeleteModulus), ("$r", bulk.DeleteRemainder)]);
    }));

    private static string Name(long id, int salt) => string.Create(CultureInfo.InvariantCulture, $"item {id} v{salt} \u00e9\u20ac");

    private static byte[] Bytes(long id, int salt) => [(byte)id, (byte)(id >> 8), (byte)salt, 0, 0xFF];

    /// <summary>A value of a different storage class depending on the salt: integer, real, text, blob or NULL.</summary>
    private static object? Note(long id, int salt) => ((id + salt) % 5) switch
    {
        0 => id * 1000 + salt,
        1 => salt + 0.5,
        2 => "note " + salt.ToString(CultureInfo.InvariantCulture),
        3 => new byte[] { 1, (byte)salt },
        _ => null,
    };
}
