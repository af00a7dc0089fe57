using Npgsql;

namespace DeltaSync.Postgres.Tests.Engine;

/// <summary>
/// DESIGN.md invariant 4 on PostgreSQL: a transaction that stays open across syncs and commits later with an old
/// <c>updated_at</c> (its <c>now()</c>) or a low sequence value is still synced, whatever the tolerance window.
/// </summary>
public sealed class CommitAwareCursorTests
{
    /// <summary>A tolerance window far shorter than the slow writer's transaction: only commit-awareness can save its row.</summary>
    private const string TightWindow = """
        cdc:
          timestamp:
            tolerance_window: "1 second"
            safety_margin: "0s"
        """;

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
        var config = w.Config(table, blocks: TightWindow);
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

    /// <summary>
    /// A sync user without <c>pg_read_all_stats</c> cannot see when other roles' transactions started, so the cursor cannot
    /// wait for them: the report says so. (PostgreSQL hides such a session's backend_type too, so the count of hidden
    /// sessions, which asked for client backends, was always 0 and the warning never came while the row was lost.)
    /// </summary>
    [Theory]
    [InlineData("{name: items, cdc_method: timestamp}")]
    [InlineData("{name: items, cdc_method: version, sequence_field: seq}")]
    public async Task A_sync_user_that_cannot_see_other_roles_transactions_is_warned(string table)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Items);
        var role = "reader_" + w.Source.Name;
        await w.Source.ExecuteAsync($"CREATE ROLE {role} LOGIN PASSWORD 'reader-pw'; GRANT SELECT ON items TO {role}");
        try
        {
            var source = new UriBuilder(w.Source.Uri) { UserName = role, Password = "reader-pw" }.Uri.ToString();
            var config = w.Config(table, source: source, blocks: TightWindow);
            await w.RunCompletedAsync(config);

            await using var slow = await w.Source.OpenAsync();
            await using var transaction = await slow.BeginTransactionAsync();
            await using (var insert = new NpgsqlCommand("INSERT INTO items (id, label) VALUES (1000, 'slow writer')", slow, transaction))
            {
                await insert.ExecuteNonQueryAsync();
            }

            var report = await w.RunCompletedAsync(config);
            await transaction.RollbackAsync();

            Assert.Contains(report.Warnings, x => x.Contains($"hidden from '{role}'", StringComparison.Ordinal) && x.Contains($"GRANT pg_read_all_stats TO {role}", StringComparison.Ordinal));
        }
        finally
        {
            await w.Source.ExecuteAsync($"DROP OWNED BY {role}; DROP ROLE {role}");
        }
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
