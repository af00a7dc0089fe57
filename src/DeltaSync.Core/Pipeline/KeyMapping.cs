using DeltaSync.Core.Model;

namespace DeltaSync.Core.Pipeline;

/// <summary>
/// <c>key_map</c>: a source naming its key columns differently from the destination (<c>customer_no</c> for
/// <c>id</c>) is written under the destination's names, so records of several sources meet by primary key. Values
/// travel in column order, so renaming the schema is all it takes.
/// </summary>
public static class KeyMapping
{
    /// <summary><paramref name="schema"/> with its columns renamed by <paramref name="map"/> (destination → source column); the same instance when nothing maps.</summary>
    public static TableSchema Rename(TableSchema schema, IReadOnlyDictionary<string, string> map)
    {
        ArgumentNullException.ThrowIfNull(schema);
        ArgumentNullException.ThrowIfNull(map);
        if (map.Count == 0)
        {
            return schema;
        }

        var bySource = map.ToDictionary(p => p.Value, p => p.Key, StringComparer.OrdinalIgnoreCase);
        var columns = schema.Columns.Select(c => bySource.TryGetValue(c.Name, out var to) ? c with { Name = to } : c).ToList();
        var key = schema.PrimaryKey.Select(k => bySource.TryGetValue(k, out var to) ? to : k).ToList();
        return new TableSchema(schema.Name, columns, key) { Dialect = schema.Dialect };
    }
}
