using System.Globalization;
using System.Runtime.CompilerServices;
using DeltaSync.Core.Capture;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using DeltaSync.Core.Time;
using DeltaSync.Sqlite.Raw;
using DeltaSync.Sqlite.Source;
using Microsoft.Data.Sqlite;
using NodaTime;

namespace DeltaSync.Sqlite.Capture;

/// <summary>
/// Timestamp and sequence CDC: an initial snapshot in key order, then a keyset cursor <c>(value, key)</c>.
/// Every pass re-reads a lookback of the tolerance window (the ledger drops what is already applied), and the
/// checkpointed cursor never passes the source's clock minus the safety margin (DESIGN.md, invariant 4).
/// A row whose updated_at is NULL is ordered by its <c>created_at_field</c> when the table has that column and the row a
/// value there; other rows whose cursor column is NULL are compared by row hash on every pass. Unreadable timestamps are
/// dead-lettered.
/// </summary>
internal sealed class SqliteCursorCapture : IChangeCapture
{
    private readonly SqliteConnection _connection;
    private readonly CaptureRequest _request;
    private readonly SqliteRowMapper _mapper;
    private readonly bool _isTimestamp;
    private readonly int _cursorIndex;
    private readonly int _createdAtIndex = -1;
    private readonly string _cursorExpression;
    private readonly DateTimeZone _zone;
    private readonly IClock _clock;

    public SqliteCursorCapture(SqliteConnection connection, CaptureRequest request, bool isTimestamp, string cursorColumn, DateTimeZone zone, IClock clock)
    {
        _connection = connection;
        _request = request;
        _mapper = new SqliteRowMapper(request.Schema, request.Plan.SourceName);
        _isTimestamp = isTimestamp;
        _cursorIndex = request.Schema.IndexOf(cursorColumn);
        if (_cursorIndex < 0)
        {
            throw new Core.Pipeline.SyncException(
                ErrorClass.Fatal,
                $"table '{request.Plan.Table}': {(isTimestamp ? "updated_at_field" : "sequence_field")} '{cursorColumn}' is not a column (columns: {string.Join(", ", request.Schema.Columns.Select(c => c.Name))})");
        }

        var quoted = SqliteSql.Quote(request.Schema.Columns[_cursorIndex].Name);
        if (isTimestamp && request.Plan.CreatedAtField is { } createdAt)
        {
            // A created_at_field the table lacks is fine: those rows are compared by row hash.
            var index = request.Schema.IndexOf(createdAt);
            _createdAtIndex = index == _cursorIndex ? -1 : index;
        }

        _cursorExpression = !isTimestamp ? SqliteTimestampSql.Sequence(quoted)
            : _createdAtIndex < 0 ? SqliteTimestampSql.EpochMilliseconds(quoted)
            : SqliteTimestampSql.EpochMillisecondsOrCreatedAt(quoted, SqliteSql.Quote(request.Schema.Columns[_createdAtIndex].Name));
        _zone = zone;
        _clock = clock;
    }

    private string Kind => _isTimestamp ? CursorPosition.TimestampKind : CursorPosition.SequenceKind;

    /// <summary>Timestamp (true) or sequence cursor.</summary>
    internal bool IsTimestamp => _isTimestamp;

    /// <summary>The cursor column's index in the schema, and the created_at_field's (or -1).</summary>
    internal int CursorIndex => _cursorIndex;

    /// <inheritdoc cref="CursorIndex"/>
    internal int CreatedAtIndex => _createdAtIndex;

    /// <summary>The SQL giving each row's comparable cursor value (NULL where the capture cannot order it).</summary>
    internal string CursorExpression => _cursorExpression;

    /// <summary>The zone zone-less timestamps are read in.</summary>
    internal DateTimeZone Zone => _zone;

    /// <summary>Where a completed snapshot leaves a timestamp cursor: the clock ceiling observed before it started.</summary>
    internal Position SnapshotStart() => new CursorPosition(Kind, _isTimestamp ? Ceiling() : long.MinValue, null).ToPosition();

    /// <summary>Where a completed snapshot leaves a sequence cursor: after the highest value it read.</summary>
    internal Position SequenceDone(long highest) => new CursorPosition(Kind, highest, null).ToPosition();

