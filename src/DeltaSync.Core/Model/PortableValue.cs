using System.Globalization;
using System.Text;
using System.Text.Json;

namespace DeltaSync.Core.Model;

/// <summary>
/// How a value from any source is written where only text, numbers and blobs exist (SQLite, JSON, reports): times in
/// ISO-8601 with their full precision, identifiers in their canonical form, arrays as JSON arrays.
/// </summary>
public static class PortableValue
{
    /// <summary>The value as text; null stays null.</summary>
    public static string? ToText(object? value) => value switch
    {
        null => null,
        string s => s,
        DateTime { Kind: DateTimeKind.Utc } d => d.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture),
        DateTime d => d.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF", CultureInfo.InvariantCulture),
        DateTimeOffset o => o.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFFzzz", CultureInfo.InvariantCulture),
        DateOnly d => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        TimeOnly t => t.ToString("HH:mm:ss.FFFFFFF", CultureInfo.InvariantCulture),
        TimeSpan t => t.ToString("c", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        byte[] b => Convert.ToBase64String(b),
        Guid g => g.ToString("D"),
        Array a => ToJson(a),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString(),
    };

    /// <summary>An array as a JSON array (nested arrays nest; other values by <see cref="WriteJson"/>).</summary>
    public static string ToJson(Array array)
    {
        ArgumentNullException.ThrowIfNull(array);
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            WriteJson(json, array);
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Writes one value as JSON: numbers as numbers, booleans as booleans, arrays as arrays, the rest as text.</summary>
    public static void WriteJson(Utf8JsonWriter json, object? value)
    {
        ArgumentNullException.ThrowIfNull(json);
        switch (value)
        {
            case null:
                json.WriteNullValue();
                break;
            case long or int or short or byte:
                json.WriteNumberValue(Convert.ToInt64(value, CultureInfo.InvariantCulture));
                break;
            case double d when double.IsFinite(d):
                json.WriteNumberValue(d);
                break;
            case float f when float.IsFinite(f):
                json.WriteNumberValue(f);
                break;
            case decimal m:
                json.WriteNumberValue(m);
                break;
            case bool b:
                json.WriteBooleanValue(b);
                break;
            case byte[] b:
                json.WriteStringValue(Convert.ToBase64String(b));
                break;
            case Array a:
                json.WriteStartArray();
                foreach (var item in a)
                {
                    WriteJson(json, item);
                }

                json.WriteEndArray();
                break;
            default:
                json.WriteStringValue(ToText(value));
                break;
        }
    }
}
