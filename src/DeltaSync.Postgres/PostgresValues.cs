using System.Globalization;
using System.Text.Json;
using DeltaSync.Core.Model;
using DeltaSync.Core.Time;
using Npgsql;
using NodaTime;

namespace DeltaSync.Postgres;

/// <summary>
/// Values between PostgreSQL and the engine. Read: integers of every width become <c>long</c>, <c>real</c> becomes
/// <c>double</c>, <c>date</c> a <see cref="DateOnly"/>, timestamps <see cref="DateTime"/>s (UTC for <c>timestamptz</c>),
/// their infinities the texts <c>infinity</c> and <c>-infinity</c> (<see cref="PgDateTimes"/>),
/// everything Npgsql does not map natively arrives as its text. Write: whatever a source produced is converted to the
/// CLR type the destination column's type takes, so SQLite's integers, reals and ISO text land in typed columns.
/// </summary>
internal static class PostgresValues
{
    public static object? Read(NpgsqlDataReader reader, int ordinal, PgColumn column)
    {
        if (reader.IsDBNull(ordinal))
        {
            return null;
        }

        if (!column.IsNative)
        {
            return reader.GetString(ordinal);
        }

        if (column.IsArray)
        {
            // time[] as TimeSpans, which hold 24:00:00 (Npgsql reads its elements as TimeOnly, which does not).
            if (column.BaseType == "time" && reader.GetDataTypeName(ordinal) is "time[]" or "time without time zone[]")
            {
                using var stream = reader.GetStream(ordinal);
                var binary = new byte[stream.Length];
                stream.ReadExactly(binary);
                return PgDateTimes.ReadTimeArray(binary);
            }

            return Normalize(reader.GetValue(ordinal));
        }

        return column.BaseType switch
        {
            "int2" => (long)reader.GetInt16(ordinal),
            "int4" => (long)reader.GetInt32(ordinal),
            "int8" => reader.GetInt64(ordinal),
            "float4" => (double)reader.GetFloat(ordinal),
            "float8" => reader.GetDouble(ordinal),
            // In their wire form: infinities apart from the finite extremes (PgDateTimes).
            "date" => PgDateTimes.ReadDate(reader.GetFieldValue<int>(ordinal)),
            "timestamp" => PgDateTimes.ReadTimestamp(reader.GetFieldValue<long>(ordinal), DateTimeKind.Unspecified),
            "timestamptz" => PgDateTimes.ReadTimestamp(reader.GetFieldValue<long>(ordinal), DateTimeKind.Utc),
            "time" => PgDateTimes.ReadTime(reader.GetFieldValue<TimeSpan>(ordinal)),
            "json" or "jsonb" or "text" or "varchar" or "bpchar" or "name" => reader.GetString(ordinal),
            // Selected as text (PostgresRowMapper.SelectList): NaN, infinities and values beyond decimal stay exact.
            "numeric" => reader.GetDataTypeName(ordinal) == "text" ? PgNumeric.FromText(reader.GetString(ordinal)) : reader.GetDecimal(ordinal),
            _ => Normalize(reader.GetValue(ordinal)),
        };
    }

    /// <summary>A value from the log (binary pgoutput), as <see cref="Read"/> would read it from the table.</summary>
    public static async ValueTask<object?> ReadAsync(Npgsql.Replication.PgOutput.ReplicationValue value, PgColumn column, CancellationToken cancellationToken)
    {
        if (value.IsDBNull)
        {
            return null;
        }

        if (value.Kind == Npgsql.Replication.PgOutput.TupleDataKind.TextValue)
        {
            // The log of a table with a column Npgsql does not map is streamed as text: that column's text is what
            // the table's ::text gives, the others are parsed into what their binary form reads as.
            return PostgresTextValues.Parse(await value.Get<string>(cancellationToken).ConfigureAwait(false), column);
        }

        if (!column.IsNative)
        {
            // Not expected (such tables stream as text); a type's CLR value does not print as its PostgreSQL input.
            return PortableValue.ToText(await value.Get<object>(cancellationToken).ConfigureAwait(false));
        }

        if (column.IsArray)
        {
            if (column.BaseType == "time")
            {
                var binary = new byte[value.Length];
                await using (var stream = value.GetStream())
                {
                    await stream.ReadExactlyAsync(binary, cancellationToken).ConfigureAwait(false);
                }

                return PgDateTimes.ReadTimeArray(binary);
            }

            return Normalize(await value.Get<object>(cancellationToken).ConfigureAwait(false));
        }

        return column.BaseType switch
        {
            "int2" => (long)await value.Get<short>(cancellationToken).ConfigureAwait(false),
            "int4" => (long)await value.Get<int>(cancellationToken).ConfigureAwait(false),
            "int8" => await value.Get<long>(cancellationToken).ConfigureAwait(false),
            "float4" => (double)await value.Get<float>(cancellationToken).ConfigureAwait(false),
            "float8" => await value.Get<double>(cancellationToken).ConfigureAwait(false),
            "date" => PgDateTimes.ReadDate(await value.Get<int>(cancellationToken).ConfigureAwait(false)),
            "timestamp" => PgDateTimes.ReadTimestamp(await value.Get<long>(cancellationToken).ConfigureAwait(false), DateTimeKind.Unspecified),
            "timestamptz" => PgDateTimes.ReadTimestamp(await value.Get<long>(cancellationToken).ConfigureAwait(false), DateTimeKind.Utc),
            "time" => PgDateTimes.ReadTime(await value.Get<TimeSpan>(cancellationToken).ConfigureAwait(false)),
            "json" or "jsonb" or "text" or "varchar" or "bpchar" or "name" => await value.Get<string>(cancellationToken).ConfigureAwait(false),
            "numeric" => await ReadNumericAsync(value, cancellationToken).ConfigureAwait(false),
            _ => Normalize(await value.Get<object>(cancellationToken).ConfigureAwait(false)),
        };
    }