    /// <summary>The ledger position of a row with cursor value <paramref name="value"/> (see <see cref="RowPosition"/>).</summary>
    internal Position LedgerPosition(long value) => RowPosition(value);

    /// <summary>
    /// A row's own position, recorded in the ledger: a sequence value is kept; a timestamp is already the commit time,
    /// so the marker carries no text (and costs no allocation per row).
    /// </summary>
    private Position RowPosition(long value) =>
        _isTimestamp ? TimestampRow : new CursorPosition(Kind, value, null).ToPosition();

    private static readonly Position TimestampRow = new(CursorPosition.TimestampKind, "");

    public async IAsyncEnumerable<ChangeBatch> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.Yield();
        var resume = _request.Resume;
        CursorPosition cursor;
        if (resume.IsNone || resume.Kind == SnapshotPosition.Kind)
        {
            RecordKey? after = null;
            var then = new CursorPosition(Kind, _isTimestamp ? Ceiling() : long.MinValue, null);
            if (SnapshotPosition.TryParse(resume, out var lastKey, out var thenPosition) && CursorPosition.TryParse(thenPosition, out var parsed))
            {
                after = lastKey;
                then = parsed;
            }

            // The snapshot is one statement, so one read transaction: it holds every change committed before it
            // started. Changes made while it ran are read by the next pass, from the cursor minus the lookback.
            foreach (var batch in Snapshot(after, then, cancellationToken))
            {
                yield return batch;
            }

            if (after is null)
            {
                yield break;
            }

            // A snapshot resumed after an interruption read its remaining keys now, but rows before the resume key may
            // have changed since the interrupted run started: the cursor pass picks them up in this same run.
            cursor = then;
        }
        else if (!CursorPosition.TryParse(resume, out cursor))
        {
            throw new Core.Pipeline.SyncException(ErrorClass.Fatal, $"table '{_request.Plan.Table}': checkpoint position '{resume}' is not a {Kind} cursor");
        }

        var lookback = _isTimestamp ? (long)_request.Plan.ToleranceWindow.TotalMilliseconds : 0;
        var ceiling = _isTimestamp ? Ceiling() : long.MaxValue;
        var reset = _isTimestamp ? null : SequenceReset(cursor);
        if (reset is not null)
        {
            // Every row is below the cursor: read them all again; the ledger writes only what differs.
            cursor = new CursorPosition(Kind, long.MinValue, null);
        }

