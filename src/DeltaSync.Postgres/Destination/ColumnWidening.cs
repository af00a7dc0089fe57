using System.Globalization;
using System.Text.RegularExpressions;

namespace DeltaSync.Postgres.Destination;

/// <summary>
/// Which changes of a column's type at a PostgreSQL source the destination follows: only widenings every value of the
/// old type survives unchanged — a longer <c>varchar</c>/<c>char</c>/<c>bit varying</c>, <c>varchar</c> to <c>text</c>,
/// a <c>numeric</c> with at least as many digits on both sides of the point, <c>smallint</c> → <c>integer</c> →
/// <c>bigint</c>, <c>real</c> → <c>double precision</c>, more fractional digits of a time. Anything else (a narrower or
/// different type) leaves the destination column as it is: values that do not fit it are refused and dead-lettered.
/// </summary>
/// <remarks>Types are compared as <c>format_type</c> spells them, on both sides (see <see cref="PgColumn.TypeName"/>).</remarks>
internal static partial class ColumnWidening
{
    /// <summary><paramref name="sourceType"/> when the destination's column should be widened to it, else null.</summary>
    public static string? WidenedType(string destinationType, string sourceType)
    {
        if (string.Equals(destinationType, sourceType, StringComparison.Ordinal)
            || Parse(destinationType) is not { } narrow
            || Parse(sourceType) is not { } wide
            || narrow.IsArray != wide.IsArray)
        {
            return null;
        }

        return Widens(narrow, wide) ? sourceType : null;
    }

    private static bool Widens(Spelling narrow, Spelling wide) => (narrow.Name, wide.Name) switch
    {
        ("character varying", "text") => true,
        ("smallint", "integer" or "bigint") or ("integer", "bigint") or ("real", "double precision") => true,
        // Without a length varchar and bit varying are unbounded; char always has one (format_type prints character(1)).
        ("character varying", "character varying") or ("bit varying", "bit varying") or ("character", "character") =>
            narrow.First is { } length && (wide.First is null || wide.First > length),
        // Without a precision numeric holds any value; with one, neither its integer digits nor its scale may shrink.
        ("numeric", "numeric") =>
            narrow.First is { } precision && (wide.First is null || (wide.Second >= narrow.Second && wide.First - wide.Second >= precision - narrow.Second)),
        ("timestamp without time zone", "timestamp without time zone")
            or ("timestamp with time zone", "timestamp with time zone")
            or ("time without time zone", "time without time zone")
            or ("time with time zone", "time with time zone") =>
            narrow.First is { } digits && (wide.First is null || wide.First > digits),
        _ => false,
    };

    private static Spelling? Parse(string type)
    {
        var match = TypeSpelling().Match(type);
        if (!match.Success)
        {
            return null;
        }

        var first = match.Groups["first"].Success ? int.Parse(match.Groups["first"].Value, CultureInfo.InvariantCulture) : (int?)null;
        // numeric(p) is numeric(p,0); format_type prints both numbers anyway.
        var second = match.Groups["second"].Success ? int.Parse(match.Groups["second"].Value, CultureInfo.InvariantCulture) : 0;
        return new Spelling(match.Groups["name"].Value + match.Groups["zone"].Value, first, second, match.Groups["array"].Success);
    }

    /// <summary>A type as <c>format_type</c> spells it: name, the modifier's one or two numbers, and array brackets.</summary>
    private sealed record Spelling(string Name, int? First, int Second, bool IsArray);

    [GeneratedRegex(@"^(?<name>[a-z][a-z ]*?)(?:\((?<first>-?\d+)(?:,(?<second>-?\d+))?\))?(?<zone> with(?:out)? time zone)?(?<array>\[\])?$", RegexOptions.CultureInvariant)]
    private static partial Regex TypeSpelling();
}
