namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>Several tables in one run, more than the parallelism allows, sharing one source and one destination.</summary>
public sealed class ParallelTablesSyncTests : IDisposable
{
    private static readonly string[] Tables = ["t_low", "t_critical", "t_normal", "t_high"];

    private readonly SyncWorkspace _workspace = new();

    [Fact]
    public async Task Four_tables_with_two_slots_and_mixed_methods_and_priorities_are_all_synced()
    {
        foreach (var table in Tables)
        {
            _workspace.Source.Execute($"CREATE TABLE {table} (id INTEGER PRIMARY KEY, v TEXT, n, seq INTEGER NOT NULL, updated_at TEXT)");
            Insert(table, 1, 40);
        }

        var config = _workspace.Configure(SyncYaml.Config(
            [
                "{name: t_low, cdc_method: trigger, priority: low}",
                "{name: t_critical, cdc_method: polling, priority: critical}",
                "{name: t_normal, cdc_method: timestamp}",
                "{name: t_high, cdc_method: version, sequence_field: seq, priority: high}",
            ],
            batchSize: 6,
            maxParallelTables: 2));

        var initial = await _workspace.RunCompletedAsync(config);

        Assert.Equal(160, initial.Statistics.RecordsInserted);
        Assert.Equal(Tables.Order(), initial.Tables.Select(t => t.Table).Order());
        Assert.All(initial.Tables, t => Assert.Equal("completed", t.Status));
        AssertAllSynced();

        foreach (var table in Tables)
        {
            Insert(table, 41, 45);
            _workspace.Source.Execute($"UPDATE {table} SET v = 'changed', n = 2.5, seq = (SELECT max(seq) + 1 FROM {table}), updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id IN (3, 30)");
        }

        _workspace.Source.Execute("DELETE FROM t_low WHERE id = 10; DELETE FROM t_critical WHERE id = 11");
        var changes = await _workspace.RunCompletedAsync(config);

        Assert.Equal(20, changes.Statistics.RecordsInserted);
        Assert.Equal(8, changes.Statistics.RecordsUpdated);
        Assert.Equal(2, changes.Statistics.RecordsDeleted);
        AssertAllSynced();
        Assert.Equal(0, SyncWorkspace.Writes(await _workspace.RunCompletedAsync(config)));
    }

    private void Insert(string table, int from, int to)
    {
        _workspace.Source.Transaction(execute =>
        {
            for (var id = from; id <= to; id++)
            {
                execute(
                    $"INSERT INTO {table} (id, v, n, seq, updated_at) VALUES ($id, $v, $n, (SELECT coalesce(max(seq), 0) + 1 FROM {table}), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                    [("$id", (long)id), ("$v", table + "-" + id), ("$n", id % 2 == 0 ? id : "text " + id)]);
            }
        });
    }

    private void AssertAllSynced()
    {
        foreach (var table in Tables)
        {
            _workspace.AssertSynced(table, "id");
        }
    }

    public void Dispose() => _workspace.Dispose();
}
