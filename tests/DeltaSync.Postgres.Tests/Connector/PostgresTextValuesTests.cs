using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using Npgsql;

namespace DeltaSync.Postgres.Tests.Connector;

/// <summary>
/// <see cref="PostgresTextValues"/> reads a natively mapped type's text into the value its binary form reads as, so a
/// row from a log streamed as text hashes as the snapshot's did.
/// </summary>
public sealed class PostgresTextValuesTests
{
    [Fact]
    public async Task Text_of_every_native_type_reads_as_its_binary_form_does()
    {
        await using var db = await PgDatabase.CreateAsync();
        await db.ExecuteAsync("""
            CREATE TABLE v (
              id bigint PRIMARY KEY, s smallint, i int, r real, d double precision, n numeric, b boolean, t text, c char(3),
              raw bytea, at timestamptz, local timestamp, day date, clock time, ref uuid, doc json, docb jsonb,
              ints int[], texts text[], days date[], stamps timestamptz[], nums numeric[], grid int[][], uuids uuid[], blobs bytea[]);
            INSERT INTO v VALUES
              (1, -32768, 2147483647, 3.4028235e38, 0.1, -123456789.125, true, 'x "y", z', 'ab', '\x00ff10',
               '2025-01-02 03:04:05.123456+05:30', '1999-12-31 23:59:59.999999', '2024-02-29', '23:59:59.999999',
               'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"k": [1, 2.50]}', '{"k": [1, 2.50]}', '{1,NULL,-3}',
               '{"a,b","",NULL,"NULL","q\"\\"}', '{2024-01-01,NULL}', '{2025-01-02 03:04:05+00,-infinity}', '{1.50,-2}',
               '{{1,2},{3,4}}', '{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}', '{"\\x00",NULL}'),
              (2, 0, 0, 'NaN', '-Infinity', 0.00, false, '', '', '\x', 'infinity', '-infinity', 'infinity', '00:00', NULL,
               'null', '[]', '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}'),
              (3, 1, 1, 1.17549435e-38, 5e-324, 1e-20, NULL, 'ü', NULL, NULL, '1901-12-13 20:45:52+00', '0001-01-01 00:00:00', '0001-01-01', '12:00:00.5', NULL,
               NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
            """);
        await using var data = PostgresConnectionFactory.CreateDataSource(db.ConnectionString, "text values test");
        await using var connection = await data.OpenConnectionAsync();
        await using (var settings = new NpgsqlCommand($"SET DateStyle = ISO; SET bytea_output = hex; SET extra_float_digits = 3; SET TimeZone = 'Asia/Kolkata'", connection))
        {
            await settings.ExecuteNonQueryAsync();
        }

        var table = (await PostgresCatalog.ReadAsync(connection, "v", CancellationToken.None))!;
        var columns = table.Columns.Where(c => !c.IsVirtual).ToList();
        // concat() prints with each type's output function, as pgoutput's text does (bool's ::text cast says 'true').
        await using var select = new NpgsqlCommand(
            $"SELECT {string.Join(", ", columns.Select(c => PostgresSql.Quote(c.Name)))}, {string.Join(", ", columns.Select(c => $"CASE WHEN {PostgresSql.Quote(c.Name)} IS NOT NULL THEN concat({PostgresSql.Quote(c.Name)}) END"))} FROM v ORDER BY 1",
            connection);
        await using var reader = await select.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            for (var i = 0; i < columns.Count; i++)
            {
                var binary = columns[i] is { BaseType: "numeric", IsArray: false } ? PgNumeric.FromText(reader.GetDecimal(i).ToString(System.Globalization.CultureInfo.InvariantCulture)) : PostgresValues.Read(reader, i, columns[i]);
                var text = reader.IsDBNull(columns.Count + i) ? null : PostgresTextValues.Parse(reader.GetString(columns.Count + i), columns[i]);
                var what = $"row {reader.GetInt64(0)} column {columns[i].Name}: binary {Describe(binary)}, text {Describe(text)}";
                Assert.True(RowHash.Compute([binary]) == RowHash.Compute([text]), what);
                Assert.True(Shape(binary) == Shape(text), what);
            }
        }
    }

    [Fact]
    public void Array_literals_split_into_their_elements()
    {
        Assert.Equal(["a,b", "", null, "NULL", "q\"\\", "x y"], PostgresTextValues.ArrayValue("""{"a,b","",NULL,"NULL","q\"\\","x y"}""", e => e));
        Assert.Equal([new object?[] { "1", "2" }, new object?[] { "3", null }], PostgresTextValues.ArrayValue("{{1,2},{3,NULL}}", e => e));
        Assert.Equal(["7"], PostgresTextValues.ArrayValue("[0:0]={7}", e => e));
        Assert.Empty(PostgresTextValues.ArrayValue("{}", e => e));
    }

    private static string Shape(object? value) => value switch
    {
        null => "null",
        Array a and not byte[] => $"[{string.Join(",", a.Cast<object?>().Select(Shape))}]",
        DateTime t => $"DateTime({t.Kind})",
        _ => value.GetType().Name,
    };

    private static string Describe(object? value) => $"{PortableValue.ToText(value)} ({Shape(value)})";
}
