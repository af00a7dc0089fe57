using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using NodaTime;

namespace DeltaSync.Core.Conflicts;

/// <summary>
/// One source's fast-merge state of one record, kept with that source's ledger entry
/// (<see cref="Ledger.LedgerEntry.MergeState"/>): what lets the source's next change skip reading, merging and writing
/// the record's stored base when nothing but the source itself has touched the record since.
/// </summary>
/// <remarks>
/// <para>
/// A record is <see cref="Eligible"/> for a source when its base, as this source last left it, has every field either
/// common ground or last written by this source, the source's view equal to the merged values, no hold, and the record
/// existing. A change of that source then conflicts with nothing: every field it changed is a plain write. If the
/// destination's row still has <see cref="RowDigest"/> (no other source wrote it and nobody edited it out-of-band) and
/// the table's merge epoch is still <see cref="Epoch"/> (no run or review since could have changed the base without
/// changing the row), the change is applied as such, the fields it changed found by <see cref="FieldDigests"/>, and
/// only appended to <see cref="Tail"/>.
/// </para>
/// <para>
/// The stored base lags behind by the tail. Whoever next reads the base (a merge that cannot take the fast path, a
/// review) replays every source's tail versions newer than the base's stamp of that source through the engine first,
/// so the base is exactly what merging every version in turn would have made.
/// </para>
/// </remarks>
/// <param name="Epoch">The table's merge epoch the state was written under.</param>
/// <param name="Eligible">Whether the record, as this state describes it, takes this source's changes without a conflict.</param>
/// <param name="RowDigest">The digest of the destination's row as this source's merge left it (<see cref="Pipeline.MergedRowDigest"/>).</param>
/// <param name="Sequence">The source's newest version of the record (its stamp's sequence).</param>
/// <param name="FieldsId">Identifies the table's data fields the digests are of (a changed schema takes the full merge).</param>
/// <param name="FieldDigests">Per data field, in name order, the digest of its merged value.</param>
/// <param name="Tracking">The change-tracking columns' values the row holds (the largest each version brought: a fold sets them once).</param>
public sealed record SourceMergeState(long Epoch, bool Eligible, long RowDigest, long Sequence, long FieldsId, long[] FieldDigests, FieldDictionary<object?> Tracking)
{
    /// <summary>Tail versions a state holds at most: one more change of the record takes the full merge (and folds them into the base).</summary>
    public const int MaxTail = 8;

    /// <summary>How many versions <see cref="Tail"/> holds.</summary>
    public int TailCount { get; init; }

    /// <summary>The tail in its stored form: a fast merge appends a version without reading the others.</summary>
    private byte[] TailBytes { get; init; } = [];

    /// <summary>The versions merged on the fast path since the stored base was last written, oldest first (decoded on each call).</summary>
    public IReadOnlyList<FastVersion> Tail
    {
        get
        {
            var r = new Reader(TailBytes);
            var tail = new FastVersion[TailCount];
            for (var i = 0; i < tail.Length; i++)
            {
                var ticks = r.Fixed();
                var sequence = (long)r.Varint();
                tail[i] = new FastVersion(Instant.FromUnixTimeTicks(ticks), sequence, r.Values());
            }

            return tail;
        }
    }

    /// <summary>This state with <paramref name="version"/> appended to its tail.</summary>
    public SourceMergeState Appending(FastVersion version)
    {
        ArgumentNullException.ThrowIfNull(version);
        var w = t_buffer ??= new ArrayBufferWriter<byte>(256);
        w.ResetWrittenCount();
        w.Write(TailBytes);
        WriteFixed(w, version.Time.ToUnixTimeTicks());
        WriteVarint(w, (ulong)version.Sequence);
        WriteValues(w, version.Changed);
        return this with { TailCount = TailCount + 1, TailBytes = w.WrittenSpan.ToArray() };
    }

    /// <summary>
    /// The stored form's version, moved on with any change of the form or of the digests it holds: a state of another
    /// version reads as none, so its record takes the full merge once (which writes a state of this version).
    /// </summary>
    private const byte Format = 3;

