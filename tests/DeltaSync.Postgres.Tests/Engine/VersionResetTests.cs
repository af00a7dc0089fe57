namespace DeltaSync.Postgres.Tests.Engine;

/// <summary>A table sequence that restarts below the commit-aware cursor is detected and its rows synced.</summary>
public sealed class VersionResetTests
{
    [Fact]
    public async Task A_restarted_sequence_is_detected_and_the_rows_below_the_cursor_are_synced()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("""
            CREATE SEQUENCE docs_seq START 100;
            CREATE TABLE docs (id bigint PRIMARY KEY, body text NOT NULL, seq bigint NOT NULL DEFAULT nextval('docs_seq'));
            INSERT INTO docs (id, body) SELECT g, 'body ' || g FROM generate_series(1, 5) g;
            """);
        var config = w.Config("{name: docs, cdc_method: version, sequence_field: seq}");
        await w.RunCompletedAsync(config);
        await w.RunCompletedAsync(config);

        await w.Source.ExecuteAsync("""
            TRUNCATE docs; ALTER SEQUENCE docs_seq RESTART WITH 1;
            INSERT INTO docs (id, body) VALUES (1, 'body 1'), (2, 'changed after the reset'), (6, 'new after the reset');
            """);
        var report = await w.RunCompletedAsync(config);

        Assert.Contains(report.Warnings, x => x.Contains("went back", StringComparison.Ordinal));
        Assert.Equal("changed after the reset", await w.Destination.ScalarAsync<string>("SELECT body FROM docs WHERE id = 2"));
        Assert.Equal("new after the reset", await w.Destination.ScalarAsync<string>("SELECT body FROM docs WHERE id = 6"));

        await w.Source.ExecuteAsync("INSERT INTO docs (id, body) VALUES (7, 'later')");
        var next = await w.RunCompletedAsync(config);
        Assert.Equal(1, next.Statistics.RecordsInserted);
    }
}
