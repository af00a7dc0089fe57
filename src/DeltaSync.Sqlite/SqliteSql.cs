namespace DeltaSync.Sqlite;

/// <summary>SQL text helpers: every identifier goes through <see cref="Quote"/>; values are always parameters.</summary>
internal static class SqliteSql
{
    public static string Quote(string identifier) => "\"" + identifier.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    /// <summary>A string literal, for the few places SQLite takes no parameter (trigger bodies, DDL defaults).</summary>
    public static string Literal(string value) => "'" + value.Replace("'", "''", StringComparison.Ordinal) + "'";

    public static string ColumnList(IEnumerable<string> columns) => string.Join(", ", columns.Select(Quote));

    /// <summary>
    /// The number of placeholders an <c>IN (…)</c> list of <paramref name="count"/> values is prepared with: the next
    /// power of two (at least 8, at most <paramref name="max"/>), the rest bound to NULL (which matches nothing). A
    /// handful of sizes serve every count, so statements are prepared once instead of once per count.
    /// </summary>
    public static int InListSize(int count, int max) => count >= max ? max : Math.Min(max, Math.Max(8, (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)count)));

    /// <summary>The key columns for ORDER BY, compared byte-wise so SQLite's order matches the ledger's key encoding.</summary>
    public static string KeyOrder(IReadOnlyList<string> key) => string.Join(", ", key.Select(k => Quote(k) + " COLLATE BINARY"));

    /// <summary>
    /// <c>(k1, k2…) &gt; (@p…)</c> spelled out so each comparison uses BINARY collation:
    /// <c>k1 &gt; ?1 OR (k1 = ?1 AND k2 &gt; ?2)…</c>. Parameters are numbered from <paramref name="firstParameter"/>.
    /// </summary>
    public static string KeyAfter(IReadOnlyList<string> key, int firstParameter, string? prefix = null)
    {
        var terms = new List<string>();
        for (var i = 0; i < key.Count; i++)
        {
            var parts = new List<string>();
            if (prefix is not null)
            {
                parts.Add(prefix);
            }

            for (var j = 0; j < i; j++)
            {
                parts.Add($"{Quote(key[j])} = ?{firstParameter + j} COLLATE BINARY");
            }

            parts.Add($"{Quote(key[i])} > ?{firstParameter + i} COLLATE BINARY");
            terms.Add("(" + string.Join(" AND ", parts) + ")");
        }

        return "(" + string.Join(" OR ", terms) + ")";
    }
}
