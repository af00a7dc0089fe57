using Npgsql;

namespace DeltaSync.Benchmarks.Postgres;

/// <summary>
/// The row count and the sum of a 64-bit hash (the first half of an MD5) of each row's text form, computed on the
/// server. The text form is PostgreSQL's own output of every typed value (numeric scale, timestamp microseconds, the
/// shortest exact double), so two tables of the same column types with equal checksums hold the same rows.
/// </summary>
public readonly record struct PgTableChecksum(long Rows, string Hash)
{
    private const string Sql =
        $"SELECT count(*), coalesce(sum(('x' || left(md5(ROW({PgItemsTable.Columns})::text), 16))::bit(64)::bigint), 0)::text FROM {PgItemsTable.Table}";

    public static async Task<PgTableChecksum> ComputeAsync(BenchmarkDatabase database, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(database);
        await using var connection = await database.OpenAsync(cancellationToken).ConfigureAwait(false);
        // Both sides are read with the same session time zone, so timestamptz text is comparable.
        await using (var zone = new NpgsqlCommand("SET TimeZone = 'UTC'", connection))
        {
            await zone.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        await using var command = new NpgsqlCommand(Sql, connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        return new PgTableChecksum(reader.GetInt64(0), reader.GetString(1));
    }

    /// <summary>The verdict for a copy of <paramref name="source"/>.</summary>
    public static string Compare(PgTableChecksum source, PgTableChecksum copy) =>
        source == copy ? "ok: tables equal" : $"FAIL: source {source} ≠ copy {copy}";

    public override string ToString() => $"{Rows:N0} rows, hash sum {Hash}";
}
