using Npgsql;

namespace DeltaSync.Postgres.Tests.Engine;

/// <summary>
/// DESIGN.md invariant 4 on PostgreSQL: a transaction that stays open across syncs and commits later with an old
/// <c>updated_at</c> (its <c>now()</c>) or a low sequence value is still synced, whatever the tolerance window.
/// </summary>
public sealed class CommitAwareCursorTests
{
    private const string Items = """
        CREATE TABLE items (
          id bigint PRIMARY KEY,
          label text NOT NULL,
          seq bigserial,
          updated_at timestamptz NOT NULL DEFAULT now());
        INSERT INTO items (id, label) SELECT g, 'item ' || g FROM generate_series(1, 20) g;
        """;

    [Theory]
    [InlineData("{name: items, cdc_method: timestamp}")]
    [InlineData("{name: items, cdc_method: version, sequence_field: seq}")]
    public async Task A_transaction_held_open_across_syncs_is_synced_after_it_commits(string table)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Items);
        var config = w.Config(table, blocks: """
            cdc:
              timestamp:
                tolerance_window: "1 second"
                safety_margin: "0s"
            """);
        await w.RunCompletedAsync(config);

        // The slow writer: its row gets updated_at = now() (its start) and a sequence value now, commits much later.
        await using var slow = await w.Source.OpenAsync();
        await using var transaction = await slow.BeginTransactionAsync();
        await using (var insert = new NpgsqlCommand("INSERT INTO items (id, label) VALUES (1000, 'slow writer')", slow, transaction))
        {
            await insert.ExecuteNonQueryAsync();
        }

        // Meanwhile other writers commit newer rows, and syncs run past the tolerance window.
        for (var round = 0; round < 3; round++)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(800));
            await w.Source.ExecuteAsync($"INSERT INTO items (id, label) VALUES ({100 + round}, 'fast writer')");
            await w.RunCompletedAsync(config);
        }

        Assert.Equal(0L, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM items WHERE id = 1000"));
        await transaction.CommitAsync();

        var report = await w.RunCompletedAsync(config);

        Assert.Equal(1, report.Statistics.RecordsInserted);
        await w.AssertSameAsync("SELECT id, label, seq, updated_at FROM items ORDER BY id");
    }

    [Fact]
    public async Task Without_open_transactions_the_timestamp_cursor_moves_to_the_server_clock()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Items);
        var config = w.Config("{name: items, cdc_method: timestamp}", blocks: """
            cdc:
              timestamp:
                tolerance_window: "0s"
                safety_margin: "0s"
            """);

        await w.RunCompletedAsync(config);
        await w.Source.ExecuteAsync("UPDATE items SET label = 'changed', updated_at = now() WHERE id = 3");
        var report = await w.RunCompletedAsync(config);
        var again = await w.RunCompletedAsync(config);

        Assert.Equal(1, report.Statistics.RecordsUpdated);
        Assert.Equal(0, again.Statistics.RecordsProcessed);
        await w.AssertSameAsync("SELECT id, label, seq, updated_at FROM items ORDER BY id");
    }
}
