namespace DeltaSync.Postgres.Tests.Engine;

/// <summary><c>cdc_method: hybrid</c>: a base capture plus reconciliation that repairs what the base cannot see.</summary>
public sealed class HybridCaptureTests
{
    private const string Items = """
        CREATE TABLE items (id bigint PRIMARY KEY, label text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
        INSERT INTO items (id, label, updated_at) SELECT g, 'item ' || g, now() - interval '1 day' FROM generate_series(1, 200) g;
        """;

    [Fact]
    public async Task A_timestamp_base_misses_hard_deletes_and_backdated_rows_reconciliation_repairs_them()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Items);
        var config = w.Config("{name: items, cdc_method: hybrid}", blocks: """
            cdc:
              hybrid:
                base: timestamp
                reconcile_interval: "0s"
            """);
        await w.RunCompletedAsync(config);

        // Invisible to a timestamp cursor: a hard delete, and an update that keeps an old updated_at.
        await w.Source.ExecuteAsync("DELETE FROM items WHERE id <= 5; UPDATE items SET label = 'backdated' WHERE id = 50");
        var report = await w.RunCompletedAsync(config);

        Assert.Equal(5, report.Statistics.RecordsDeleted);
        Assert.Equal(1, report.Statistics.RecordsUpdated);
        Assert.Contains(report.Warnings, x => x.Contains("reconciled", StringComparison.Ordinal));
        Assert.StartsWith("hybrid:", report.Tables.Single().Position, StringComparison.Ordinal);
        await w.AssertSameAsync("SELECT id, label, updated_at FROM items ORDER BY id");
    }

    [Fact]
    public async Task With_the_log_as_base_reconciliation_waits_for_its_interval()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync(Items);
        var config = w.Config("{name: items, cdc_method: hybrid}", blocks: """
            cdc:
              hybrid:
                reconcile_interval: "1 hour"
            """);
        var first = await w.RunCompletedAsync(config);
        await w.Source.ExecuteAsync("DELETE FROM items WHERE id = 7; UPDATE items SET label = 'logged' WHERE id = 8");
        var second = await w.RunCompletedAsync(config);

        Assert.Contains(first.Warnings, x => x.Contains("reconciled", StringComparison.Ordinal));
        Assert.DoesNotContain(second.Warnings, x => x.Contains("reconciled", StringComparison.Ordinal));
        Assert.Equal((1L, 1L), (second.Statistics.RecordsDeleted, second.Statistics.RecordsUpdated));
        Assert.Contains("|wal:", second.Tables.Single().Position, StringComparison.Ordinal);
        await w.AssertSameAsync("SELECT id, label, updated_at FROM items ORDER BY id");
    }
}