    /// <summary>A binary <c>numeric</c> from the log as the engine's value (Npgsql's decimal cannot hold NaN or 29+ digits).</summary>
    private static async ValueTask<object> ReadNumericAsync(Npgsql.Replication.PgOutput.ReplicationValue value, CancellationToken cancellationToken)
    {
        // On the log's hot path (every numeric of every row): a pooled buffer, not an array per value.
        var binary = System.Buffers.ArrayPool<byte>.Shared.Rent(value.Length);
        try
        {
            await using (var stream = value.GetStream())
            {
                await stream.ReadExactlyAsync(binary.AsMemory(0, value.Length), cancellationToken).ConfigureAwait(false);
            }

            return PgNumeric.Read(binary.AsSpan(0, value.Length));
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(binary);
        }
    }

    /// <summary>Scalars and array elements normalized alike (an <c>int4[]</c> reads as an array of <c>long</c>s).</summary>
    private static object? Normalize(object? value)
    {
        switch (value)
        {
            case short s:
                return (long)s;
            case int i:
                return (long)i;
            case float f:
                return (double)f;
            case DBNull:
                return null;
            case Array { Rank: > 1 } grid:
                // More dimensions: arrays of arrays, one level per dimension (flattened, {{1,2},{3,4}} became {1,2,3,4}).
                return Nest(grid, 0, new int[grid.Rank]);
            case Array array when value is not byte[]:
                var items = new object?[array.Length];
                var i2 = 0;
                foreach (var item in array)
                {
                    items[i2++] = Normalize(item);
                }

                return items;
            default:
                return value;
        }
    }

    private static object?[] Nest(Array grid, int dimension, int[] index)
    {
        var items = new object?[grid.GetLength(dimension)];
        for (var i = 0; i < items.Length; i++)
        {
            index[dimension] = grid.GetLowerBound(dimension) + i;
            items[i] = dimension == grid.Rank - 1 ? Normalize(grid.GetValue(index)) : Nest(grid, dimension + 1, index);
        }

        return items;
    }

    /// <summary>The value as the CLR type a column of this type takes (the column's base type for array elements).</summary>
    public static object? ToColumn(object? value, PgColumn column)
    {
        if (value is null or DBNull)
        {
            return null;
        }

        if (!column.IsNative)
        {
            return value as string ?? PortableValue.ToText(value);
        }

        if (column.IsArray)
        {
            if (value is string text)
            {
                // An array that travelled as text: a JSON array (a SQLite copy of a PostgreSQL array) or an array literal.
                // The staging column has the array's own type, so it is read into values here, like an array read.
                value = ArrayFromText(text, column.BaseType);
            }

            if (value is Array nested and not byte[] && IsNested(nested))
            {
                return Grid(nested, column.BaseType);
            }

            if (value is Array times and not byte[] && column.BaseType == "time")
            {
                // As TimeSpans, which hold time's 24:00:00 (TimeOnly does not).
                var spans = new TimeSpan?[times.Length];
                var t = 0;
                foreach (var item in times)
                {
                    spans[t++] = TimeSpanOf(item);
                }

                return spans;
            }

            if (value is Array array and not byte[])
            {
                var converted = new object?[array.Length];
                var i = 0;
                foreach (var item in array)
                {
                    converted[i++] = ToScalar(item, column.BaseType);
                }

                return TypedArray(converted, column.BaseType);
            }
        }

        return ToScalar(value, column.BaseType);
    }

