namespace DeltaSync.Sqlite.Tests.Engine;

/// <summary>Version numbers that reset: a per-row version that goes down, and a table sequence that restarts.</summary>
public sealed class VersionResetSyncTests : IDisposable
{
    private readonly SyncWorkspace _workspace = new();

    public VersionResetSyncTests()
    {
        _workspace.Source.Execute("CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT NOT NULL, version INTEGER NOT NULL, seq INTEGER NOT NULL)");
        for (var id = 1; id <= 5; id++)
        {
            _workspace.Source.Execute("INSERT INTO docs VALUES ($id, $body, 7, $seq)", ("$id", id), ("$body", "v7 of " + id), ("$seq", 100 + id));
        }
    }

    [Fact]
    public async Task A_per_row_version_that_goes_down_with_new_content_is_a_reset_applied_by_content()
    {
        var config = _workspace.Configure(SyncYaml.Config("{name: docs, cdc_method: version, version_field: version}"));
        await _workspace.RunCompletedAsync(config);

        // The document store was restored and renumbered: versions restart at 1; two documents also changed.
        _workspace.Source.Execute("UPDATE docs SET version = 1; UPDATE docs SET body = 'rewritten ' || id WHERE id IN (2, 4)");
        var report = await _workspace.RunCompletedAsync(config);

        // Nothing is skipped for its lower version: every row is compared by content (the version column changed too).
        Assert.Equal(5, report.Statistics.RecordsUpdated);
        Assert.Equal(5, report.Tables.Single().VersionResets);
        Assert.Contains(report.Warnings, w => w.Contains("lower version than the one applied (the version was reset)", StringComparison.Ordinal));
        _workspace.AssertSynced("docs", "id");

        // The ledger follows the new numbering: the next pass sees nothing to do and no reset.
        var idle = await _workspace.RunCompletedAsync(config);
        Assert.Equal(0, SyncWorkspace.Writes(idle));
        Assert.Equal(0, idle.Tables.Single().VersionResets);
    }

    [Fact]
    public async Task A_restarted_sequence_is_detected_and_the_rows_below_the_cursor_are_synced()
    {
        var config = _workspace.Configure(SyncYaml.Config("{name: docs, cdc_method: version, sequence_field: seq}"));
        await _workspace.RunCompletedAsync(config);

        // The table is rebuilt and its sequence restarts at 1: every new value is below the cursor (105).
        _workspace.Source.Execute("DELETE FROM docs; INSERT INTO docs VALUES (1, 'v7 of 1', 7, 1), (2, 'changed after the reset', 8, 2), (6, 'new after the reset', 1, 3)");
        var report = await _workspace.RunCompletedAsync(config);

        Assert.Contains(report.Warnings, w => w.Contains("went back (highest now 3, cursor at 105)", StringComparison.Ordinal));
        Assert.Equal(1, report.Statistics.RecordsInserted);
        Assert.Equal(2, report.Statistics.RecordsUpdated);
        Assert.Equal("changed after the reset", _workspace.Destination.Scalar("SELECT body FROM docs WHERE id = 2"));
        Assert.Equal("new after the reset", _workspace.Destination.Scalar("SELECT body FROM docs WHERE id = 6"));

        // From the new cursor on, later rows flow as usual.
        _workspace.Source.Execute("INSERT INTO docs VALUES (7, 'later', 1, 4)");
        var next = await _workspace.RunCompletedAsync(config);
        Assert.Equal(1, next.Statistics.RecordsInserted);
        Assert.DoesNotContain(next.Warnings, w => w.Contains("went back", StringComparison.Ordinal));
    }

    public void Dispose() => _workspace.Dispose();
}
