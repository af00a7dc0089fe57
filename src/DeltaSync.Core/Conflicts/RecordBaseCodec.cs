using System.Buffers;
using System.Collections;
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
/// <remarks>
/// Format 2 stores each source's view as its difference from the merged values: the fields whose value differs,
/// and, when the view lacks fields the merged values have, <c>[differences, [missing fields]]</c>. A view equal to the
/// merged values (the usual case: every source has reported what was merged) is <c>{}</c> and decodes to the very same
/// dictionary. Fields of the merged values that no view holds (the tracking columns: a source's view leaves them out,
/// the destination keeps their maximum) are listed once as <c>"m"</c>, and views are compared with the merged values
/// without them. Format 1 (every view in full) still reads. Decoding walks the text once with a forward-only reader, and
/// encoding writes keys in ordinal order (the order a <see cref="FieldDictionary{T}"/> enumerates in), so an unchanged base encodes to the same text and is not rewritten.
/// </remarks>
public static class RecordBaseCodec
{
    private const int FormatVersion = 2;

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    [ThreadStatic]
    private static Dictionary<string, string>? t_names;

    [ThreadStatic]
    private static string[][]? t_nameSets;

    [ThreadStatic]
    private static int t_nextNameSet;

    [ThreadStatic]
    private static List<string>? t_scratchNames;

    [ThreadStatic]
    private static List<object?>? t_scratchValues;

    [ThreadStatic]
    private static List<string>? t_unseen;

    [ThreadStatic]
    private static WriteStamp? t_lastStamp;

    /// <summary>The stored text of <paramref name="record"/>.</summary>
    public static string Encode(RecordBase record) => Encoding.UTF8.GetString(Write(record));

    /// <summary>The stored text of <paramref name="record"/>, as UTF-8 (the form destinations store and hand back).</summary>
    public static byte[] EncodeUtf8(RecordBase record) => Write(record).ToArray();

