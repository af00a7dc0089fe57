using System.Text;

namespace DeltaSync.Postgres;

/// <summary>Identifier quoting and the few SQL fragments every PostgreSQL statement here shares.</summary>
public static class PostgresSql
{
    /// <summary>A quoted identifier: <c>"name"</c> with embedded quotes doubled. Never concatenate a value.</summary>
    public static string Quote(string identifier)
    {
        ArgumentNullException.ThrowIfNull(identifier);
        return "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
    }

    /// <summary>A quoted <c>"schema"."table"</c>.</summary>
    public static string Qualified(string schema, string table) => Quote(schema) + "." + Quote(table);

    /// <summary>Quoted columns joined by commas, optionally each prefixed by an alias.</summary>
    public static string ColumnList(IEnumerable<string> columns, string? alias = null)
    {
        var text = new StringBuilder();
        foreach (var column in columns)
        {
            if (text.Length > 0)
            {
                text.Append(", ");
            }

            if (alias is not null)
            {
                text.Append(alias).Append('.');
            }

            text.Append(Quote(column));
        }

        return text.ToString();
    }

    /// <summary>
    /// Splits a configured table name into schema and table: <c>sales.orders</c>, <c>"Mixed"."Case"</c> or <c>orders</c>
    /// (schema null: the search path decides).
    /// </summary>
    public static (string? Schema, string Table) SplitName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var parts = new List<string>();
        var current = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (c == '"')
            {
                if (quoted && i + 1 < name.Length && name[i + 1] == '"')
                {
                    current.Append('"');
                    i++;
                }
                else
                {
                    quoted = !quoted;
                }
            }
            else if (c == '.' && !quoted)
            {
                parts.Add(current.ToString());
                current.Clear();
            }
            else
            {
                current.Append(c);
            }
        }

        parts.Add(current.ToString());
        return parts.Count >= 2 ? (parts[^2], parts[^1]) : (null, parts[0]);
    }
}
