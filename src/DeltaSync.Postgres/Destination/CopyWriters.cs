using Npgsql;
using NpgsqlTypes;

namespace DeltaSync.Postgres.Destination;

/// <summary>
/// Writes one value of a COPY column with its exact CLR type and <see cref="NpgsqlDbType"/>, chosen once per column: the
/// importer then reuses its converter instead of resolving a type for every value (the cost of writing as object).
/// Values are those <see cref="PostgresValues.ToColumn"/> produced for the column.
/// </summary>
internal static class CopyWriters
{
    public static Action<NpgsqlBinaryImporter, object> For(string stageType) => stageType switch
    {
        "int2" => (i, v) => i.Write((short)v, NpgsqlDbType.Smallint),
        "int4" => (i, v) => i.Write((int)v, NpgsqlDbType.Integer),
        "int8" => (i, v) => i.Write((long)v, NpgsqlDbType.Bigint),
        "float4" => (i, v) => i.Write((float)v, NpgsqlDbType.Real),
        "float8" => (i, v) => i.Write((double)v, NpgsqlDbType.Double),
        "numeric" => WriteNumeric,
        "bool" => (i, v) => i.Write((bool)v, NpgsqlDbType.Boolean),
        "text" => (i, v) => i.Write((string)v, NpgsqlDbType.Text),
        "bytea" => (i, v) => i.Write((byte[])v, NpgsqlDbType.Bytea),
        "timestamptz" => (i, v) => i.Write(TimestampMicros(v), NpgsqlDbType.TimestampTz),
        "timestamp" => (i, v) => i.Write(TimestampMicros(v), NpgsqlDbType.Timestamp),
        "date" => (i, v) => i.Write(DateDays(v), NpgsqlDbType.Date),
        "time" => WriteTime,
        "uuid" => (i, v) => i.Write((Guid)v, NpgsqlDbType.Uuid),
        "json" => (i, v) => i.Write((string)v, NpgsqlDbType.Json),
        "jsonb" => (i, v) => i.Write((string)v, NpgsqlDbType.Jsonb),
        _ => (i, v) => i.Write(v, stageType),
    };

    /// <summary>
    /// A date in its wire form (days since 2000-01-01), so that <see cref="DateOnly.MaxValue"/> stays 9999-12-31 (Npgsql
    /// writes it as <c>infinity</c>) and an infinity's text (<see cref="PgDateTimes"/>) becomes the infinity.
    /// </summary>
    private static int DateDays(object value) => value switch
    {
        DateOnly date => PgDateTimes.Days(date),
        _ when PgDateTimes.IsInfinity(value, out var positive) => positive ? int.MaxValue : int.MinValue,
        _ => throw new InvalidCastException($"'{value}' is not a date"),
    };

    /// <summary>A time; the end of a day (<see cref="PgDateTimes.EndOfDay"/>'s text) as 24:00:00.</summary>
    private static void WriteTime(NpgsqlBinaryImporter importer, object value)
    {
        if (value is TimeOnly time)
        {
            importer.Write(time, NpgsqlDbType.Time);
        }
        else
        {
            importer.Write(PgDateTimes.IsEndOfDay(value) ? TimeSpan.FromDays(1) : (TimeSpan)value, NpgsqlDbType.Time);
        }
    }

    /// <summary>A timestamp in its wire form (microseconds since 2000-01-01); see <see cref="DateDays"/>.</summary>
    private static long TimestampMicros(object value) => value switch
    {
        DateTime time => PgDateTimes.Micros(time),
        _ when PgDateTimes.IsInfinity(value, out var positive) => positive ? long.MaxValue : long.MinValue,
        _ => throw new InvalidCastException($"'{value}' is not a timestamp"),
    };

    /// <summary>
    /// A decimal as Npgsql writes it; a number decimal cannot hold (NaN, Infinity, 29+ digits: text from
    /// <see cref="PostgresValues.ToColumn"/>) in <c>numeric_send</c>'s own binary form, which the server's
    /// <c>numeric_recv</c> reads as it reads any binary COPY field (COPY's binary format carries no type per field).
    /// </summary>
    private static void WriteNumeric(NpgsqlBinaryImporter importer, object value)
    {
        if (value is decimal number)
        {
            importer.Write(number, NpgsqlDbType.Numeric);
        }
        else
        {
            importer.Write(PgNumeric.Encode((string)value), NpgsqlDbType.Bytea);
        }
    }
}