    /// <summary>
    /// An array written as text: a JSON array as <see cref="PortableValue.ToJson"/> writes one (nested arrays for more
    /// dimensions, bytea elements in base64), else a PostgreSQL array literal (<c>{a,"b c",NULL}</c>); elements as text
    /// (numbers, booleans) for <see cref="ToScalar"/> to convert, NULL as null.
    /// </summary>
    private static object?[] ArrayFromText(string text, string baseType)
    {
        var trimmed = text.AsSpan().Trim();
        if (trimmed.StartsWith("[", StringComparison.Ordinal) && !trimmed.Contains("]={", StringComparison.Ordinal))
        {
            try
            {
                using var document = JsonDocument.Parse(text);
                if (document.RootElement.ValueKind == JsonValueKind.Array)
                {
                    return FromJson(document.RootElement, baseType);
                }
            }
            catch (JsonException e)
            {
                throw new FormatException($"not a JSON array: {e.Message}", e);
            }
        }

        return PostgresTextValues.ArrayValue(
            trimmed.ToString(),
            element => baseType == "bytea" && element.StartsWith("\\x", StringComparison.Ordinal) ? Convert.FromHexString(element.AsSpan(2)) : element);
    }

    private static object?[] FromJson(JsonElement array, string baseType)
    {
        var items = new object?[array.GetArrayLength()];
        var i = 0;
        foreach (var item in array.EnumerateArray())
        {
            items[i++] = item.ValueKind switch
            {
                JsonValueKind.Null => null,
                JsonValueKind.Array => FromJson(item, baseType),
                JsonValueKind.String when baseType == "bytea" => Convert.FromBase64String(item.GetString()!),
                JsonValueKind.String => item.GetString(),
                JsonValueKind.True or JsonValueKind.False when baseType == "bool" => item.GetBoolean(),
                _ => item.GetRawText(), // numbers, booleans of other types, objects (json elements)
            };
        }

        return items;
    }

    private static object? ToScalar(object? value, string baseType)
    {
        if (value is null or DBNull)
        {
            return null;
        }

        if (baseType is "date" or "timestamp" or "timestamptz" && PgDateTimes.IsInfinity(value, out var positive))
        {
            // Kept as the infinity's text: CopyWriters writes it in the type's wire form.
            return positive ? PgDateTimes.Infinity : PgDateTimes.NegativeInfinity;
        }

        if (baseType == "time" && (PgDateTimes.IsEndOfDay(value) || value is TimeSpan { TotalDays: 1 }))
        {
            return PgDateTimes.EndOfDay;
        }

        // Already what the column's writer takes (the usual case for a PostgreSQL source): the same box, not a new one.
        if ((baseType, value) is ("int8", long) or ("float8", double) or ("numeric", decimal) or ("bool", bool) or ("uuid", Guid)
            or ("bytea", byte[]) or ("timestamptz", DateTime { Kind: DateTimeKind.Utc }) or ("date", DateOnly) or ("time", TimeOnly))
        {
            return value;
        }

        var c = CultureInfo.InvariantCulture;
        return baseType switch
        {
            "int2" => value is string s ? short.Parse(s, c) : Convert.ToInt16(Integral(value), c),
            "int4" => value is string s ? int.Parse(s, c) : Convert.ToInt32(Integral(value), c),
            "int8" => value is string s ? long.Parse(s, c) : Convert.ToInt64(Integral(value), c),
            "float4" => value is string s ? float.Parse(s, c) : Convert.ToSingle(value, c),
            "float8" => value is string s ? double.Parse(s, c) : Convert.ToDouble(value, c),
            // Text that is no decimal (NaN, Infinity, 29+ digits) stays text; CopyWriters sends it in numeric's binary form.
            "numeric" => value is string s ? Numeric(s) : Convert.ToDecimal(value, c),
            "bool" => value switch
            {
                bool b => b,
                string s => s.Trim().ToLowerInvariant() is "1" or "t" or "true" or "y" or "yes" or "on",
                _ => Convert.ToInt64(value, c) != 0,
            },
            "bytea" => value switch
            {
                byte[] b => b,
                string s => System.Text.Encoding.UTF8.GetBytes(s),
                _ => System.Text.Encoding.UTF8.GetBytes(PortableValue.ToText(value) ?? ""),
            },
            "uuid" => value switch
            {
                Guid g => g,
                byte[] { Length: 16 } b => new Guid(b, bigEndian: true),
                _ => Guid.Parse(PortableValue.ToText(value)!),
            },
            "timestamptz" => ToInstant(value).ToDateTimeUtc(),
            "timestamp" => value is DateTime { Kind: not DateTimeKind.Utc } local
                ? DateTime.SpecifyKind(local, DateTimeKind.Unspecified)
                : DateTime.SpecifyKind(ToInstant(value).ToDateTimeUtc(), DateTimeKind.Unspecified),
            "date" => value switch
            {
                DateOnly d => d,
                DateTime t => DateOnly.FromDateTime(t),
                _ => DateOnly.FromDateTime(ToInstant(value).ToDateTimeUtc()),
            },
            "time" => value switch
            {
                TimeOnly t => t,
                TimeSpan t => TimeOnly.FromTimeSpan(t),
                _ => TimeOnly.Parse(PortableValue.ToText(value)!, c),
            },
            "json" or "jsonb" => value as string ?? PortableValue.ToText(value),
            _ => value as string ?? PortableValue.ToText(value),
        };
    }

