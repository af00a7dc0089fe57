using System.Buffers.Binary;

namespace DeltaSync.Postgres.Destination;

/// <summary>
/// Counts, while a bulk load relays the source's raw binary COPY stream, what its report and checkpoint need — rows,
/// the newest commit time, rows without a cursor value, rows in the future — by walking the stream's framing and
/// reading only the cursor columns. The same figures an aggregate over the copied table would give
/// (<see cref="BulkLedgerRows.CommitSql"/>), without reading the table again after the copy.
/// </summary>
/// <remarks>
/// The format: an 11-byte signature, a 32-bit flags field and a 32-bit header extension length (then that many
/// bytes); each row a 16-bit field count (-1 ends the stream), each field a 32-bit length (-1 for NULL) and its bytes,
/// all big-endian. Timestamps are 64-bit microseconds and dates 32-bit days since 2000-01-01, the type's largest and
/// smallest values standing for ±infinity. Chunks may split any field anywhere.
/// </remarks>
internal sealed class BinaryCopyTally
{
    private const long PostgresEpochMicros = 946_684_800_000_000;
    private const long MicrosPerDay = 86_400_000_000;
    private static readonly byte[] Signature = [(byte)'P', (byte)'G', (byte)'C', (byte)'O', (byte)'P', (byte)'Y', 0x0a, 0xff, 0x0d, 0x0a, 0x00];

    private readonly int _cursor;
    private readonly int _createdAt;
    private readonly bool _isDate;
    private readonly bool _timestamp;
    private readonly long _futureLimit;

    private State _state = State.Header;
    private readonly byte[] _pending = new byte[19];
    private int _pendingCount;
    private int _field;
    private int _fields;
    private long _skip;
    private long? _cursorValue;
    private long? _createdValue;

    private BinaryCopyTally(int cursor, int createdAt, bool isDate, bool timestamp, long futureLimit)
    {
        _cursor = cursor;
        _createdAt = createdAt;
        _isDate = isDate;
        _timestamp = timestamp;
        _futureLimit = futureLimit;
    }

    private enum State
    {
        Header,
        HeaderExtension,
        RowStart,
        FieldLength,
        FieldBody,
        Trailer,
    }

    public long Rows { get; private set; }

    public long? Newest { get; private set; }

    public long NullCursor { get; private set; }

    public long FutureRows { get; private set; }

    public long? NewestFuture { get; private set; }

    public long CreatedAtFallback { get; private set; }

    /// <summary>Whether the stream's end marker was read.</summary>
    public bool Complete => _state == State.Trailer;

    /// <summary>
    /// A tally for the rows <paramref name="rows"/> describes, copied in the order of its columns (whose base types
    /// <paramref name="baseType"/> gives); null when its cursor is not one this reads (a created_at column of another
    /// type than the cursor's, which SQL's COALESCE would convert).
    /// </summary>
    public static BinaryCopyTally? For(BulkLedgerRows rows, Func<string, string> baseType, long futureLimit)
    {
        var columns = rows.Columns.ToList();
        if (rows.Timestamp is { } cursor)
        {
            var type = baseType(cursor.Name);
            if (cursor.CreatedAt is { } created && baseType(created) != type)
            {
                return null;
            }

            return new BinaryCopyTally(columns.IndexOf(cursor.Name), cursor.CreatedAt is { } c ? columns.IndexOf(c) : -1, cursor.IsDate, timestamp: true, futureLimit);
        }

        return new BinaryCopyTally(rows.Sequence is { } sequence ? columns.IndexOf(sequence) : -1, -1, false, timestamp: false, futureLimit);
    }