    /// <summary>Writes <paramref name="record"/> into this thread's buffer; the span is valid until the thread's next write.</summary>
    private static ReadOnlySpan<byte> Write(RecordBase record)
    {
        ArgumentNullException.ThrowIfNull(record);
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(1024);
        buffer.ResetWrittenCount();
        var w = t_writer ??= new Utf8JsonWriter(buffer);
        w.Reset(buffer);
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
        foreach (var (field, stamp) in record.Writers)
        {
            w.WritePropertyName(field);
            WriteStamp(w, stamp);
        }

        w.WriteEndObject();
        // Fields of the merged values that no source's view holds (the tracking columns, which the destination keeps
        // the maximum of): written once, and every view is then compared with the merged values without them.
        var unseen = UnseenFields(record);
        if (unseen.Count > 0)
        {
            w.WriteStartArray("m");
            foreach (var field in unseen)
            {
                w.WriteStringValue(field);
            }

            w.WriteEndArray();
        }

        w.WriteStartObject("s");
        foreach (var (source, view) in record.SourceViews)
        {
            w.WritePropertyName(source);
            WriteView(w, view, record.Values, unseen);
        }

        w.WriteEndObject();
        w.WriteStartObject("t");
        foreach (var (source, stamp) in record.SourceStamps)
        {
            w.WritePropertyName(source);
            WriteStamp(w, stamp);
        }

        w.WriteEndObject();
        if (!record.Holds.IsEmpty)
        {
            w.WriteStartObject("h");
            foreach (var (field, hold) in record.Holds)
            {
                w.WriteStartObject(field);
                w.WriteString("c", hold.ConflictId);
                w.WriteStartObject("k");
                foreach (var (source, candidate) in hold.Candidates)
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
        w.Flush();
        return buffer.WrittenSpan;
    }

    /// <summary>The record base of <paramref name="key"/> stored as <paramref name="text"/>.</summary>
    /// <exception cref="FormatException">The text is not a stored record base.</exception>
    public static RecordBase Decode(string key, string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var rented = ArrayPool<byte>.Shared.Rent(Encoding.UTF8.GetMaxByteCount(text.Length));
        try
        {
            var length = Encoding.UTF8.GetBytes(text, rented);
            return Decode(key, rented.AsSpan(0, length));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>The record base of <paramref name="key"/> stored as the UTF-8 text <paramref name="utf8"/>.</summary>
    /// <exception cref="FormatException">The text is not a stored record base.</exception>
    public static RecordBase Decode(string key, ReadOnlySpan<byte> utf8)
    {
        try
        {
            var reader = new Utf8JsonReader(utf8);
            return ReadRecord(key, ref reader);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or ArgumentException)
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

    private static RecordBase ReadRecord(string key, ref Utf8JsonReader r)
    {
        Expect(ref r, JsonTokenType.StartObject);
        int? format = null;
        bool? exists = null;
        WriteStamp? existence = null, inserted = null;
        FieldDictionary<object?>? values = null;
        FieldDictionary<WriteStamp>? writers = null, stamps = null;
        List<(string Source, FieldDictionary<object?> Values, List<string>? Missing)>? views = null;
        FieldDictionary<ReviewHold>? holds = null;
        List<string>? unseen = null;
        while (Next(ref r) == JsonTokenType.PropertyName)
        {
            // Every part is named by one letter: no string for it.
            var name = !r.HasValueSequence && !r.ValueIsEscaped && r.ValueSpan.Length == 1 ? (char)r.ValueSpan[0] : '\0';
            r.Read();
            switch (name)
            {
                case 'f':
                    format = r.GetInt32();
                    break;
                case 'e':
                    exists = r.GetBoolean();
                    break;
                case 'x':
                    existence = ReadStamp(ref r);
                    break;
                case 'i':
                    inserted = ReadStamp(ref r);
                    break;
                case 'v':
                    values = ReadValues(ref r);
                    break;
                case 'w':
                    writers = ReadStamps(ref r);
                    break;
                case 't':
                    stamps = ReadStamps(ref r);
                    break;
                case 's':
                    views = ReadViews(ref r);
                    break;
                case 'm':
                    unseen = [];
                    Expect(ref r, JsonTokenType.StartArray);
                    while (Next(ref r) == JsonTokenType.String)
                    {
                        unseen.Add(Name(ref r));
                    }

                    Expect(ref r, JsonTokenType.EndArray);
                    break;
                case 'h':
                    holds = ReadHolds(ref r);
                    break;
                default:
                    r.Skip();
                    break;
            }
        }

        if (format is not (1 or 2))
        {
            throw new FormatException(format is null ? "no format version" : $"format {format} is newer than this version of DeltaSync reads");
        }

        if (exists is null || values is null || writers is null || stamps is null || views is null)
        {
            throw new FormatException("a required part (e, v, w, s or t) is missing");
        }

        var sourceViews = FieldDictionary<FieldDictionary<object?>>.Empty.ToBuilder();
        // Format 2: each view is a difference from the merged values less the fields no view holds; views equal to
        // that share one dictionary.
        var reference = unseen is null ? values : values.RemoveRange(unseen);
        foreach (var (source, stored, missing) in views)
        {
            // Format 1 stored each view in full.
            sourceViews[source] = format == 1 ? stored
                : stored.IsEmpty && missing is null ? reference
                : missing is null ? reference.SetItems(stored)
                : reference.SetItems(stored).RemoveRange(missing);
        }

        return new RecordBase(key)
        {
            Exists = exists.Value,
            Existence = existence,
            InsertedBy = inserted,
            Values = values,
            Writers = writers,
            SourceViews = sourceViews.ToImmutable(),
            SourceStamps = stamps,
            Holds = holds ?? FieldDictionary<ReviewHold>.Empty,
        };
    }

    private static List<(string, FieldDictionary<object?>, List<string>?)> ReadViews(ref Utf8JsonReader r)
    {
        Expect(ref r, JsonTokenType.StartObject);
        var views = new List<(string, FieldDictionary<object?>, List<string>?)>(2);
        while (Next(ref r) == JsonTokenType.PropertyName)
        {
            var source = Name(ref r);
            r.Read();
            if (r.TokenType == JsonTokenType.StartArray)
            {
                r.Read();
                var differences = ReadValues(ref r);
                r.Read();
                Expect(ref r, JsonTokenType.StartArray);
                var missing = new List<string>();
                while (Next(ref r) == JsonTokenType.String)
                {
                    missing.Add(r.GetString()!);
                }

                Expect(ref r, JsonTokenType.EndArray);
                r.Read();
                Expect(ref r, JsonTokenType.EndArray);
                views.Add((source, differences, missing));
            }
            else
            {
                views.Add((source, ReadValues(ref r), null));
            }
        }

        return views;
    }

    private static FieldDictionary<ReviewHold> ReadHolds(ref Utf8JsonReader r)
    {
        Expect(ref r, JsonTokenType.StartObject);
        var holds = FieldDictionary<ReviewHold>.Empty.ToBuilder();
        while (Next(ref r) == JsonTokenType.PropertyName)
        {
            var field = r.GetString()!;
            r.Read();
            Expect(ref r, JsonTokenType.StartObject);
            string? conflictId = null;
            FieldDictionary<ConflictCandidate>? candidates = null;
            ConflictCandidate? proposed = null;
            while (Next(ref r) == JsonTokenType.PropertyName)
            {
                var name = r.GetString();
                r.Read();
                switch (name)
                {
                    case "c":
                        conflictId = r.GetString();
                        break;
                    case "k":
                        Expect(ref r, JsonTokenType.StartObject);
                        var builder = FieldDictionary<ConflictCandidate>.Empty.ToBuilder();
                        while (Next(ref r) == JsonTokenType.PropertyName)
                        {
                            var source = r.GetString()!;
                            r.Read();
                            builder[source] = ReadCandidate(ref r);
                        }

                        candidates = builder.ToImmutable();
                        break;
                    case "p":
                        proposed = ReadCandidate(ref r);
                        break;
                    default:
                        r.Skip();
                        break;
                }
            }

            holds[field] = new ReviewHold(
                conflictId ?? throw new FormatException($"the hold of '{field}' has no conflict id"),
                field,
                candidates ?? throw new FormatException($"the hold of '{field}' has no candidates"),
                proposed);
        }

        return holds.ToImmutable();
    }

    private static ConflictCandidate ReadCandidate(ref Utf8JsonReader r)
    {
        Expect(ref r, JsonTokenType.StartObject);
        WriteStamp? stamp = null;
        var deleted = false;
        FieldDictionary<object?>? values = null;
        while (Next(ref r) == JsonTokenType.PropertyName)
        {
            var name = r.GetString();
            r.Read();
            switch (name)
            {
                case "t":
                    stamp = ReadStamp(ref r);
                    break;
                case "d":
                    deleted = r.GetBoolean();
                    break;
                case "v":
                    values = ReadValues(ref r);
                    break;
                default:
                    r.Skip();
                    break;
            }
        }

        return new ConflictCandidate(stamp ?? throw new FormatException("a review candidate has no stamp"), deleted, values ?? FieldDictionary<object?>.Empty);
    }

    private static FieldDictionary<WriteStamp> ReadStamps(ref Utf8JsonReader r)
    {
        Expect(ref r, JsonTokenType.StartObject);
        var stamps = FieldDictionary<WriteStamp>.Empty.ToBuilder();
        while (Next(ref r) == JsonTokenType.PropertyName)
        {
            var name = Name(ref r);
            r.Read();
            stamps[name] = ReadStamp(ref r);
        }

        return stamps.ToImmutable();
    }

    private static WriteStamp ReadStamp(ref Utf8JsonReader r)
    {
        Expect(ref r, JsonTokenType.StartArray);
        r.Read();
        var source = r.TokenType == JsonTokenType.String ? Name(ref r) : throw new FormatException("a stamp has no source");
        r.Read();
        var ticks = r.GetInt64();
        r.Read();
        var sequence = r.GetInt64();
        r.Read();
        Expect(ref r, JsonTokenType.EndArray);
        // A base repeats its stamps (the existence, a field's writer and the source's last version are often one write):
        // the stamp just read is shared (names are interned, so the source compares by reference).
        if (t_lastStamp is { } last && ReferenceEquals(last.Source, source) && last.Sequence == sequence && last.Time.ToUnixTimeTicks() == ticks)
        {
            return last;
        }

        return t_lastStamp = new WriteStamp(source, Instant.FromUnixTimeTicks(ticks), sequence);
    }

    private static FieldDictionary<object?> ReadValues(ref Utf8JsonReader r)
    {
        Expect(ref r, JsonTokenType.StartObject);
        var names = t_scratchNames ??= [];
        var values = t_scratchValues ??= [];
        names.Clear();
        values.Clear();
        var ordered = true;
        while (Next(ref r) == JsonTokenType.PropertyName)
        {
            var name = Name(ref r);
            r.Read();
            ordered &= names.Count == 0 || string.CompareOrdinal(names[^1], name) < 0;
            names.Add(name);
            values.Add(ReadValue(ref r));
        }

        if (!ordered)
        {
            // Not written by this codec (which writes names in order): sort it out the slow way.
            var builder = FieldDictionary<object?>.Empty.ToBuilder();
            for (var i = 0; i < names.Count; i++)
            {
                builder[names[i]] = values[i];
            }

            return builder.ToImmutable();
        }

        // Every record of a table names the same fields: the names array is shared between them.
        return FieldDictionary<object?>.FromOrdered(NameSet(names), [.. values]);
    }

    /// <summary>
    /// The names as an array shared with earlier maps of the same names (the recent few name lists on this thread,
    /// compared by reference: names are interned by <see cref="Name"/>).
    /// </summary>
    private static string[] NameSet(List<string> names)
    {
        var recent = t_nameSets ??= new string[8][];
        for (var i = 0; i < recent.Length && recent[i] is { } set; i++)
        {
            if (set.Length == names.Count && SameNames(set, names))
            {
                return set;
            }
        }

        var created = names.ToArray();
        recent[t_nextNameSet] = created;
        t_nextNameSet = (t_nextNameSet + 1) % recent.Length;
        return created;
    }

    private static bool SameNames(string[] set, List<string> names)
    {
        for (var i = 0; i < set.Length; i++)
        {
            if (!ReferenceEquals(set[i], names[i]))
            {
                return false;
            }
        }

        return true;
    }

    private static object? ReadValue(ref Utf8JsonReader r)
    {
        switch (r.TokenType)
        {
            case JsonTokenType.Null:
                return null;
            case JsonTokenType.String:
                return r.GetString();
            case JsonTokenType.True:
                return true;
            case JsonTokenType.False:
                return false;
            case JsonTokenType.Number:
                return r.TryGetInt64(out var l) ? (object)l : r.GetDouble();
            case JsonTokenType.StartArray:
                var list = new List<object?>();
                while (Next(ref r) != JsonTokenType.EndArray)
                {
                    list.Add(ReadValue(ref r));
                }

                return list;
            case JsonTokenType.StartObject:
                r.Read();
                if (r.TokenType == JsonTokenType.PropertyName && r.ValueTextEquals("$b"u8))
                {
                    r.Read();
                    var bytes = r.GetBytesFromBase64();
                    r.Read();
                    Expect(ref r, JsonTokenType.EndObject);
                    return bytes;
                }

                throw new FormatException("an object value other than a blob");
            default:
                throw new FormatException($"unexpected {r.TokenType} where a value belongs");
        }
    }

    /// <summary>
    /// A field or source name: the same few names recur in every base, so each thread keeps one string per name
    /// instead of allocating it again for every record (bounded: a table with very many columns just allocates).
    /// </summary>
    private static string Name(ref Utf8JsonReader r)
    {
        var length = r.HasValueSequence ? r.ValueSequence.Length : r.ValueSpan.Length;
        if (length > 128)
        {
            return r.GetString()!;
        }

        Span<char> buffer = stackalloc char[128];
        var written = r.CopyString(buffer);
        var names = t_names ??= new Dictionary<string, string>(StringComparer.Ordinal);
        var lookup = names.GetAlternateLookup<ReadOnlySpan<char>>();
        if (lookup.TryGetValue(buffer[..written], out var known))
        {
            return known;
        }

        var name = new string(buffer[..written]);
        if (names.Count < 4096)
        {
            names[name] = name;
        }

        return name;
    }

    private static JsonTokenType Next(ref Utf8JsonReader r) =>
        r.Read() ? r.TokenType : throw new FormatException("the text ends early");

    private static void Expect(ref Utf8JsonReader r, JsonTokenType expected)
    {
        if (r.TokenType == JsonTokenType.None)
        {
            r.Read();
        }

        if (r.TokenType != expected)
        {
            throw new FormatException($"expected {expected}, found {r.TokenType}");
        }
    }

    private static void WriteStamp(Utf8JsonWriter w, WriteStamp stamp)
    {
        w.WriteStartArray();
        w.WriteStringValue(stamp.Source);
        w.WriteNumberValue(stamp.Time.ToUnixTimeTicks());
        w.WriteNumberValue(stamp.Sequence);
        w.WriteEndArray();
    }

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

    /// <summary>The fields of the merged values that no source's view holds (none when there is no view), in a list this thread reuses.</summary>
    private static List<string> UnseenFields(RecordBase record)
    {
        var unseen = t_unseen ??= [];
        unseen.Clear();
        if (record.SourceViews.IsEmpty)
        {
            return unseen;
        }

        foreach (var (field, _) in record.Values)
        {
            var held = false;
            foreach (var (_, view) in record.SourceViews)
            {
                if (view.ContainsKey(field))
                {
                    held = true;
                    break;
                }
            }

            if (!held)
            {
                unseen.Add(field);
            }
        }

        return unseen;
    }

    /// <summary>
    /// A source's view as its difference from the merged values less <paramref name="unseen"/> (see the remarks): the
    /// view's fields whose value differs, and the merged fields the view lacks.
    /// </summary>
    private static void WriteView(Utf8JsonWriter w, FieldDictionary<object?> view, FieldDictionary<object?> values, List<string> unseen)
    {
        var missing = false;
        foreach (var (field, _) in values)
        {
            if (!view.ContainsKey(field) && !unseen.Contains(field))
            {
                missing = true;
                break;
            }
        }

        if (missing)
        {
            w.WriteStartArray();
        }

        w.WriteStartObject();
        foreach (var (field, value) in view)
        {
            if (unseen.Contains(field) || !values.TryGetValue(field, out var merged) || !SameStored(value, merged))
            {
                w.WritePropertyName(field);
                WriteValue(w, value);
            }
        }

        w.WriteEndObject();
        if (missing)
        {
            w.WriteStartArray();
            foreach (var (field, _) in values)
            {
                if (!view.ContainsKey(field) && !unseen.Contains(field))
                {
                    w.WriteStringValue(field);
                }
            }

            w.WriteEndArray();
            w.WriteEndArray();
        }
    }

    /// <summary>Whether two values are stored alike: the view may then take the merged value's place.</summary>
    private static bool SameStored(object? a, object? b)
    {
        a = Normalize(a);
        b = Normalize(b);
        return (a, b) switch
        {
            (null, null) => true,
            (string x, string y) => string.Equals(x, y, StringComparison.Ordinal),
            (long x, long y) => x == y,
            (double x, double y) => x.Equals(y),
            // JSON writes an integral double as an integer, which reads back as a long: stored, they are alike.
            (long x, double y) => IntegralEqual(y, x),
            (double x, long y) => IntegralEqual(x, y),
            (bool x, bool y) => x == y,
            (byte[] x, byte[] y) => x.AsSpan().SequenceEqual(y),
            (List<object?> x, List<object?> y) => x.Count == y.Count && x.Zip(y).All(p => SameStored(p.First, p.Second)),
            _ => false,
        };
    }

    private static bool IntegralEqual(double value, long integer) =>
        integer > -(1L << 53) && integer < (1L << 53) && value == integer && !(value == 0 && double.IsNegative(value));

    private static void WriteValues(Utf8JsonWriter w, IReadOnlyDictionary<string, object?> values)
    {
        w.WriteStartObject();
        if (values is FieldDictionary<object?> ordered)
        {
            foreach (var (field, value) in ordered)
            {
                w.WritePropertyName(field);
                WriteValue(w, value);
            }

            w.WriteEndObject();
            return;
        }

        var keys = new string[values.Count];
        var i = 0;
        foreach (var pair in values)
        {
            keys[i++] = pair.Key;
        }

        Array.Sort(keys, StringComparer.Ordinal);
        foreach (var field in keys)
        {
            w.WritePropertyName(field);
            WriteValue(w, values[field]);
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
}
