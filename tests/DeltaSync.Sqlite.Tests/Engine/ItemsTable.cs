using System.Globalization;
using NodaTime;
using NodaTime.Text;

namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>
/// The <c>items</c> source table used by most engine tests, with one column per kind of change tracking
/// (<c>updated_at</c>, a per-row <c>row_version</c>, a table-wide <c>seq</c>) and an untyped <c>note</c> column that
/// keeps whatever storage class it is given, so type fidelity is checked too. Every write maintains all three.
/// </summary>
internal sealed class ItemsTable
{
    public const string Name = "items";

    private static readonly InstantPattern Iso = InstantPattern.CreateWithInvariantCulture("uuuu'-'MM'-'dd'T'HH':'mm':'ss.fff'Z'");

    private readonly SqliteTestDb _db;

    public ItemsTable(SqliteTestDb db)
    {
        _db = db;
    }

    /// <summary>Where <c>updated_at</c> values come from; the system clock unless a test sets it.</summary>
    public Func<Instant> Now { get; set; } = () => SystemClock.Instance.GetCurrentInstant();

    public void Create() => _db.Execute("""
        CREATE TABLE items (
          id INTEGER PRIMARY KEY,
          name TEXT NOT NULL,
          price REAL,
          qty INTEGER,
          data BLOB,
          note,
          updated_at TEXT,
          row_version INTEGER NOT NULL DEFAULT 1,
          seq INTEGER NOT NULL)
        """);

    public static string Timestamp(Instant instant) => Iso.Format(instant);

    /// <summary>A value of a different storage class for each <paramref name="i"/>: integer, real, text, blob, NULL.</summary>
    public static object? Note(long i) => (i % 5) switch
    {
        0 => i * 1000,
        1 => i + 0.25,
        2 => "note " + i.ToString(CultureInfo.InvariantCulture) + " \u00e9\u20ac",
        3 => new byte[] { 0, (byte)i, 0xFF },
        _ => null,
    };

    public void Insert(long id, string? name = null, object? note = null, string? updatedAt = null) =>
        _db.Execute(
            "INSERT INTO items (id, name, price, qty, data, note, updated_at, seq) VALUES ($id, $name, $price, $qty, $data, $note, $updated_at, (SELECT coalesce(max(seq), 0) + 1 FROM items))",
            ("$id", id),
            ("$name", name ?? "item " + id.ToString(CultureInfo.InvariantCulture)),
            ("$price", id * 1.5),
            ("$qty", id % 7),
            ("$data", new byte[] { (byte)id, 1, 2 }),
            ("$note", note ?? Note(id)),
            ("$updated_at", updatedAt ?? Timestamp(Now())));

    public void InsertMany(long from, long to)
    {
        for (var id = from; id <= to; id++)
        {
            Insert(id);
        }
    }

    /// <summary>Changes the row's values, bumps <c>row_version</c> and <c>seq</c> and sets <c>updated_at</c>.</summary>
    public void Update(long id, string name, object? note, string? updatedAt = null) =>
        _db.Execute(
            "UPDATE items SET name = $name, note = $note, qty = coalesce(qty, 0) + 1, updated_at = $updated_at, row_version = row_version + 1, seq = (SELECT max(seq) + 1 FROM items) WHERE id = $id",
            ("$id", id),
            ("$name", name),
            ("$note", note),
            ("$updated_at", updatedAt ?? Timestamp(Now())));

    public void Delete(long id) => _db.Execute("DELETE FROM items WHERE id = $id", ("$id", id));
}