    /// <summary>Reads the next part of the stream.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a binary COPY stream.</exception>
    public void Feed(ReadOnlySpan<byte> chunk)
    {
        while (!chunk.IsEmpty)
        {
            switch (_state)
            {
                case State.Header:
                    if (!Gather(ref chunk, 19))
                    {
                        return;
                    }

                    if (!_pending.AsSpan(0, 11).SequenceEqual(Signature))
                    {
                        throw new InvalidDataException("the source's COPY stream does not start with the binary signature");
                    }

                    _skip = BinaryPrimitives.ReadUInt32BigEndian(_pending.AsSpan(15));
                    _state = State.HeaderExtension;
                    break;
                case State.HeaderExtension:
                    if (Skip(ref chunk))
                    {
                        _state = State.RowStart;
                    }

                    break;
                case State.RowStart:
                    if (!Gather(ref chunk, 2))
                    {
                        return;
                    }

                    _fields = BinaryPrimitives.ReadInt16BigEndian(_pending);
                    if (_fields == -1)
                    {
                        _state = State.Trailer;
                        break;
                    }

                    _field = 0;
                    _cursorValue = null;
                    _createdValue = null;
                    _state = _fields == 0 ? EndRow() : State.FieldLength;
                    break;
                case State.FieldLength:
                    if (!Gather(ref chunk, 4))
                    {
                        return;
                    }

                    var length = BinaryPrimitives.ReadInt32BigEndian(_pending);
                    if (length == -1)
                    {
                        _state = NextField();
                        break;
                    }

                    if (length < 0)
                    {
                        throw new InvalidDataException($"the source's COPY stream has a field of length {length}");
                    }

                    _skip = length;
                    _state = State.FieldBody;
                    break;
                case State.FieldBody:
                    if (_field == _cursor || _field == _createdAt)
                    {
                        if (_skip is not (2 or 4 or 8))
                        {
                            throw new InvalidDataException($"the source's COPY stream has a cursor value of {_skip} bytes");
                        }

                        if (!Gather(ref chunk, (int)_skip))
                        {
                            return;
                        }

                        var value = _skip switch
                        {
                            8 => BinaryPrimitives.ReadInt64BigEndian(_pending),
                            4 => BinaryPrimitives.ReadInt32BigEndian(_pending),
                            _ => BinaryPrimitives.ReadInt16BigEndian(_pending),
                        };
                        if (_field == _cursor)
                        {
                            _cursorValue = value;
                        }
                        else
                        {
                            _createdValue = value;
                        }

                        _state = NextField();
                    }
                    else if (Skip(ref chunk))
                    {
                        _state = NextField();
                    }

                    break;
                case State.Trailer:
                    throw new InvalidDataException("the source's COPY stream goes on after its end marker");
            }
        }
    }

    private State NextField() => ++_field == _fields ? EndRow() : State.FieldLength;

    private State EndRow()
    {
        Rows++;
        if (!_timestamp)
        {
            if (_cursor >= 0 && _cursorValue is null)
            {
                NullCursor++;
            }

            return State.RowStart;
        }

        if (_cursorValue is null && _createdValue is not null)
        {
            CreatedAtFallback++;
        }

        if ((_cursorValue ?? _createdValue) is not { } raw)
        {
            NullCursor++;
            return State.RowStart;
        }

        var commit = Micros(raw);
        Newest = Newest is { } newest && newest >= commit ? newest : commit;
        if (commit > _futureLimit)
        {
            FutureRows++;
            NewestFuture = NewestFuture is { } future && future >= commit ? future : commit;
        }

        return State.RowStart;
    }

    /// <summary>As <see cref="BulkLedgerRows.CommitSql"/> computes it: epoch microseconds, ±infinity as the CLR type's bounds.</summary>
    private long Micros(long raw)
    {
        if (_isDate)
        {
            return raw switch
            {
                int.MaxValue => EpochMicros(DateOnly.MaxValue.ToDateTime(TimeOnly.MinValue)),
                int.MinValue => EpochMicros(DateOnly.MinValue.ToDateTime(TimeOnly.MinValue)),
                _ => (raw * MicrosPerDay) + PostgresEpochMicros,
            };
        }

        return raw switch
        {
            long.MaxValue => EpochMicros(DateTime.MaxValue),
            long.MinValue => EpochMicros(DateTime.MinValue),
            _ => raw + PostgresEpochMicros,
        };
    }

    private static long EpochMicros(DateTime value) => (value.Ticks - DateTime.UnixEpoch.Ticks) / 10;

    /// <summary>Collects <paramref name="count"/> bytes into the pending buffer; true once it holds them all.</summary>
    private bool Gather(ref ReadOnlySpan<byte> chunk, int count)
    {
        var take = Math.Min(count - _pendingCount, chunk.Length);
        chunk[..take].CopyTo(_pending.AsSpan(_pendingCount));
        chunk = chunk[take..];
        _pendingCount += take;
        if (_pendingCount < count)
        {
            return false;
        }

        _pendingCount = 0;
        return true;
    }

    /// <summary>Passes over the rest of the current field; true once it is passed.</summary>
    private bool Skip(ref ReadOnlySpan<byte> chunk)
    {
        var take = (int)Math.Min(_skip, chunk.Length);
        chunk = chunk[take..];
        _skip -= take;
        return _skip == 0;
    }
}
