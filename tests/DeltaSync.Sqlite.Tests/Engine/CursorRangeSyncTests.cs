using NodaTime;

namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>
/// With an index on the cursor column, incremental passes read an index range of the raw column instead of the whole
/// table. The range must still contain every changed row, whatever shape the column stores.
/// </summary>
public sealed class CursorRangeSyncTests : IDisposable
{
    private readonly SyncWorkspace _workspace = new();

    public static TheoryData<string, string, string> Shapes => new()
    {
        // column type, an old value, a new value (what the update writes)
        { "TEXT", "'2026-01-01T00:00:00Z'", "strftime('%Y-%m-%dT%H:%M:%f', 'now', '-12 hours') || '-12:00'" }, // far west offset: the text's date lags the UTC date
        { "TEXT", "'2026-01-01 00:00:00'", "strftime('%Y-%m-%d %H:%M:%f', 'now')" },
        { "INTEGER", "1767225600", "unixepoch('now')" },                              // epoch seconds
        { "INTEGER", "1767225600000", "CAST(unixepoch('now', 'subsec') * 1000 AS INTEGER)" }, // epoch milliseconds
        { "TEXT", "'2026-01-01T00:00:00Z'", "CAST(unixepoch('now') AS TEXT)" },      // mixed shapes: epoch text among ISO text
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public async Task An_update_is_found_through_the_indexed_range_for_every_column_shape(string type, string oldValue, string newValue)
    {
        var source = _workspace.Source;
        source.Execute($"CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, updated_at {type})");
        source.Execute("CREATE INDEX items_updated_at ON items (updated_at)");
        for (var id = 1; id <= 50; id++)
        {
            source.Execute($"INSERT INTO items VALUES ({id}, 'item {id}', {oldValue})");
        }

        var config = _workspace.Configure(SyncYaml.Config("{name: items, cdc_method: timestamp}", batchSize: 8, blocks: "cdc: {timestamp: {safety_margin: 0s}}"));
        await _workspace.RunCompletedAsync(config);
        await _workspace.RunCompletedAsync(config);

        source.Execute($"UPDATE items SET name = 'changed', updated_at = {newValue} WHERE id IN (7, 42)");
        var report = await _workspace.RunCompletedAsync(config);

        Assert.Equal(2, report.Statistics.RecordsUpdated);
        _workspace.AssertSynced("items", "id");
        Assert.Equal(0, SyncWorkspace.Writes(await _workspace.RunCompletedAsync(config)));
    }

    public void Dispose() => _workspace.Dispose();
}