    private const byte NullValue = 0, LongValue = 1, DoubleValue = 2, TextValue = 3, FalseValue = 4, TrueValue = 5, BytesValue = 6, ListValue = 7;

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    /// <summary>The state's stored bytes (a compact binary form).</summary>
    public byte[] Encode()
    {
        var w = t_buffer ??= new ArrayBufferWriter<byte>(256);
        w.ResetWrittenCount();
        WriteByte(w, Format);
        WriteVarint(w, (ulong)Epoch);
        WriteByte(w, Eligible ? (byte)1 : (byte)0);
        WriteFixed(w, RowDigest);
        WriteVarint(w, (ulong)Sequence);
        WriteFixed(w, FieldsId);
        WriteVarint(w, (ulong)FieldDigests.Length);
        foreach (var digest in FieldDigests)
        {
            WriteFixed(w, digest);
        }

        WriteValues(w, Tracking);
        WriteVarint(w, (ulong)TailCount);
        WriteBytes(w, TailBytes);
        return w.WrittenSpan.ToArray();
    }

    /// <summary>The state stored as <paramref name="bytes"/>; null when there is none or it is not readable (the full merge then runs: nothing is lost).</summary>
    public static SourceMergeState? Decode(byte[]? bytes)
    {
        if (bytes is null || bytes.Length == 0 || bytes[0] != Format)
        {
            return null;
        }

        try
        {
            var r = new Reader(bytes);
            r.Byte();
            var epoch = (long)r.Varint();
            var eligible = r.Byte() == 1;
            var digest = r.Fixed();
            var sequence = (long)r.Varint();
            var fieldsId = r.Fixed();
            var digests = new long[r.Count(8)];
            for (var i = 0; i < digests.Length; i++)
            {
                digests[i] = r.Fixed();
            }

            var tracking = r.Values();
            var count = r.Count(1);
            var tail = r.Bytes();
            // The tail is length-prefixed: a state cut short anywhere does not read. Its versions are decoded only
            // when a fold needs them.
            return new SourceMergeState(epoch, eligible, digest, sequence, fieldsId, digests, tracking) { TailCount = count, TailBytes = tail };
        }
        catch (Exception e) when (e is ArgumentException or IndexOutOfRangeException or OverflowException or FormatException or DecoderFallbackException)
        {
            return null;
        }
    }

    private static void WriteByte(ArrayBufferWriter<byte> w, byte value)
    {
        w.GetSpan(1)[0] = value;
        w.Advance(1);
    }

    private static void WriteFixed(ArrayBufferWriter<byte> w, long value)
    {
        BinaryPrimitives.WriteInt64LittleEndian(w.GetSpan(8), value);
        w.Advance(8);
    }

    private static void WriteVarint(ArrayBufferWriter<byte> w, ulong value)
    {
        var span = w.GetSpan(10);
        var i = 0;
        while (value >= 0x80)
        {
            span[i++] = (byte)(value | 0x80);
            value >>= 7;
        }

        span[i++] = (byte)value;
        w.Advance(i);
    }

    private static void WriteBytes(ArrayBufferWriter<byte> w, ReadOnlySpan<byte> bytes)
    {
        WriteVarint(w, (ulong)bytes.Length);
        bytes.CopyTo(w.GetSpan(bytes.Length));
        w.Advance(bytes.Length);
    }

    private static void WriteText(ArrayBufferWriter<byte> w, string text)
    {
        var length = Encoding.UTF8.GetByteCount(text);
        WriteVarint(w, (ulong)length);
        Encoding.UTF8.GetBytes(text, w.GetSpan(length));
        w.Advance(length);
    }

    private static void WriteValues(ArrayBufferWriter<byte> w, FieldDictionary<object?> values)
    {
        WriteVarint(w, (ulong)values.Count);
        foreach (var (name, value) in values)
        {
            WriteText(w, name);
            WriteValue(w, value);
        }
    }

