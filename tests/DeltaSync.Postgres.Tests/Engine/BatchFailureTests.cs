using DeltaSync.Core.Connectors;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.State;
using DeltaSync.Postgres.Destination;
using NodaTime;

namespace DeltaSync.Postgres.Tests.Engine;

/// <summary>A PostgreSQL destination that refuses records, and batches sent twice.</summary>
public sealed class BatchFailureTests
{
    [Theory]
    [InlineData("timestamp")]
    [InlineData("changelog")]
    public async Task Rows_a_destination_constraint_refuses_go_to_the_dead_letter_queue_and_the_rest_commits(string method)
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE TABLE items (id bigint PRIMARY KEY, qty int NOT NULL, updated_at timestamptz NOT NULL DEFAULT now() - interval '1 minute');
            INSERT INTO items (id, qty) SELECT g, g % 7 FROM generate_series(1, 200) g;
            """);
        await w.Destination.ExecuteAsync("CREATE TABLE items (id bigint PRIMARY KEY, qty int NOT NULL CHECK (qty <> 3), updated_at timestamptz NOT NULL)");
        var config = w.Config($"{{name: items, cdc_method: {method}}}", batchSize: 50);

        var report = await w.RunAsync(config);

        var refused = Enumerable.Range(1, 200).Where(i => i % 7 == 3).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal("partial", report.Metadata.Status);
        Assert.Equal(refused.Order(StringComparer.Ordinal), report.Errors.Select(e => e.RecordId!).Order(StringComparer.Ordinal));
        Assert.All(report.Errors, e => Assert.Contains("23514", e.Message, StringComparison.Ordinal));
        await w.AssertSameAsync("SELECT id, qty, updated_at FROM items WHERE qty <> 3 ORDER BY id");
        Assert.Equal(200L - refused.Count, await w.Destination.ScalarAsync<long>("SELECT count(*) FROM items"));

        // Later changes flow; the refused rows are not queued again while unchanged.
        await w.Source.ExecuteAsync("UPDATE items SET qty = 100, updated_at = now() WHERE id IN (1, 2)");
        var next = await w.RunAsync(config);
        Assert.Empty(next.Errors);
        Assert.Equal(2, next.Statistics.RecordsUpdated);
    }

    [Fact]
    public async Task Re_sending_an_applied_batch_is_a_no_op()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await using var destination = new PostgresDestination(w.Destination.Uri);
        var schema = new TableSchema("items", [new ColumnSchema("id", "bigint", DataKind.Integer, false, 1), new ColumnSchema("label", "text", DataKind.Text, false, 0)], ["id"]) { Dialect = "postgresql" };
        await destination.PrepareTableAsync("items", schema, CancellationToken.None);
        var at = new Position("cursor", "x");
        var rows = new[] { new object?[] { 1L, "one" }, new object?[] { 2L, "two" } };
        var writes = rows.Select(r => new RowWrite(WriteKind.Insert, schema.KeyOf(r), r)).ToList();
        var ledger = rows.Select(r => new LedgerEntry(schema.KeyOf(r), at, null, RowHash.Compute(r), false)).ToList();
        var checkpoint = new Checkpoint("sync/items", "items", 1, at, "timestamp", null, null, "fp", CheckpointCounters.Zero, 0, "run", SystemClock.Instance.GetCurrentInstant());
        var unit = new ApplyUnit(schema, "items", new LedgerScope("items", "source"), writes, ledger, checkpoint)
        {
            IdempotencyKey = BatchIdentity.Key("source", "items", Position.None, at, writes, ledger),
        };

        Assert.Equal(new ApplyResult(2, 0, 0), await destination.ApplyAsync(unit, CancellationToken.None));
        await w.Destination.ExecuteAsync("UPDATE items SET label = 'by hand' WHERE id = 1");
        Assert.Equal(new ApplyResult(0, 0, 0, AlreadyApplied: true), await destination.ApplyAsync(unit, CancellationToken.None));
        Assert.Equal("by hand", await w.Destination.ScalarAsync<string>("SELECT label FROM items WHERE id = 1"));

        await destination.ResetStreamAsync("sync/items", new LedgerScope("items", "source"), CancellationToken.None);
        Assert.False((await destination.ApplyAsync(unit, CancellationToken.None)).AlreadyApplied);
        Assert.Equal("one", await w.Destination.ScalarAsync<string>("SELECT label FROM items WHERE id = 1"));
    }
}
