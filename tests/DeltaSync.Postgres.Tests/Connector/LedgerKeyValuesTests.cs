using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Postgres.Capture;

namespace DeltaSync.Postgres.Tests.Connector;

/// <summary>
/// Ledger entries an earlier version wrote for date and time keys (culture text without fractions) are left out of a
/// comparison with the table, so they never turn into deletes of live rows; entries of the current form, and text keys
/// that merely look like dates, stay, their date and time components read back as the values the capture reads.
/// </summary>
public sealed class LedgerKeyValuesTests
{
    private static LedgerEntry Entry(params object?[] key) => new(new RecordKey(key), Position.None, null, 0, Deleted: false);

    private static PgColumn Column(string name, string baseType, int ordinal) => new(name, baseType, baseType, false, true, ordinal, null);

    [Fact]
    public async Task Old_date_and_time_key_entries_are_left_out_and_everything_else_kept()
    {
        IReadOnlyList<PgColumn> keys = [Column("at", "timestamptz", 1), Column("day", "date", 2), Column("clock", "time", 3), Column("label", "text", 4)];
        LedgerEntry[] entries =
        [
            Entry("03/01/2024 05:00:00", "2024-03-01", "10:00:30.0000000", "a/b"),          // old timestamp
            Entry("2024-03-01T05:00:00.0000000", "03/01/2024", "10:00:30.0000000", "a/b"),  // old date
            Entry("2024-03-01T05:00:00.0000000", "2024-03-01", "10:00", "a/b"),             // old time (HH:mm)
            Entry("2024-03-01T05:00:00.0000000", "2024-03-01", "10:00:30", "a/b"),          // old time (HH:mm:ss)
            Entry("2024-03-01T05:00:00.0000000", "2024-03-01", "10:00:30.0000000", "03/01/2024"), // current; a text key with slashes
            Entry("infinity", "-infinity", "24:00:00", "x"),                                 // current infinities, end of day
        ];

        var kept = await LedgerKeyValues.Prepare(entries.ToAsyncEnumerable(), keys).ToListAsync();

        Assert.Equal([entries[4].Key, entries[5].Key], kept.Select(e => e.Key));
        Assert.Equal(
            [new DateTime(2024, 3, 1, 5, 0, 0, DateTimeKind.Utc), new DateOnly(2024, 3, 1), new TimeOnly(10, 0, 30), "03/01/2024"],
            kept[0].Key.Values);
        Assert.Equal(DateTimeKind.Utc, ((DateTime)kept[0].Key.Values[0]!).Kind);
        Assert.Equal(["infinity", "-infinity", "24:00:00", "x"], kept[1].Key.Values);
    }

    [Fact]
    public async Task A_table_without_date_or_time_keys_is_not_filtered()
    {
        LedgerEntry[] entries = [Entry("03/01/2024"), Entry("10:00")];
        var kept = await LedgerKeyValues.Prepare(entries.ToAsyncEnumerable(), [Column("code", "text", 1)]).ToListAsync();
        Assert.Same(entries[0], kept[0]);
        Assert.Equal(entries, kept);
    }
}
