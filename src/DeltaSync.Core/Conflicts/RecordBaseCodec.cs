using System.Collections;
using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using System.Text.Json;
using DeltaSync.Core.Model;
using NodaTime;

namespace DeltaSync.Core.Conflicts;

/// <summary>
/// A <see cref="RecordBase"/> as compact JSON, the form destinations store it in (<c>_deltasync_records</c>). Stamps
/// are <c>[source, unix ticks, sequence]</c>; values are JSON numbers, text, booleans, null, arrays, and blobs as
/// <c>{"$b": base64}</c>. Other values (times, decimals beyond a double) travel as their portable text, the way
/// destinations hand them back, so a value read from the destination compares equal to the one stored.
/// </summary>
public static class RecordBaseCodec
{
    private const int FormatVersion = 1;

    /// <summary>The stored text of <paramref name="record"/>.</summary>
    public static string Encode(RecordBase record)
    {
        ArgumentNullException.ThrowIfNull(record);
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("f", FormatVersion);
            w.WriteBoolean("e", record.Exists);
            if (record.Existence is { } existence)
            {
                w.WritePropertyName("x");
                WriteStamp(w, existence);
            }

            if (record.InsertedBy is { } inserted)
            {
                w.WritePropertyName("i");
                WriteStamp(w, inserted);
            }

            w.WritePropertyName("v");
            WriteValues(w, record.Values);
            w.WriteStartObject("w");
            foreach (var (field, stamp) in record.Writers.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                w.WritePropertyName(field);
                WriteStamp(w, stamp);
            }

            w.WriteEndObject();
            w.WriteStartObject("s");
            foreach (var (source, view) in record.SourceViews.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                w.WritePropertyName(source);
                WriteValues(w, view);
            }

            w.WriteEndObject();
            w.WriteStartObject("t");
            foreach (var (source, stamp) in record.SourceStamps.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                w.WritePropertyName(source);
                WriteStamp(w, stamp);
            }

            w.WriteEndObject();
            if (!record.Holds.IsEmpty)
            {
                w.WriteStartObject("h");
                foreach (var (field, hold) in record.Holds.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    w.WriteStartObject(field);
                    w.WriteString("c", hold.ConflictId);
                    w.WriteStartObject("k");
                    foreach (var (source, candidate) in hold.Candidates.OrderBy(p => p.Key, StringComparer.Ordinal))
                    {
                        w.WritePropertyName(source);
                        WriteCandidate(w, candidate);
                    }

                    w.WriteEndObject();
                    if (hold.Proposed is { } proposed)
                    {
                        w.WritePropertyName("p");
                        WriteCandidate(w, proposed);
                    }

                    w.WriteEndObject();
                }

                w.WriteEndObject();
            }

            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>The record base of <paramref name="key"/> stored as <paramref name="text"/>.</summary>
    /// <exception cref="FormatException">The text is not a stored record base.</exception>
    public static RecordBase Decode(string key, string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        try
        {
            using var document = JsonDocument.Parse(text);
            var root = document.RootElement;
            var record = new RecordBase(key)
            {
                Exists = root.GetProperty("e").GetBoolean(),
                Existence = root.TryGetProperty("x", out var x) ? ReadStamp(x) : null,
                InsertedBy = root.TryGetProperty("i", out var i) ? ReadStamp(i) : null,
                Values = ReadValues(root.GetProperty("v")),
                Writers = root.GetProperty("w").EnumerateObject().ToImmutableDictionary(p => p.Name, p => ReadStamp(p.Value), StringComparer.Ordinal),
                SourceViews = root.GetProperty("s").EnumerateObject().ToImmutableDictionary(p => p.Name, p => ReadValues(p.Value), StringComparer.Ordinal),
                SourceStamps = root.GetProperty("t").EnumerateObject().ToImmutableDictionary(p => p.Name, p => ReadStamp(p.Value), StringComparer.Ordinal),
            };
            if (root.TryGetProperty("h", out var holds))
            {
                record = record with
                {
                    Holds = holds.EnumerateObject().ToImmutableDictionary(
                        p => p.Name,
                        p => new ReviewHold(
                            p.Value.GetProperty("c").GetString()!,
                            p.Name,
                            p.Value.GetProperty("k").EnumerateObject().ToImmutableDictionary(c => c.Name, c => ReadCandidate(c.Value), StringComparer.Ordinal),
                            p.Value.TryGetProperty("p", out var proposed) ? ReadCandidate(proposed) : null),
                        StringComparer.Ordinal),
                };
            }

            return record;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            throw new FormatException($"the stored record base of '{key}' is not readable: {e.Message}", e);
        }
    }

    /// <summary>A value as it will read back after a round trip through <see cref="Encode"/>: what comparisons with a stored base must use.</summary>
    public static object? Normalize(object? value) => value switch
    {
        null or string or bool or long or double or byte[] => value,
        int or short or sbyte or byte or uint or ushort => Convert.ToInt64(value, CultureInfo.InvariantCulture),
        ulong u when u <= long.MaxValue => (long)u,
        float f => (double)f,
        decimal d when decimal.Truncate(d) == d && d >= long.MinValue && d <= long.MaxValue => (long)d,
        decimal d => (double)d,
        IList list when value is not string => list.Cast<object?>().Select(Normalize).ToList(),
        _ => PortableValue.ToText(value),
    };

    private static void WriteStamp(Utf8JsonWriter w, WriteStamp stamp)
    {
        w.WriteStartArray();
        w.WriteStringValue(stamp.Source);
        w.WriteNumberValue(stamp.Time.ToUnixTimeTicks());
        w.WriteNumberValue(stamp.Sequence);
        w.WriteEndArray();
    }

    private static WriteStamp ReadStamp(JsonElement e) =>
        new(e[0].GetString()!, Instant.FromUnixTimeTicks(e[1].GetInt64()), e[2].GetInt64());

    private static void WriteCandidate(Utf8JsonWriter w, ConflictCandidate candidate)
    {
        w.WriteStartObject();
        w.WritePropertyName("t");
        WriteStamp(w, candidate.Stamp);
        w.WriteBoolean("d", candidate.Deleted);
        w.WritePropertyName("v");
        WriteValues(w, candidate.Values);
        w.WriteEndObject();
    }

    private static ConflictCandidate ReadCandidate(JsonElement e) =>
        new(ReadStamp(e.GetProperty("t")), e.GetProperty("d").GetBoolean(), ReadValues(e.GetProperty("v")));

    private static void WriteValues(Utf8JsonWriter w, IEnumerable<KeyValuePair<string, object?>> values)
    {
        w.WriteStartObject();
        foreach (var (field, value) in values.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            w.WritePropertyName(field);
            WriteValue(w, value);
        }

        w.WriteEndObject();
    }

    private static void WriteValue(Utf8JsonWriter w, object? value)
    {
        switch (Normalize(value))
        {
            case null:
                w.WriteNullValue();
                break;
            case string s:
                w.WriteStringValue(s);
                break;
            case bool b:
                w.WriteBooleanValue(b);
                break;
            case long l:
                w.WriteNumberValue(l);
                break;
            case double d when double.IsFinite(d):
                w.WriteNumberValue(d);
                break;
            case double d:
                w.WriteStringValue(d.ToString("R", CultureInfo.InvariantCulture));
                break;
            case byte[] bytes:
                w.WriteStartObject();
                w.WriteBase64String("$b", bytes);
                w.WriteEndObject();
                break;
            case List<object?> list:
                w.WriteStartArray();
                foreach (var item in list)
                {
                    WriteValue(w, item);
                }

                w.WriteEndArray();
                break;
        }
    }

    private static ImmutableDictionary<string, object?> ReadValues(JsonElement e) =>
        e.EnumerateObject().ToImmutableDictionary(p => p.Name, p => ReadValue(p.Value), StringComparer.Ordinal);

    private static object? ReadValue(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        JsonValueKind.String => e.GetString(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Number => e.TryGetInt64(out var l) ? l : e.GetDouble(),
        JsonValueKind.Array => e.EnumerateArray().Select(ReadValue).ToList(),
        JsonValueKind.Object when e.TryGetProperty("$b", out var b) => b.GetBytesFromBase64(),
        _ => e.GetRawText(),
    };
}
