namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>Tables that are not a plain integer id: composite keys, identifiers that need quoting, columns added later.</summary>
public sealed class TableShapeSyncTests : IDisposable
{
    private const string OrderItems = "order items";

    private readonly SyncWorkspace _workspace = new();

    public static TheoryData<string, bool> OrderItemsMethods() => new()
    {
        { "{name: \"order items\", cdc_method: trigger}", true },
        { "{name: \"order items\", cdc_method: polling}", true },
        { "{name: \"order items\", cdc_method: timestamp}", false },
        { "{name: \"order items\", cdc_method: version, version_field: \"group\"}", true },
    };

    [Theory]
    [MemberData(nameof(OrderItemsMethods))]
    public async Task A_composite_key_and_identifiers_that_need_quoting_sync_correctly(string table, bool seesDeletes)
    {
        var source = _workspace.Source;
        source.Execute("""
            CREATE TABLE "order items" (
              "key part" TEXT NOT NULL,
              "select" INTEGER NOT NULL,
              "from" TEXT,
              "group" INTEGER NOT NULL DEFAULT 1,
              "weird ""quoted"" name" REAL,
              updated_at TEXT,
              PRIMARY KEY ("key part", "select"))
            """);
        // Keys sharing prefixes, the empty string, non-ASCII, negative numbers: byte order and SQL order must agree.
        string[] parts = ["a", "a b", "", "ab", "\u00e9", "b", "A"];
        long[] numbers = [-5, 0, 1, 2, 10];
        foreach (var part in parts)
        {
            foreach (var number in numbers)
            {
                Insert(part, number, $"{part}/{number}");
            }
        }

        var config = _workspace.Configure(SyncYaml.Config(table, batchSize: 6));

        var initial = await _workspace.RunCompletedAsync(config);

        Assert.Equal(parts.Length * numbers.Length, initial.Statistics.RecordsInserted);
        _workspace.AssertSynced(OrderItems, "key part", "select");

        Insert("a", 3, "new");
        Insert("zz", -1, "new too");
        Update("a b", 0, "changed");
        Update("", -5, "changed too");
        if (seesDeletes)
        {
            source.Execute("""DELETE FROM "order items" WHERE "key part" = 'ab' AND "select" = 10""");
        }

        var changes = await _workspace.RunCompletedAsync(config);

        Assert.Equal(2, changes.Statistics.RecordsInserted);
        Assert.Equal(2, changes.Statistics.RecordsUpdated);
        Assert.Equal(seesDeletes ? 1 : 0, changes.Statistics.RecordsDeleted);
        _workspace.AssertSynced(OrderItems, "key part", "select");
        Assert.Equal(0, SyncWorkspace.Writes(await _workspace.RunCompletedAsync(config)));
    }

    [Fact]
    public async Task Changing_part_of_a_composite_key_moves_the_row_with_trigger_capture()
    {
        _workspace.Source.Execute("""
            CREATE TABLE "order items" ("key part" TEXT NOT NULL, "select" INTEGER NOT NULL, "from" TEXT, PRIMARY KEY ("key part", "select"));
            INSERT INTO "order items" VALUES ('a', 1, 'one'), ('a', 2, 'two'), ('b', 1, 'three');
            """);
        var config = _workspace.Configure(SyncYaml.Config("{name: \"order items\", cdc_method: trigger}"));
        await _workspace.RunCompletedAsync(config);

        _workspace.Source.Execute("""UPDATE "order items" SET "select" = 7 WHERE "key part" = 'a' AND "select" = 2""");
        _workspace.Source.Execute("""UPDATE "order items" SET "key part" = 'c' WHERE "key part" = 'b'""");
        var report = await _workspace.RunCompletedAsync(config);

        Assert.Equal(2, report.Statistics.RecordsInserted);
        Assert.Equal(2, report.Statistics.RecordsDeleted);
        _workspace.AssertSynced(OrderItems, "key part", "select");
    }

    public static TheoryData<string> EvolvingMethods() => new()
    {
        "{name: items, cdc_method: timestamp}",
        "{name: items, cdc_method: version, sequence_field: seq}",
        "{name: items, cdc_method: version, version_field: row_version}",
        "{name: items, cdc_method: trigger}",
        "{name: items, cdc_method: polling}",
    };

    [Theory]
    [MemberData(nameof(EvolvingMethods))]
    public async Task A_column_added_at_the_source_between_runs_is_added_at_the_destination_and_its_values_flow(string table)
    {
        var items = new ItemsTable(_workspace.Source);
        items.Create();
        items.InsertMany(1, 10);
        var config = _workspace.Configure(SyncYaml.Config(table, batchSize: 4));
        await _workspace.RunCompletedAsync(config);

        _workspace.Source.Execute("ALTER TABLE items ADD COLUMN color TEXT");
        items.Update(2, "painted", "n");
        _workspace.Source.Execute("UPDATE items SET color = 'blue' WHERE id = 2");
        items.Insert(11);
        _workspace.Source.Execute("UPDATE items SET color = 'green' WHERE id = 11");
        var report = await _workspace.RunCompletedAsync(config);

        Assert.Contains("color", _workspace.Destination.Columns(ItemsTable.Name));
        Assert.Contains(report.Warnings, w => w.Contains("schema", StringComparison.OrdinalIgnoreCase));
        _workspace.AssertSynced(ItemsTable.Name, "id");

        items.Update(5, "painted later", 5L);
        _workspace.Source.Execute("UPDATE items SET color = 'red' WHERE id = 5");
        await _workspace.RunCompletedAsync(config);

        _workspace.AssertSynced(ItemsTable.Name, "id");
        Assert.Equal(0, SyncWorkspace.Writes(await _workspace.RunCompletedAsync(config)));
    }

    [Theory]
    [MemberData(nameof(EvolvingMethods))]
    public async Task A_column_added_with_a_default_reaches_the_rows_synced_before_it(string table)
    {
        // Rows last written an hour ago: outside any lookback, so only the schema change can bring them up to date.
        var items = new ItemsTable(_workspace.Source) { Now = () => NodaTime.SystemClock.Instance.GetCurrentInstant() - NodaTime.Duration.FromHours(1) };
        items.Create();
        items.InsertMany(1, 10);
        var config = _workspace.Configure(SyncYaml.Config(table, batchSize: 4));
        await _workspace.RunCompletedAsync(config);
        // A second pass moves every method past its snapshot (a sequence cursor starts from the bottom after one).
        await _workspace.RunCompletedAsync(config);

        // Every existing row now has color 'red' at the source, though none of them was written.
        _workspace.Source.Execute("ALTER TABLE items ADD COLUMN color TEXT NOT NULL DEFAULT 'red'");
        await _workspace.RunCompletedAsync(config);

        _workspace.AssertSynced(ItemsTable.Name, "id");
    }

    private void Insert(string part, long number, string from) =>
        _workspace.Source.Execute(
            """INSERT INTO "order items" ("key part", "select", "from", "weird ""quoted"" name", updated_at) VALUES ($part, $number, $from, $real, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))""",
            ("$part", part),
            ("$number", number),
            ("$from", from),
            ("$real", number / 4.0));

    private void Update(string part, long number, string from) =>
        _workspace.Source.Execute(
            """UPDATE "order items" SET "from" = $from, "group" = "group" + 1, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE "key part" = $part AND "select" = $number""",
            ("$part", part),
            ("$number", number),
            ("$from", from));

    public void Dispose() => _workspace.Dispose();
}
