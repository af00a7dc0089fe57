using System.Globalization;
using System.Text;

namespace DeltaSync.Postgres;

/// <summary>
/// Values of the types Npgsql maps natively, read from PostgreSQL's text output (the log of a table that has a column
/// of another type is streamed as text, <see cref="Capture.PostgresWalCapture"/>) into exactly what
/// <see cref="PostgresValues.Read"/> makes of their binary form. The session prints with <c>DateStyle = ISO</c>,
/// <c>bytea_output = hex</c> and <c>extra_float_digits = 3</c> (floats exact).
/// </summary>
internal static class PostgresTextValues
{
    /// <summary>The session settings the parsing relies on, as <c>options</c> for the connection.</summary>
    public const string SessionOptions = "-c DateStyle=ISO -c bytea_output=hex -c extra_float_digits=3";

    /// <summary>PostgreSQL's NaN (a positive quiet NaN; .NET's <see cref="double.NaN"/> has the sign bit set, and row hashes see the bits).</summary>
    private static readonly double PostgresNaN = BitConverter.Int64BitsToDouble(0x7FF8_0000_0000_0000);

    public static object? Parse(string text, PgColumn column)
    {
        if (!column.IsNative)
        {
            return text;
        }

        if (!column.IsArray)
        {
            // As PostgresValues.Read reads the binary form: infinities (apart from the finite extremes) and the end of a
            // day as their text.
            if (column.BaseType is "date" or "timestamp" or "timestamptz" && text is PgDateTimes.Infinity or PgDateTimes.NegativeInfinity)
            {
                return text;
            }

            return column.BaseType == "time" && PgDateTimes.IsEndOfDay(text) ? PgDateTimes.EndOfDay : Scalar(text, column.BaseType);
        }

        return ArrayValue(text, element => Scalar(element, column.BaseType));
    }

    /// <summary>
    /// An array literal's values, each converted by <paramref name="element"/>: one-dimensional as an array of values, more
    /// dimensions as arrays of arrays (<c>{{1,2},{3,4}}</c>: two arrays of two), as <see cref="PostgresValues.Read"/>
    /// gives them; null for NULL.
    /// </summary>
    internal static object?[] ArrayValue(string text, Func<string, object?> element)
    {
        var at = text.StartsWith('[') ? text.IndexOf('=', StringComparison.Ordinal) + 1 : 0;
        var open = new Stack<List<object?>>();
        object?[]? root = null;
        var item = new StringBuilder();
        var quoted = false;
        var inItem = false;
        for (; at < text.Length && root is null; at++)
        {
            var c = text[at];
            switch (c)
            {
                case '{':
                    open.Push([]);
                    break;
                case '"':
                    quoted = inItem = true;
                    for (at++; text[at] != '"'; at++)
                    {
                        item.Append(text[at] == '\\' ? text[++at] : text[at]);
                    }

                    break;
                case ',' or '}':
                    if (inItem)
                    {
                        var value = item.ToString();
                        open.Peek().Add(!quoted && value.Equals("NULL", StringComparison.OrdinalIgnoreCase) ? null : element(value));
                    }

                    item.Clear();
                    quoted = inItem = false;
                    if (c == '}')
                    {
                        var done = open.Pop().ToArray();
                        if (open.Count == 0)
                        {
                            root = done;
                        }
                        else
                        {
                            open.Peek().Add(done);
                        }
                    }

                    break;
                default:
                    if (!char.IsWhiteSpace(c) || inItem)
                    {
                        item.Append(c);
                        inItem = true;
                    }

                    break;
            }
        }

        return root ?? throw new FormatException("not an array literal");
    }

    private static object Scalar(string text, string baseType)
    {
        var c = CultureInfo.InvariantCulture;
        return baseType switch
        {
            "int2" or "int4" or "int8" => long.Parse(text, NumberStyles.AllowLeadingSign, c),
            "float4" => text == "NaN" ? PostgresNaN : (double)float.Parse(text, NumberStyles.Float, c),
            "float8" => text == "NaN" ? PostgresNaN : double.Parse(text, NumberStyles.Float, c),
            "numeric" => PgNumeric.FromText(text),
            "bool" => text is "t" or "true",
            "bytea" => Bytes(text),
            "uuid" => Guid.Parse(text),
            "date" => Date(text),
            // An array element (a scalar 24:00:00 is kept as its text before this): as Npgsql reads time[] elements.
            "time" => PgDateTimes.IsEndOfDay(text) ? PgDateTimes.EndOfDay : TimeOnly.ParseExact(text, "HH:mm:ss.FFFFFF", c),
            "timestamptz" => Timestamp(text, withOffset: true),
            "timestamp" => Timestamp(text, withOffset: false),
            _ => text, // text, varchar, bpchar, name, json, jsonb
        };
    }

    private static byte[] Bytes(string text) =>
        text.StartsWith("\\x", StringComparison.Ordinal)
            ? Convert.FromHexString(text.AsSpan(2))
            : throw new FormatException("bytea not in hex output format (bytea_output = hex)");

    private static DateOnly Date(string text) => text switch
    {
        "infinity" => DateOnly.MaxValue,
        "-infinity" => DateOnly.MinValue,
        _ => DateOnly.ParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture),
    };

    /// <summary>ISO output: <c>2025-01-02 03:04:05.123456</c>, for timestamptz followed by <c>+HH</c>, <c>+HH:MM</c> or <c>+HH:MM:SS</c>.</summary>
    private static DateTime Timestamp(string text, bool withOffset)
    {
        switch (text)
        {
            // Array elements: as Npgsql reads them (of no kind, even for timestamptz).
            case "infinity":
                return DateTime.MaxValue;
            case "-infinity":
                return DateTime.MinValue;
        }

        var local = text;
        var offset = TimeSpan.Zero;
        if (withOffset)
        {
            var at = text.LastIndexOfAny(['+', '-']);
            if (at < 11)
            {
                throw new FormatException($"'{text}' has no UTC offset");
            }

            local = text[..at];
            var parts = text[(at + 1)..].Split(':');
            offset = new TimeSpan(
                int.Parse(parts[0], CultureInfo.InvariantCulture),
                parts.Length > 1 ? int.Parse(parts[1], CultureInfo.InvariantCulture) : 0,
                parts.Length > 2 ? int.Parse(parts[2], CultureInfo.InvariantCulture) : 0);
            if (text[at] == '-')
            {
                offset = -offset;
            }
        }

        var value = DateTime.ParseExact(local, "yyyy-MM-dd HH:mm:ss.FFFFFF", CultureInfo.InvariantCulture, DateTimeStyles.None);
        return DateTime.SpecifyKind(value - offset, withOffset ? DateTimeKind.Utc : DateTimeKind.Unspecified);
    }
}