    /// <summary>
    /// A number written as text: a <see cref="decimal"/> when it holds it exactly, else the text (checked here, so a
    /// value that is no number is refused with the record's key like any other).
    /// </summary>
    private static object Numeric(string text)
    {
        if (PgNumeric.FromText(text.Trim()) is decimal exact)
        {
            return exact;
        }

        _ = PgNumeric.Encode(text);
        return text;
    }

    /// <summary>Whole numbers only: a REAL 3.0 from SQLite is 3, a 3.5 is refused rather than silently rounded.</summary>
    private static object Integral(object value) => value switch
    {
        double d when Math.Floor(d) != d => throw new FormatException($"{d.ToString(CultureInfo.InvariantCulture)} is not a whole number"),
        decimal m when decimal.Floor(m) != m => throw new FormatException($"{m.ToString(CultureInfo.InvariantCulture)} is not a whole number"),
        bool b => b ? 1L : 0L,
        _ => value,
    };

    private static Instant ToInstant(object value) => value switch
    {
        DateTime { Kind: DateTimeKind.Utc } t => Instant.FromDateTimeUtc(t),
        DateTime t => Instant.FromDateTimeUtc(DateTime.SpecifyKind(t, DateTimeKind.Utc)),
        DateTimeOffset o => Instant.FromDateTimeOffset(o),
        Instant i => i,
        _ => SourceTimestamp.TryParse(value, DateTimeZone.Utc, out var instant, out var problem)
            ? instant
            : throw new FormatException(problem),
    };

    private static TimeSpan? TimeSpanOf(object? value) => value switch
    {
        null or DBNull => null,
        TimeSpan span => span,
        TimeOnly time => time.ToTimeSpan(),
        _ when PgDateTimes.IsEndOfDay(value) => TimeSpan.FromDays(1),
        _ => TimeOnly.Parse(PortableValue.ToText(value)!, CultureInfo.InvariantCulture).ToTimeSpan(),
    };

    private static bool IsNested(Array array)
    {
        foreach (var item in array)
        {
            if (item is Array and not byte[])
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Arrays of arrays (one level per dimension, as read) as a multi-dimensional array of the column's type.</summary>
    private static Array Grid(Array nested, string baseType)
    {
        var lengths = new List<int>();
        for (object? level = nested; level is Array a and not byte[]; level = a.Length > 0 ? a.GetValue(0) : null)
        {
            lengths.Add(a.Length);
        }

        // time as TimeSpans, which hold 24:00:00 (as one dimension does).
        var grid = Array.CreateInstance(baseType == "time" ? typeof(TimeSpan?) : ElementType(baseType), [.. lengths]);
        Fill(grid, nested, 0, new int[lengths.Count], baseType);
        return grid;
    }

    private static void Fill(Array grid, Array level, int dimension, int[] index, string baseType)
    {
        if (level.Length != grid.GetLength(dimension))
        {
            throw new FormatException("a multi-dimensional array's sub-arrays must all have the same length");
        }

        for (var i = 0; i < level.Length; i++)
        {
            index[dimension] = i;
            var item = level.GetValue(i);
            if (dimension < grid.Rank - 1)
            {
                Fill(grid, item as Array ?? throw new FormatException("a multi-dimensional array's sub-arrays must all have the same depth"), dimension + 1, index, baseType);
            }
            else
            {
                grid.SetValue(item is Array and not byte[] ? throw new FormatException("a multi-dimensional array's sub-arrays must all have the same depth") : baseType == "time" ? TimeSpanOf(item) : ToScalar(item, baseType), index);
            }
        }
    }

    private static Array TypedArray(object?[] values, string baseType)
    {
        var result = Array.CreateInstance(ElementType(baseType), values.Length);
        for (var i = 0; i < values.Length; i++)
        {
            result.SetValue(values[i], i);
        }

        return result;
    }

    private static Type ElementType(string baseType)
    {
        Type element = baseType switch
        {
            "int2" => typeof(short?),
            "int4" => typeof(int?),
            "int8" => typeof(long?),
            "float4" => typeof(float?),
            "float8" => typeof(double?),
            "numeric" => typeof(decimal?),
            "bool" => typeof(bool?),
            "uuid" => typeof(Guid?),
            "timestamptz" or "timestamp" => typeof(DateTime?),
            "date" => typeof(DateOnly?),
            "time" => typeof(TimeOnly?),
            "bytea" => typeof(byte[]),
            _ => typeof(string),
        };
        return element;
    }
}
