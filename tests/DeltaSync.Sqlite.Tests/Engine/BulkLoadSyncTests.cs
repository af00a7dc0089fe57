namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>
/// SQLite → SQLite initial loads that SQLite makes itself (<c>initial_load: sqlite_insert_select</c>): the rows are
/// copied over an attached source file and the ledger is built in SQL by functions running the engine's own code. What
/// they leave behind must be exactly what the pipeline's snapshot would have left: the same rows, the same ledger
/// entries (key, position, commit time, row hash), the same checkpoint and report counts.
/// </summary>
public sealed class BulkLoadSyncTests : IDisposable
{
    private const string BulkLoad = "sqlite_insert_select";
    private readonly SyncWorkspace _bulk = new();
    private readonly SyncWorkspace _pipeline = new();

    public static TheoryData<string, string> Captures => new()
    {
        { "{name: items, cdc_method: timestamp, created_at_field: created_at}", "cdc: {timestamp: {timezone: Europe/Berlin}}" },
        { "{name: items, cdc_method: timestamp}", "" },
        { "{name: items, cdc_method: version, sequence_field: seq}", "" },
    };

    [Theory]
    [MemberData(nameof(Captures))]
    public async Task The_bulk_load_leaves_the_rows_ledger_and_checkpoint_the_pipeline_would_leave(string table, string blocks)
    {
        foreach (var workspace in new[] { _bulk, _pipeline })
        {
            CreateMixedSource(workspace.Source, rows: 300);
        }

        // A row already in the destination table makes the destination refuse the bulk load: the pipeline loads it.
        _pipeline.Destination.Execute(ItemsTable("name TEXT"));
        _pipeline.Destination.Execute("INSERT INTO items (id, name) VALUES (-1, 'not from the source')");

        var yaml = SyncYaml.Config(table, batchSize: 7, blocks: blocks);
        // One clock for both runs (engine and source): the cursor continues from the clock.
        var clock = new ManualClock(NodaTime.Instant.FromUtc(2026, 12, 7, 9, 0));
        var bulk = await _bulk.RunCompletedAsync(_bulk.Configure(yaml), clock: clock);
        var pipeline = await _pipeline.RunCompletedAsync(_pipeline.Configure(yaml), clock: clock);

        Assert.Equal(BulkLoad, bulk.Tables[0].InitialLoad);
        Assert.Null(pipeline.Tables[0].InitialLoad);
        _bulk.AssertSynced("items", "id");
        Assert.Equal(300, bulk.Statistics.RecordsInserted);
        Assert.Equal(pipeline.Statistics.RecordsInserted, bulk.Statistics.RecordsInserted);
        Assert.Equal(pipeline.Tables[0].Position, bulk.Tables[0].Position);
        Assert.Equal(pipeline.Tables[0].HighWaterMark, bulk.Tables[0].HighWaterMark);
        // The same warnings (NULL updated_at, created_at fallbacks, DST), but for rows "out of order": the pipeline's
        // snapshot streams rows in key order, not time order; a bulk load has no order to report on.
        Assert.Equal(
            pipeline.Warnings.Where(w => !w.Contains("out of order", StringComparison.Ordinal)).Select(w => w.Replace(_pipeline.Folder, "…", StringComparison.Ordinal)).Order(),
            bulk.Warnings.Select(w => w.Replace(_bulk.Folder, "…", StringComparison.Ordinal)).Order());
        Assert.Equal(Ledger(_pipeline), Ledger(_bulk));
        // 300 rows in chunks of 10 batches of 7: five commits, each a checkpoint version.
        Assert.Equal(5, bulk.Tables[0].CheckpointVersion);

        // A full refresh re-reads every row through the pipeline and compares it with the ledger: nothing differs.
        var refresh = await _bulk.RunCompletedAsync(_bulk.Configure(yaml), fullRefresh: true, clock: clock);
        Assert.Equal(0, SyncWorkspace.Writes(refresh));
        Assert.Null(refresh.Tables[0].InitialLoad);
    }