        foreach (var batch in Incremental(cursor.StartWithLookback(lookback), ceiling, cursor, cancellationToken))
        {
            yield return reset is null ? batch : batch.With(batch.Events, batch.CheckpointPosition, reset);
            reset = null;
        }
    }

    public ValueTask OnCheckpointedAsync(Position position, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>
    /// A sequence cursor above every value the table now holds: the sequence was reset (the table recreated, the
    /// counter restarted) or its newest rows deleted. New rows below the cursor would never be read, so the pass starts
    /// over; returns the warning saying so, or null.
    /// </summary>
    private string? SequenceReset(CursorPosition cursor)
    {
        if (cursor.Value == long.MinValue)
        {
            return null;
        }

        // max() of the raw column: one index probe where the column is indexed (as a cursor column usually is), never
        // the cursor expression evaluated over every row. A text value sorts above every number, so a column holding
        // one gives no integer maximum and is not checked.
        var column = SqliteSql.Quote(_request.Schema.Columns[_cursorIndex].Name);
        using var statement = new RawStatement(_connection.Handle!, $"SELECT max({column}) FROM {SqliteSql.Quote(_request.Schema.Name)}");
        if (!statement.Step() || statement.GetValue(0) is not long max)
        {
            return null;
        }

        return max >= cursor.Value
            ? null
            : $"The {_request.Plan.SequenceField} of '{_request.Plan.Table}' went back (highest now {max}, cursor at {cursor.Value}): the sequence was reset or its newest rows deleted; the table was re-read from the start and rows were compared by content";
    }

    public ValueTask DisposeAsync()
    {
        _connection.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// The newest cursor value a checkpoint may hold: the source's clock minus the safety margin. Zone-less text is
    /// compared as if UTC, so for other zones the smaller of the two readings is used: never ahead of either.
    /// </summary>
    private long Ceiling()
    {
        var bound = _clock.GetCurrentInstant() - _request.Plan.SafetyMargin;
        var utc = bound.ToUnixTimeMilliseconds();
        var local = bound.InZone(_zone).LocalDateTime.InUtc().ToInstant().ToUnixTimeMilliseconds();
        return Math.Min(utc, local);
    }

    private IEnumerable<ChangeBatch> Snapshot(RecordKey? after, CursorPosition then, CancellationToken cancellationToken)
    {
        using var statement = _mapper.OpenInKeyOrder(_connection, after, _cursorExpression);

        var builder = new BatchBuilder(this);
        RecordKey? last = after;
        var highest = then.Value;
        while (statement.Step())
        {
            var values = _mapper.ReadValues(statement);
            Position position;
            if (statement.IsNull(_mapper.ColumnCount))
            {
                position = Position.None;
            }
            else
            {
                var value = statement.GetInt64(_mapper.ColumnCount);
                highest = Math.Max(highest, value);
                position = RowPosition(value);
            }

            last = builder.Add(values, position);
            if (builder.IsFull)
            {
                cancellationToken.ThrowIfCancellationRequested();
                yield return builder.Take(SnapshotPosition.Create(last, then.ToPosition()));
            }
        }

        // The last batch (possibly empty) marks the snapshot done: the checkpoint moves on to the cursor. A sequence
        // continues after the highest value the snapshot saw (SQLite has one writer: later rows get higher values);
        // a timestamp continues from the source clock at the snapshot's start.
        yield return builder.Take((_isTimestamp || after is not null ? then : new CursorPosition(Kind, highest, null)).ToPosition());
    }

    private IEnumerable<ChangeBatch> Incremental(CursorPosition start, long ceiling, CursorPosition resumed, CancellationToken cancellationToken)
    {
        var key = _request.Schema.PrimaryKey;
        var condition = start.Key is null
            ? "__c >= ?1"
            : $"(__c > ?1 OR {SqliteSql.KeyAfter(key, 2, "__c = ?1")})";
        var cursorColumn = _request.Schema.Columns[_cursorIndex].Name;
        var bound = SqliteCursorRange.LowerBound(_connection, _request.Schema.Name, cursorColumn, _isTimestamp, start.Value);
        var inner = _mapper.SelectFrom(_cursorExpression + " AS __c")
            + (bound is null ? "" : $" WHERE {SqliteSql.Quote(cursorColumn)} IS NULL OR {SqliteSql.Quote(cursorColumn)} >= ?99");
        var sql = $"SELECT * FROM ({inner}) WHERE __c IS NULL OR {condition} ORDER BY (__c IS NULL), __c, {SqliteSql.KeyOrder(key)}";
        using var statement = new RawStatement(_connection.Handle!, sql);
        statement.Bind(1, start.Value);
        if (bound is not null)
        {
            statement.Bind(99, bound);
        }

        if (start.Key is not null)
        {
            for (var i = 0; i < start.Key.Values.Count; i++)
            {
                statement.Bind(i + 2, start.Key.Values[i]);
            }
        }

        var builder = new BatchBuilder(this);
        var checkpoint = resumed.CapAt(ceiling);
        var sawAny = false;
        while (statement.Step())
        {
            sawAny = true;
            var values = _mapper.ReadValues(statement);
            Position position;
            if (statement.IsNull(_mapper.ColumnCount))
            {
                position = Position.None;
            }
            else
            {
                var cursor = new CursorPosition(Kind, statement.GetInt64(_mapper.ColumnCount), null);
                position = RowPosition(cursor.Value);
                var candidate = new CursorPosition(Kind, cursor.Value, _request.Schema.KeyOf(values)).CapAt(ceiling);
                if (candidate.Value > checkpoint.Value || (candidate.Value == checkpoint.Value && candidate.Key is not null && (checkpoint.Key is null || candidate.Key.CompareTo(checkpoint.Key) > 0)))
                {
                    checkpoint = candidate;
                }
            }

            builder.Add(values, position);
            if (builder.IsFull)
            {
                cancellationToken.ThrowIfCancellationRequested();
                yield return builder.Take(checkpoint.ToPosition());
            }
        }

        if (builder.Count > 0 || !sawAny)
        {
            yield return builder.Take(checkpoint.ToPosition());
        }
    }

    /// <summary>Accumulates one batch: events, dead letters, the high-water mark and NULL-cursor counts.</summary>
    private sealed class BatchBuilder
    {
        private readonly SqliteCursorCapture _owner;
        private List<ChangeEvent> _events;
        private List<DeadLetter> _deadLetters = [];
        private int _nullCursor;
        private int _createdAtFallback;
        private int _dstGap;
        private int _dstOverlap;
        private int _rows;
        private Instant? _highWaterMark;

        public BatchBuilder(SqliteCursorCapture owner)
        {
            _owner = owner;
            _events = new List<ChangeEvent>(owner._request.BatchSize);
            _highWaterMark = owner._request.HighWaterMark;
        }

        public int Count => _rows;

        public bool IsFull => _rows >= _owner._request.BatchSize;

        public RecordKey Add(object?[] values, Position position)
        {
            _rows++;
            var raw = values[_owner._cursorIndex];
            Instant? commitTime = null;
            if (raw is null)
            {
                if (!position.IsNone && _owner._createdAtIndex >= 0
                    && SourceTimestamp.TryParse(values[_owner._createdAtIndex], _owner._zone, out var created, out var createdMapping, out _))
                {
                    _createdAtFallback++;
                    commitTime = created;
                    Note(created, createdMapping);
                }
                else
                {
                    _nullCursor++;
                    position = Position.None;
                }
            }
            else if (_owner._isTimestamp)
            {
                var parsed = SourceTimestamp.TryParse(raw, _owner._zone, out var instant, out var mapping, out var problem);
                if (!parsed || position.IsNone)
                {
                    var reason = parsed
                        ? $"{_owner._request.Plan.UpdatedAtField}: '{raw}' is in a format SQLite's date functions cannot order; store ISO-8601 or epoch numbers"
                        : $"{_owner._request.Plan.UpdatedAtField}: {problem}";
                    var dead = _owner._mapper.DeadLetter(_owner._request.Plan.Stream, values, reason, position, _owner._clock.GetCurrentInstant());
                    _deadLetters.Add(dead);
                    return _owner._request.Schema.KeyOf(values);
                }

                commitTime = instant;
                Note(instant, mapping);
            }
            else if (position.IsNone)
            {
                var dead = _owner._mapper.DeadLetter(
                    _owner._request.Plan.Stream,
                    values,
                    $"{_owner._request.Plan.SequenceField}: '{Convert.ToString(raw, CultureInfo.InvariantCulture)}' is not a whole number",
                    position,
                    _owner._clock.GetCurrentInstant());
                _deadLetters.Add(dead);
                return _owner._request.Schema.KeyOf(values);
            }

            var change = _owner._mapper.Upsert(values, position, commitTime);
            _events.Add(change);
            return change.Key;
        }

        /// <summary>Moves the high-water mark and counts zone-less values the DST rule placed.</summary>
        private void Note(Instant commitTime, LocalTimeMapping mapping)
        {
            if (_highWaterMark is null || commitTime > _highWaterMark)
            {
                _highWaterMark = commitTime;
            }

            if (mapping == LocalTimeMapping.Gap)
            {
                _dstGap++;
            }
            else if (mapping == LocalTimeMapping.Overlap)
            {
                _dstOverlap++;
            }
        }

        public ChangeBatch Take(Position checkpoint)
        {
            var batch = new ChangeBatch(_owner._request.Schema, _events, checkpoint)
            {
                DeadLetters = _deadLetters,
                HighWaterMark = _highWaterMark,
                NullCursorRows = _nullCursor,
                CreatedAtFallbackRows = _createdAtFallback,
                DstGapRows = _dstGap,
                DstOverlapRows = _dstOverlap,
            };
            _events = new List<ChangeEvent>(_owner._request.BatchSize);
            _deadLetters = [];
            _nullCursor = 0;
            _createdAtFallback = 0;
            _dstGap = 0;
            _dstOverlap = 0;
            _rows = 0;
            return batch;
        }
    }
}
