using DeltaSync.Postgres.Destination;
using Npgsql;

namespace DeltaSync.Postgres.Tests.Connector;

/// <summary>
/// What a bulk load counts while it relays the source's binary COPY stream must equal what the aggregate over the
/// copied table (the ledger rule's own SQL) gives: rows, newest commit time, rows without a cursor value, future rows,
/// created_at fallbacks — with NULLs, ±infinity, dates and every way a chunk can split the stream.
/// </summary>
public sealed class BinaryCopyTallyTests
{
    private const string Table = """
        CREATE TABLE t (id bigint PRIMARY KEY, note text, ts timestamptz, created timestamptz, local_ts timestamp, d date, seq bigint, blob bytea, seq2 smallint);
        INSERT INTO t
        SELECT g,
               CASE WHEN g % 5 = 0 THEN NULL ELSE repeat('x', g % 70) END,
               CASE WHEN g % 7 = 0 THEN NULL WHEN g = 11 THEN 'infinity' WHEN g = 12 THEN '-infinity'
                    WHEN g % 13 = 0 THEN '2099-01-01'::timestamptz + g * interval '1 second'
                    ELSE '2024-01-01'::timestamptz + g * interval '1 minute 3.000001 seconds' END,
               CASE WHEN g % 3 = 0 THEN NULL ELSE '2023-06-01'::timestamptz + g * interval '1 hour' END,
               CASE WHEN g % 6 = 0 THEN NULL WHEN g = 17 THEN 'infinity' ELSE '1999-12-31 23:59:59.999999'::timestamp + g * interval '1 day' END,
               CASE WHEN g % 4 = 0 THEN NULL WHEN g = 19 THEN '-infinity' WHEN g = 23 THEN '2200-01-01' ELSE date '1960-02-29' + g * 40 END,
               CASE WHEN g % 8 = 0 THEN NULL ELSE g * 3 END,
               CASE WHEN g % 9 = 0 THEN NULL ELSE decode(repeat(md5(g::text), g % 200), 'hex') END,
               CASE WHEN g % 11 = 0 THEN NULL ELSE (g % 30000)::smallint END
        FROM generate_series(1, 700) g;
        """;

    private static readonly Dictionary<string, string> Types = new()
    {
        ["id"] = "int8", ["note"] = "text", ["ts"] = "timestamptz", ["created"] = "timestamptz", ["local_ts"] = "timestamp",
        ["d"] = "date", ["seq"] = "int8", ["blob"] = "bytea", ["seq2"] = "int2",
    };

    public static TheoryData<string> Cursors => new() { "ts", "ts+created", "local_ts", "d", "seq", "seq2", "none" };

    [Theory]
    [MemberData(nameof(Cursors))]
    public async Task The_stream_tally_equals_the_aggregate_over_the_copied_rows(string cursor)
    {
        await using var db = await PgDatabase.CreateAsync();
        await db.ExecuteAsync(Table);
        var rows = new BulkLedgerRows
        {
            Schema = "public",
            Table = "t",
            Columns = [.. Types.Keys],
            Keys = [new BulkLedgerRows.KeyColumn("id", true)],
            Sequence = cursor is "seq" or "seq2" ? cursor : null,
            Timestamp = cursor switch
            {
                "ts" => new BulkLedgerRows.TimestampCursor("ts", null, false),
                "ts+created" => new BulkLedgerRows.TimestampCursor("ts", "created", false),
                "local_ts" => new BulkLedgerRows.TimestampCursor("local_ts", null, false),
                "d" => new BulkLedgerRows.TimestampCursor("d", null, true),
                _ => null,
            },
        };
        // The future limit falls among the rows, so both sides of it are counted.
        var future = await db.ScalarAsync<long>($"SELECT (percentile_disc(0.8) WITHIN GROUP (ORDER BY c))::bigint FROM (SELECT {rows.CommitSql("t")} AS c FROM t) x") is var f && f != 0 ? f : long.MaxValue;
        var stream = await CopyOutAsync(db, $"COPY (SELECT {string.Join(", ", Types.Keys)} FROM t) TO STDOUT (FORMAT binary)");
        var expected = await AggregateAsync(db, rows, future);

        var random = new Random(cursor.Length * 7919);
        foreach (var chunking in new Func<int>[] { () => stream.Length, () => 1, () => random.Next(1, 40), () => random.Next(1, 5000) })
        {
            var tally = BinaryCopyTally.For(rows, name => Types[name], future)!;
            for (var at = 0; at < stream.Length;)
            {
                var size = Math.Min(chunking(), stream.Length - at);
                tally.Feed(stream.AsSpan(at, size));
                at += size;
            }

            Assert.True(tally.Complete);
            Assert.Equal(expected, (tally.Rows, tally.Newest, tally.NullCursor, tally.FutureRows, tally.NewestFuture, tally.CreatedAtFallback));
        }
    }