    [Fact]
    public async Task Changes_after_a_bulk_load_are_synced_and_nothing_else()
    {
        CreateMixedSource(_bulk.Source, rows: 120);
        var config = _bulk.Configure(SyncYaml.Config("{name: items, cdc_method: timestamp}", batchSize: 10, blocks: "cdc: {timestamp: {safety_margin: 0s}}"));
        Assert.Equal(BulkLoad, (await _bulk.RunCompletedAsync(config)).Tables[0].InitialLoad);

        _bulk.Source.Execute("UPDATE items SET name = 'renamed', updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id IN (3, 77)");
        _bulk.Source.Execute("INSERT INTO items (id, name, updated_at) VALUES (1000, 'new', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))");
        var report = await _bulk.RunCompletedAsync(config);

        Assert.Equal(2, report.Statistics.RecordsUpdated);
        Assert.Equal(1, report.Statistics.RecordsInserted);
        _bulk.AssertSynced("items", "id");
        Assert.Equal(0, SyncWorkspace.Writes(await _bulk.RunCompletedAsync(config)));
    }

    [Fact]
    public async Task A_sequence_bulk_load_continues_after_the_highest_value_it_saw()
    {
        CreateMixedSource(_bulk.Source, rows: 40);
        var config = _bulk.Configure(SyncYaml.Config("{name: items, cdc_method: version, sequence_field: seq}", batchSize: 4));
        var first = await _bulk.RunCompletedAsync(config);
        Assert.Equal(BulkLoad, first.Tables[0].InitialLoad);
        Assert.StartsWith("sequence:400|", first.Tables[0].Position, StringComparison.Ordinal);
        // 40 rows are exactly one chunk of 10 batches: one commit, no empty chunk after it.
        Assert.Equal(1, first.Tables[0].CheckpointVersion);

        _bulk.Source.Execute("UPDATE items SET name = 'bumped', seq = 401 WHERE id = 9");
        var second = await _bulk.RunCompletedAsync(config);
        Assert.Equal(1, second.Statistics.RecordsUpdated);
        Assert.Equal(0, second.Statistics.RecordsInserted);
        _bulk.AssertSynced("items", "id");
    }

    [Fact]
    public async Task A_row_whose_timestamp_cannot_be_read_stops_the_bulk_load_there_and_is_dead_lettered_by_the_pipeline()
    {
        CreateMixedSource(_bulk.Source, rows: 200);
        _bulk.Source.Execute("UPDATE items SET updated_at = 'next tuesday' WHERE id = 150");
        var config = _bulk.Configure(SyncYaml.Config("{name: items, cdc_method: timestamp}", batchSize: 10));

        var report = await _bulk.RunAsync(config);

        Assert.Equal("partial", report.Metadata.Status);
        Assert.Equal(BulkLoad, report.Tables[0].InitialLoad);
        Assert.Equal(1, report.Tables[0].RecordsDeadLettered);
        Assert.Equal(199, report.Statistics.RecordsInserted);
        Assert.Contains(report.Errors, e => e.Message.Contains("next tuesday", StringComparison.Ordinal));
        Assert.Equal(199, _bulk.Destination.Count("items"));
        // The first chunk (ids 1-100) was loaded by SQLite; the chunk holding id 150 on went through the pipeline.
        Assert.Equal(0, SyncWorkspace.Writes(await _bulk.RunAsync(config)));
    }

    [Fact]
    public async Task A_row_the_destination_table_refuses_sends_the_load_through_the_pipeline_which_dead_letters_it()
    {
        CreateMixedSource(_bulk.Source, rows: 40);
        _bulk.Source.Execute("UPDATE items SET name = NULL WHERE id = 17");
        _bulk.Destination.Execute(ItemsTable("name TEXT NOT NULL"));
        var config = _bulk.Configure(SyncYaml.Config("{name: items, cdc_method: timestamp}", batchSize: 100));

        var report = await _bulk.RunAsync(config);

        Assert.Equal("partial", report.Metadata.Status);
        Assert.Null(report.Tables[0].InitialLoad);
        Assert.Contains(report.Warnings, w => w.Contains("bulk load of 'items' was refused", StringComparison.Ordinal));
        Assert.Equal(1, report.Tables[0].RecordsDeadLettered);
        Assert.Equal(39, _bulk.Destination.Count("items"));
    }