    private static void WriteValue(ArrayBufferWriter<byte> w, object? value)
    {
        switch (RecordBaseCodec.Normalize(value))
        {
            case null:
                WriteByte(w, NullValue);
                break;
            case long l:
                WriteByte(w, LongValue);
                WriteFixed(w, l);
                break;
            case double d:
                WriteByte(w, DoubleValue);
                WriteFixed(w, BitConverter.DoubleToInt64Bits(d));
                break;
            case string s:
                WriteByte(w, TextValue);
                WriteText(w, s);
                break;
            case bool b:
                WriteByte(w, b ? TrueValue : FalseValue);
                break;
            case byte[] bytes:
                WriteByte(w, BytesValue);
                WriteBytes(w, bytes);
                break;
            case List<object?> list:
                WriteByte(w, ListValue);
                WriteVarint(w, (ulong)list.Count);
                foreach (var item in list)
                {
                    WriteValue(w, item);
                }

                break;
            case var other:
                WriteByte(w, TextValue);
                WriteText(w, other.ToString() ?? string.Empty);
                break;
        }
    }

    /// <summary>Reads the binary form forward.</summary>
    private ref struct Reader(ReadOnlySpan<byte> bytes)
    {
        private readonly ReadOnlySpan<byte> _bytes = bytes;
        private int _at;

        public byte Byte() => _bytes[_at++];

        public long Fixed()
        {
            var value = BinaryPrimitives.ReadInt64LittleEndian(_bytes.Slice(_at, 8));
            _at += 8;
            return value;
        }

        public ulong Varint()
        {
            ulong value = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                var b = _bytes[_at++];
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80)
                {
                    return value;
                }
            }

            throw new FormatException("a number runs on");
        }

        /// <summary>A count of items of at least <paramref name="size"/> bytes each: more than the bytes left could hold is not a state.</summary>
        public int Count(int size)
        {
            var count = Varint();
            return count <= (ulong)((_bytes.Length - _at) / size) ? (int)count : throw new FormatException("a count runs past the end");
        }

        public byte[] Bytes()
        {
            var length = checked((int)Varint());
            var bytes = _bytes.Slice(_at, length).ToArray();
            _at += length;
            return bytes;
        }

        public string Text()
        {
            var length = checked((int)Varint());
            var text = Encoding.UTF8.GetString(_bytes.Slice(_at, length));
            _at += length;
            return text;
        }

        public FieldDictionary<object?> Values()
        {
            var count = Count(2);
            if (count == 0)
            {
                return FieldDictionary<object?>.Empty;
            }

            // Written in name order (a field dictionary enumerates so): taken as it is when it still is.
            var names = new string[count];
            var values = new object?[count];
            var ordered = true;
            for (var i = 0; i < count; i++)
            {
                names[i] = Text();
                values[i] = Value();
                ordered &= i == 0 || string.CompareOrdinal(names[i - 1], names[i]) < 0;
            }

            if (ordered)
            {
                return FieldDictionary<object?>.FromOrdered(names, values);
            }

            var builder = FieldDictionary<object?>.Empty.ToBuilder();
            for (var i = 0; i < count; i++)
            {
                builder[names[i]] = values[i];
            }

            return builder.ToImmutable();
        }

        private object? Value()
        {
            switch (Byte())
            {
                case NullValue:
                    return null;
                case LongValue:
                    return Fixed();
                case DoubleValue:
                    return BitConverter.Int64BitsToDouble(Fixed());
                case TextValue:
                    return Text();
                case FalseValue:
                    return false;
                case TrueValue:
                    return true;
                case BytesValue:
                    var length = checked((int)Varint());
                    var bytes = _bytes.Slice(_at, length).ToArray();
                    _at += length;
                    return bytes;
                case ListValue:
                    var count = Count(1);
                    var list = new List<object?>(count);
                    for (var i = 0; i < count; i++)
                    {
                        list.Add(Value());
                    }

                    return list;
                default:
                    throw new FormatException("an unknown value type");
            }
        }
    }
}

/// <summary>One version merged on the fast path: its stamp (time on the common clock, sequence) and the data fields it changed.</summary>
public sealed record FastVersion(Instant Time, long Sequence, FieldDictionary<object?> Changed);