    [Fact]
    public async Task A_stream_cut_short_is_not_complete_and_garbage_is_refused()
    {
        await using var db = await PgDatabase.CreateAsync();
        await db.ExecuteAsync(Table);
        var stream = await CopyOutAsync(db, "COPY (SELECT id FROM t) TO STDOUT (FORMAT binary)");
        var rows = new BulkLedgerRows { Schema = "public", Table = "t", Columns = ["id"], Keys = [new BulkLedgerRows.KeyColumn("id", true)] };

        var cut = BinaryCopyTally.For(rows, name => Types[name], long.MaxValue)!;
        cut.Feed(stream.AsSpan(0, stream.Length - 2));
        Assert.False(cut.Complete);

        var garbage = BinaryCopyTally.For(rows, name => Types[name], long.MaxValue)!;
        Assert.Throws<InvalidDataException>(() => garbage.Feed("id,name\n1,x\n2,y\n3,z\n"u8));
    }

    [Fact]
    public void A_created_at_of_another_type_than_the_cursor_is_left_to_the_aggregate()
    {
        var rows = new BulkLedgerRows
        {
            Schema = "public", Table = "t", Columns = ["id", "ts", "d"], Keys = [new BulkLedgerRows.KeyColumn("id", true)],
            Timestamp = new BulkLedgerRows.TimestampCursor("ts", "d", false),
        };
        Assert.Null(BinaryCopyTally.For(rows, name => Types[name], long.MaxValue));
    }

    private static async Task<byte[]> CopyOutAsync(PgDatabase db, string sql)
    {
        await using var connection = await db.OpenAsync();
        await using var reader = await connection.BeginRawBinaryCopyAsync(sql);
        using var buffer = new MemoryStream();
        await reader.CopyToAsync(buffer);
        return buffer.ToArray();
    }

    private static async Task<(long, long?, long, long, long?, long)> AggregateAsync(PgDatabase db, BulkLedgerRows rows, long future)
    {
        await using var connection = await db.OpenAsync();
        await using var command = new NpgsqlCommand(
            $"""
            SELECT count(*), max(commit_us), count(*) FILTER (WHERE {rows.NullCursorSql}),
                   count(*) FILTER (WHERE commit_us > $1), max(commit_us) FILTER (WHERE commit_us > $1)
            FROM (SELECT {rows.PositionSql("t")} AS position, {rows.CommitSql("t")} AS commit_us FROM t) entries
            """,
            connection);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = future });
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        var fallback = 0L;
        var result = (reader.GetInt64(0), reader.IsDBNull(1) ? (long?)null : reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.IsDBNull(4) ? (long?)null : reader.GetInt64(4));
        await reader.DisposeAsync();
        if (rows.CreatedAtFallbackSql is { } sql)
        {
            await using var count = new NpgsqlCommand(sql, connection);
            fallback = (long)(await count.ExecuteScalarAsync())!;
        }

        return (result.Item1, result.Item2, result.Item3, result.Item4, result.Item5, fallback);
    }
}