    [Theory]
    [InlineData(" WITHOUT ROWID")]
    [InlineData("")]
    public async Task A_composite_key_is_cut_into_chunks_without_losing_or_doubling_a_row_at_the_boundaries(string rowid)
    {
        foreach (var workspace in new[] { _bulk, _pipeline })
        {
            // Ten lines per order: chunk boundaries (every 30 rows) fall inside orders, so rows sharing the first key
            // column sit on both sides of a boundary.
            workspace.Source.Execute($"CREATE TABLE lines (order_id INTEGER NOT NULL, line TEXT NOT NULL, qty INTEGER, updated_at TEXT, PRIMARY KEY (order_id, line)){rowid}");
            workspace.Source.Transaction(execute =>
            {
                for (var i = 0; i < 257; i++)
                {
                    execute($"INSERT INTO lines VALUES ({i / 10}, 'line {(i % 10 * 7) % 10}{(i % 3 == 0 ? "é" : "")}', {i}, '2026-02-01T00:00:{i % 60:D2}Z')", []);
                }
            });
        }

        _pipeline.Destination.Execute($"CREATE TABLE lines (order_id INTEGER NOT NULL, line TEXT NOT NULL, qty INTEGER, updated_at TEXT, PRIMARY KEY (order_id, line)){rowid}");
        _pipeline.Destination.Execute("INSERT INTO lines VALUES (-1, 'not from the source', 0, NULL)");
        var yaml = SyncYaml.Config("{name: lines, cdc_method: timestamp}", batchSize: 3);
        var clock = new ManualClock(NodaTime.Instant.FromUtc(2026, 12, 7, 9, 0));

        var bulk = await _bulk.RunCompletedAsync(_bulk.Configure(yaml), clock: clock);
        await _pipeline.RunCompletedAsync(_pipeline.Configure(yaml), clock: clock);

        Assert.Equal(BulkLoad, bulk.Tables[0].InitialLoad);
        Assert.Equal(257, bulk.Statistics.RecordsInserted);
        Assert.Equal(9, bulk.Tables[0].CheckpointVersion);
        _bulk.AssertSynced("lines", "order_id", "line");
        Assert.Equal(Ledger(_pipeline), Ledger(_bulk));
    }

    [Fact]
    public async Task A_configured_key_without_an_index_is_loaded_in_one_transaction_instead_of_one_sort_per_chunk()
    {
        _bulk.Source.Execute("CREATE TABLE codes (code TEXT NOT NULL, label TEXT, updated_at TEXT)");
        _bulk.Source.Transaction(execute =>
        {
            for (var i = 0; i < 300; i++)
            {
                execute($"INSERT INTO codes VALUES ('c{(i * 7919) % 1000:D4}', 'label {i}', '2026-01-01T00:00:00Z')", []);
            }
        });
        var config = _bulk.Configure(SyncYaml.Config("{name: codes, primary_key: [code], cdc_method: timestamp}", batchSize: 5));

        var report = await _bulk.RunCompletedAsync(config);

        Assert.Equal(BulkLoad, report.Tables[0].InitialLoad);
        Assert.Equal(1, report.Tables[0].CheckpointVersion);
        _bulk.AssertSynced("codes", "code");
        Assert.Equal(0, SyncWorkspace.Writes(await _bulk.RunCompletedAsync(config, fullRefresh: true)));
    }

    [Fact]
    public async Task A_row_refused_in_a_later_chunk_keeps_the_chunks_before_it_and_the_report_counts_every_row_once()
    {
        CreateMixedSource(_bulk.Source, rows: 60);
        _bulk.Source.Execute("UPDATE items SET name = NULL WHERE id = 45");
        _bulk.Destination.Execute(ItemsTable("name TEXT NOT NULL"));
        // Chunks of 20 rows: ids 1-20 and 21-40 are copied by SQLite, the chunk holding id 45 is refused.
        var config = _bulk.Configure(SyncYaml.Config("{name: items, cdc_method: timestamp}", batchSize: 2));

        var report = await _bulk.RunAsync(config);

        Assert.Equal("partial", report.Metadata.Status);
        Assert.Equal(BulkLoad, report.Tables[0].InitialLoad);
        Assert.Contains(report.Warnings, w => w.Contains("the rest of the table was loaded through the pipeline", StringComparison.Ordinal));
        Assert.Equal(59, report.Statistics.RecordsInserted);
        Assert.Equal(1, report.Tables[0].RecordsDeadLettered);
        Assert.Equal(59, _bulk.Destination.Count("items"));
        Assert.Equal(0, SyncWorkspace.Writes(await _bulk.RunAsync(config, fullRefresh: true)));
    }

