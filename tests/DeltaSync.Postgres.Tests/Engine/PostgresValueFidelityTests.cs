namespace DeltaSync.Postgres.Tests.Engine;

/// <summary>
/// Values arrive at a PostgreSQL destination as the source holds them, whichever capture read them: arrays with NULL
/// elements, numerics beyond <see cref="decimal"/>, and types Npgsql does not map, from the table and from the log.
/// </summary>
public sealed class PostgresValueFidelityTests
{
    private const string Wal = "cdc: {changelog: {type: postgres_wal}}";

    [Fact]
    public async Task Log_rows_with_a_null_array_element_sync()
    {
        await using var w = await PgSyncWorkspace.CreateAsync();
        await w.Source.ExecuteAsync("CREATE TABLE arr (id int PRIMARY KEY, nums int[], note text); INSERT INTO arr VALUES (1, ARRAY[1, NULL, 3], 'a');");
        var config = w.Config("{name: arr, cdc_method: changelog}", blocks: Wal);
        await w.RunCompletedAsync(config);
        await w.Source.ExecuteAsync("UPDATE arr SET note = 'b' WHERE id = 1; INSERT INTO arr VALUES (2, ARRAY[NULL]::int[], 'c')");
        await w.RunCompletedAsync(config);
        await w.AssertSameAsync("SELECT id, nums::text, note FROM arr ORDER BY id");
    }
}
