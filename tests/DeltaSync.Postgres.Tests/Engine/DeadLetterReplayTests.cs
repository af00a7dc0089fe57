using System.Text.Json;
using DeltaSync.Cli.Tests;
using DeltaSync.Core.Model;
using NodaTime;

namespace DeltaSync.Postgres.Tests.Engine;

/// <summary>
/// Dead-letter replay against real PostgreSQL: rows read back by key with the keys in their portable (JSON) form, and
/// records a destination constraint refused replayed once it is dropped, with the queue in a file state store.
/// </summary>
public sealed class DeadLetterReplayTests
{
    [Fact]
    public async Task ReadRowsAsync_casts_portable_keys_to_the_key_types_and_returns_missing_keys_in_source_values()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TABLE shipments (id uuid, day date, label text, payload bytea, PRIMARY KEY (id, day));
            INSERT INTO shipments VALUES
              ('7c9e6679-7425-40de-944b-e07fc1f90ae7', '2024-01-02', 'first', '\x00ff'),
              ('0b6c2a52-4d4f-4a7e-9a52-7d2a7c0b1d11', '2024-03-04', 'second', NULL);
            """);
        var config = w.Config("{name: shipments, cdc_method: polling}");
        await using var source = await new PostgresConnector(SystemClock.Instance).OpenSourceAsync(config.Sync.Source, config, CancellationToken.None);
        var schema = await source.DescribeTableAsync(config.Sync.Source.Tables[0], CancellationToken.None);

        var rows = await source.ReadRowsAsync(
            schema,
            [
                new RecordKey(["0b6c2a52-4d4f-4a7e-9a52-7d2a7c0b1d11", "2024-03-04"]),
                new RecordKey(["7c9e6679-7425-40de-944b-e07fc1f90ae7", "2024-01-03"]),
                new RecordKey(["7c9e6679-7425-40de-944b-e07fc1f90ae7", "2024-01-02"]),
            ],
            CancellationToken.None);

        Assert.Equal(3, rows.Count);
        Assert.Equal("second", rows[0].Values![schema.IndexOf("label")]);
        Assert.Equal(schema.KeyOf(rows[0].Values!), rows[0].Key);
        Assert.Null(rows[1].Values);
        Assert.Equal(new object?[] { Guid.Parse("7c9e6679-7425-40de-944b-e07fc1f90ae7"), new DateOnly(2024, 1, 3) }, rows[1].Key.Values);
        Assert.Equal(new byte[] { 0, 0xFF }, rows[2].Values![schema.IndexOf("payload")]);
        Assert.Equal(new object?[] { Guid.Parse("7c9e6679-7425-40de-944b-e07fc1f90ae7"), new DateOnly(2024, 1, 2) }, rows[2].Key.Values);
    }

    [Fact]
    public async Task Records_a_destination_check_refused_are_replayed_once_it_is_dropped_with_the_queue_in_a_file_store()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TABLE orders (id uuid PRIMARY KEY, n int NOT NULL, qty int, updated_at timestamptz NOT NULL);
            INSERT INTO orders SELECT md5(g::text)::uuid, g, g % 7, now() - interval '1 hour' + g * interval '1 ms' FROM generate_series(1, 30) AS g;
            """);
        await w.Destination.ExecuteAsync("CREATE TABLE orders (id uuid PRIMARY KEY, n int NOT NULL, qty int CONSTRAINT no_threes CHECK (qty <> 3), updated_at timestamptz NOT NULL)");
        var yaml = $$"""
            sync:
              source: {connection: "{{w.Source.Uri}}", tables: [{name: orders, cdc_method: timestamp}]}
              destination: {connection: "{{w.Destination.Uri}}"}
              batch_size: 8
            state:
              storage: {type: file, path: state}
            """;
        await File.WriteAllTextAsync(w.ConfigPath, yaml);
        var run = await w.RunAsync(w.Configure(yaml));
        Assert.Equal("partial", run.Metadata.Status);
        Assert.Equal(4, run.Statistics.RecordsDeadLettered);
        Assert.True(Directory.Exists(Path.Combine(w.Folder, "state")));

        var list = await CliProcess.RunAsync("dlq", "list", "--config", w.ConfigPath, "--json");
        Assert.True(list.ExitCode == 0, list.ToString());
        List<(string Id, long N)> entries;
        using (var json = JsonDocument.Parse(list.StandardOutput))
        {
            entries = json.RootElement.EnumerateArray().Select(e => (e.GetProperty("id").GetString()!, e.GetProperty("raw_record").GetProperty("n").GetInt64())).OrderBy(e => e.Item2).ToList();
            Assert.All(json.RootElement.EnumerateArray(), e => Assert.Contains("no_threes", e.GetProperty("reason").GetString(), StringComparison.Ordinal));
        }

        Assert.Equal([3L, 10, 17, 24], entries.Select(e => e.N));

        // Before the fix: every record is refused again, one more attempt each.
        var refused = await CliProcess.RunAsync("dlq", "replay", "--config", w.ConfigPath);
        Assert.True(refused.ExitCode == 3, refused.ToString());
        Assert.Contains($"orders: replayed {entries.Count}, applied 0, still failing {entries.Count}", refused.StandardOutput, StringComparison.Ordinal);

        // One record given up on: purged, it is never written.
        var purge = await CliProcess.RunAsync("dlq", "purge", "--config", w.ConfigPath, "--id", entries[0].Id);
        Assert.True(purge.ExitCode == 0, purge.ToString());
        Assert.Contains("removed 1 dead-letter entry", purge.StandardOutput, StringComparison.Ordinal);

        await w.Destination.ExecuteAsync("ALTER TABLE orders DROP CONSTRAINT no_threes");
        var replay = await CliProcess.RunAsync("dlq", "replay", "--config", w.ConfigPath, "--json");

        Assert.True(replay.ExitCode == 0, replay.ToString());
        using (var json = JsonDocument.Parse(replay.StandardOutput))
        {
            var table = Assert.Single(json.RootElement.GetProperty("tables").EnumerateArray());
            Assert.Equal(entries.Count - 1, table.GetProperty("applied").GetInt32());
            Assert.Equal(entries.Count - 1, table.GetProperty("inserted").GetInt64());
        }

        const string Dump = "SELECT id, n, qty, updated_at FROM orders WHERE n <> 3 ORDER BY n";
        await w.AssertSameAsync(Dump);
        Assert.Equal(0L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM orders WHERE n = 3"));
        var empty = await CliProcess.RunAsync("dlq", "list", "--config", w.ConfigPath, "--json");
        using (var json = JsonDocument.Parse(empty.StandardOutput))
        {
            Assert.Equal(0, json.RootElement.GetArrayLength());
        }
    }
}