    [Fact]
    public async Task A_configured_key_that_holds_NULL_is_copied_whole_so_no_row_is_left_out()
    {
        // An INTEGER column named as primary_key is not the rowid: it may be NULL, and NULL compares to no chunk bound.
        _bulk.Source.Execute("CREATE TABLE refs (ext_id INTEGER, label TEXT, updated_at TEXT)");
        _bulk.Source.Execute("CREATE INDEX refs_ext_id ON refs (ext_id)");
        _bulk.Source.Transaction(execute =>
        {
            for (var i = 0; i < 200; i++)
            {
                execute($"INSERT INTO refs VALUES ({(i == 150 ? "NULL" : i.ToString(System.Globalization.CultureInfo.InvariantCulture))}, 'ref {i}', '2026-01-01T00:00:00Z')", []);
            }
        });
        var config = _bulk.Configure(SyncYaml.Config("{name: refs, primary_key: [ext_id], cdc_method: timestamp}", batchSize: 2));

        var report = await _bulk.RunCompletedAsync(config);

        Assert.Equal(BulkLoad, report.Tables[0].InitialLoad);
        Assert.Equal(1, report.Tables[0].CheckpointVersion);
        Assert.Equal(200, report.Statistics.RecordsInserted);
        Assert.Equal(200, _bulk.Destination.Count("refs"));
    }

    public void Dispose()
    {
        _bulk.Dispose();
        _pipeline.Dispose();
    }

    /// <summary>
    /// Rows with every storage class and the cursor shapes the capture reads: ISO text with Z, an offset or none (read in
    /// the configured zone, DST included), fractions to the nanosecond, epoch seconds and milliseconds, NULL updated_at
    /// with and without a created_at.
    /// </summary>
    private static void CreateMixedSource(SqliteTestDb source, int rows)
    {
        source.Execute(ItemsTable("name TEXT"));
        string[] names = ["plain", "naïve café", "emoji 🚀 and 𝄞", "", "e\u0301 combining", "tab\tand\nnewline", "quote ' and \""];
        string[] stamps =
        [
            "'2026-03-29T01:30:00Z'",
            "'2026-03-29 02:30:00'",              // zone-less, inside Berlin's spring-forward gap
            "'2026-10-25 02:30:00.123456'",       // zone-less, inside Berlin's autumn overlap
            "'2026-05-01T12:00:00.123456789+02:00'",
            "1767225600",                          // epoch seconds
            "1767225600123",                       // epoch milliseconds
            "'2026-01-01T00:00:00.5Z'",
        ];
        source.Transaction(execute =>
        {
            for (var id = 1; id <= rows; id++)
            {
                var stamp = id % 23 == 0 ? "NULL" : stamps[id % stamps.Length];
                var created = id % 46 == 0 ? "NULL" : "'2025-12-31T23:59:59Z'";
                var price = id % 5 == 0 ? "NULL" : (id * 1.25).ToString(System.Globalization.CultureInfo.InvariantCulture);
                execute(
                    $"INSERT INTO items VALUES ({id}, $name, {price}, {id * 3}, $data, {id * 10}, {stamp}, {created})",
                    [("$name", names[id % names.Length] + " " + id), ("$data", id % 4 == 0 ? null : new byte[] { (byte)id, 0, 255 })]);
            }
        });
    }

    /// <summary>The mixed source's table, with <paramref name="name"/> as the name column's definition (a destination may add NOT NULL).</summary>
    private static string ItemsTable(string name) =>
        $"CREATE TABLE items (id INTEGER PRIMARY KEY, {name}, price REAL, quantity INTEGER, data BLOB, seq INTEGER, updated_at, created_at TEXT)";

    private static List<string> Ledger(SyncWorkspace workspace)
    {
        using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={workspace.Destination.Path};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT hex(key), position, commit_us, row_hash, deleted FROM _deltasync_ledger ORDER BY key";
        using var reader = command.ExecuteReader();
        var entries = new List<string>();
        while (reader.Read())
        {
            entries.Add(string.Join('|', Enumerable.Range(0, reader.FieldCount).Select(i => reader.IsDBNull(i) ? "NULL" : Convert.ToString(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture))));
        }

        return entries;
    }
}
