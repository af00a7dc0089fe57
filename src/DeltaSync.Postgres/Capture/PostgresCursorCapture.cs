using System.Runtime.CompilerServices;
using DeltaSync.Core.Capture;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.Time;
using DeltaSync.Postgres.Source;
using Npgsql;
using NodaTime;

namespace DeltaSync.Postgres.Capture;

/// <summary>
/// Timestamp and sequence CDC on PostgreSQL: an initial snapshot in key order, then a keyset cursor on the column, each
/// pass in one REPEATABLE READ snapshot. Cursors are commit-aware (<see cref="CommitHorizon"/>): a timestamp cursor
/// never passes the start of the oldest open transaction (nor the server clock minus the safety margin), and a sequence
/// cursor only moves to values every still-invisible transaction must exceed (<see cref="SequenceCursor"/>).
/// Timestamp cursor values are microseconds since the epoch of the column's own value (zone-less columns as written).
/// A row whose updated_at is NULL is ordered by its <c>created_at_field</c> when the table has that column with the same
/// type (<c>COALESCE(updated_at, created_at)</c>); rows with neither are compared by row hash on every pass.
/// </summary>
internal sealed class PostgresCursorCapture : IChangeCapture
{
    private static readonly Position TimestampRow = new(CursorPosition.TimestampKind, "");

    private readonly NpgsqlDataSource _data;
    private readonly CaptureRequest _request;
    private readonly PostgresRowMapper _mapper;
    private readonly bool _isTimestamp;
    private readonly PgColumn _cursor;
    private readonly int _cursorIndex;
    private readonly int _createdAtIndex = -1;
    private readonly string _order;
    private readonly DateTimeZone _zone;
    private readonly IClock _clock;
    private readonly string _user;

    public PostgresCursorCapture(NpgsqlDataSource data, CaptureRequest request, PgTable table, bool isTimestamp, string cursorColumn, DateTimeZone zone, IClock clock, string user)
    {
        _data = data;
        _request = request;
        _mapper = new PostgresRowMapper(table, request.Schema, request.Plan.SourceName);
        _isTimestamp = isTimestamp;
        _cursorIndex = request.Schema.IndexOf(cursorColumn);
        var field = isTimestamp ? "updated_at_field" : "sequence_field";
        if (_cursorIndex < 0)
        {
            throw new SyncException(
                ErrorClass.Fatal,
                $"table '{request.Plan.Table}': {field} '{cursorColumn}' is not a column (columns: {string.Join(", ", request.Schema.Columns.Select(c => c.Name))})");
        }

        _cursor = _mapper.Column(request.Schema.Columns[_cursorIndex].Name);
        var ok = isTimestamp
            ? !_cursor.IsArray && _cursor.BaseType is "timestamptz" or "timestamp" or "date"
            : !_cursor.IsArray && _cursor.BaseType is "int2" or "int4" or "int8";
        if (!ok)
        {
            throw new SyncException(
                ErrorClass.Fatal,
                $"table '{request.Plan.Table}': {field} '{_cursor.Name}' is {_cursor.TypeName}; PostgreSQL {(isTimestamp ? "timestamp cursors need timestamptz, timestamp or date" : "sequence cursors need smallint, integer or bigint")}");
        }

        _zone = zone;
        _clock = clock;
        _user = user;
        _order = PostgresSql.Quote(_cursor.Name);
        if (isTimestamp && request.Plan.CreatedAtField is { } createdAt && request.Schema.IndexOf(createdAt) is var index and >= 0 && index != _cursorIndex)
        {
            // Only a column of the cursor's own type: its values are then comparable with the cursor's. Otherwise (or
            // without the column) rows with NULL updated_at are compared by row hash, as they always were.
            var created = _mapper.Column(request.Schema.Columns[index].Name);
            if (!created.IsArray && created.BaseType == _cursor.BaseType)
            {
                _createdAtIndex = index;
                _order = $"COALESCE({_order}, {PostgresSql.Quote(created.Name)})";
            }
        }
    }

    /// <summary>Whether this is a timestamp cursor (else a sequence cursor).</summary>
    internal bool IsTimestamp => _isTimestamp;

    /// <summary>The cursor column.</summary>
    internal PgColumn Cursor => _cursor;

    /// <summary>The created_at column that orders rows whose cursor is NULL, when it applies (same type as the cursor).</summary>
    internal PgColumn? CreatedAt => _createdAtIndex < 0 ? null : _mapper.Column(_request.Schema.Columns[_createdAtIndex].Name);

    /// <summary>The zone zone-less cursor values are read in.</summary>
    internal DateTimeZone Zone => _zone;

    /// <summary>Where a sequence snapshot that saw <paramref name="highest"/> at <paramref name="snapshotMicros"/> leaves the cursor (see <see cref="SnapshotAsync"/>).</summary>
    internal static Position SequenceDone(Position then, long snapshotMicros, long? highest) =>
        highest is { } max && SequenceCursor.TryParse(then, out var sequence) ? sequence.Record(snapshotMicros, max).ToPosition() : then;

    public async IAsyncEnumerable<ChangeBatch> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var connection = await PostgresConnectionFactory.OpenAsync(_data, "source", cancellationToken).ConfigureAwait(false);
        var resume = _request.Resume;
        if (resume.IsNone || resume.Kind == SnapshotPosition.Kind)
        {
            RecordKey? after = null;
            Position then;
            if (SnapshotPosition.TryParse(resume, out var lastKey, out var thenPosition) && !thenPosition.IsNone)
            {
                after = lastKey;
                then = thenPosition;
            }
            else
            {
                then = await ContinuationAsync(connection, cancellationToken).ConfigureAwait(false);
            }

            await foreach (var batch in SnapshotAsync(connection, after, then, cancellationToken).ConfigureAwait(false))
            {
                yield return batch;
            }

            if (after is null)
            {
                yield break;
            }

            // A resumed snapshot read its remaining keys now; rows before the resume key that changed since the first
            // attempt are picked up by a pass from the continuation, in this same run.
            resume = then;
        }

        var passes = _isTimestamp ? TimestampPassAsync(connection, resume, cancellationToken) : SequencePassAsync(connection, resume, cancellationToken);
        await foreach (var batch in passes.ConfigureAwait(false))
        {
            yield return batch;
        }
    }

    public ValueTask OnCheckpointedAsync(Position position, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>Where the cursor continues once the snapshot about to start is done (observed before it starts).</summary>
    internal async Task<Position> ContinuationAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        if (_isTimestamp)
        {
            var horizon = await CommitHorizon.ObserveAsync(connection, cancellationToken).ConfigureAwait(false);
            return new CursorPosition(CursorPosition.TimestampKind, Ceiling(horizon), null).ToPosition();
        }

        // The highest value now, in a snapshot of its own, then the horizon: if nothing invisible to the coming
        // snapshot started before that first look, every row it misses has a higher value.
        var (micros, max) = await HighestAsync(connection, cancellationToken).ConfigureAwait(false);
        var bound = await CommitHorizon.ObserveAsync(connection, cancellationToken).ConfigureAwait(false);
        return SequenceCursor.Start.Record(micros, max).Advance(Micros(bound.Bound)).ToPosition();
    }

    private async Task<(long Micros, long Max)> HighestAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand($"SELECT clock_timestamp(), (SELECT max({PostgresSql.Quote(_cursor.Name)}) FROM {_mapper.Table.QualifiedName})", connection, transaction);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        var micros = Micros(Instant.FromDateTimeUtc(reader.GetFieldValue<DateTime>(0)));
        var max = reader.IsDBNull(1) ? long.MinValue : Convert.ToInt64(reader.GetValue(1), System.Globalization.CultureInfo.InvariantCulture);
        return (micros, max);
    }

    private async IAsyncEnumerable<ChangeBatch> SnapshotAsync(NpgsqlConnection connection, RecordKey? after, Position then, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
        var snapshotMicros = await SnapshotTimeAsync(connection, transaction, cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand { Connection = connection, Transaction = transaction };
        var where = after is null ? "" : " WHERE " + _mapper.KeyAfter(after, command);
        command.CommandText = $"SELECT {_mapper.SelectList(_request.SourceDigests)} FROM {_mapper.Table.QualifiedName}{where} ORDER BY {_mapper.KeyOrder()}";
        var builder = new BatchBuilder(this);
        var last = after;
        var highest = long.MinValue;
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var values = _mapper.ReadValues(reader);
                var value = RowCursorValue(values);
                if (value is { } v)
                {
                    highest = Math.Max(highest, v);
                }

                last = builder.Add(values, value, _mapper.ReadDigest(reader));
                if (builder.IsFull)
                {
                    yield return builder.Take(SnapshotPosition.Create(last, then));
                }
            }
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        var done = then;
        if (!_isTimestamp && after is null && SequenceCursor.TryParse(then, out var sequence) && highest != long.MinValue)
        {
            done = sequence.Record(snapshotMicros, highest).ToPosition();
        }

        yield return builder.Take(done);
    }

    private async IAsyncEnumerable<ChangeBatch> TimestampPassAsync(NpgsqlConnection connection, Position resume, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (!CursorPosition.TryParse(resume, out var cursor) || cursor.Kind != CursorPosition.TimestampKind)
        {
            throw new SyncException(ErrorClass.Fatal, $"table '{_request.Plan.Table}': checkpoint position '{resume}' is not a timestamp cursor");
        }

        var horizon = await CommitHorizon.ObserveAsync(connection, cancellationToken).ConfigureAwait(false);
        var ceiling = Ceiling(horizon);
        var warning = horizon.Warning(_request.Plan.Table, _user);
        var start = cursor.StartWithLookback((long)_request.Plan.ToleranceWindow.TotalTicks / 10);
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand { Connection = connection, Transaction = transaction };
        var column = _order;
        command.Parameters.Add(new NpgsqlParameter { Value = FromMicros(start.Value) });
        var condition = start.Key is null
            ? $"{column} >= $1"
            : $"({column} > $1 OR ({column} = $1 AND {_mapper.KeyAfter(start.Key, command)}))";
        command.CommandText = $"SELECT {_mapper.SelectList(_request.SourceDigests)} FROM {_mapper.Table.QualifiedName} WHERE {column} IS NULL OR {condition} ORDER BY {column} NULLS LAST, {_mapper.KeyOrder()}";
        var builder = new BatchBuilder(this) { Warning = warning };
        var checkpoint = cursor.CapAt(ceiling);
        var sawAny = false;
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                sawAny = true;
                var values = _mapper.ReadValues(reader);
                var value = RowCursorValue(values);
                builder.Add(values, value, _mapper.ReadDigest(reader));
                if (value is { } v)
                {
                    var candidate = new CursorPosition(CursorPosition.TimestampKind, v, _request.Schema.KeyOf(values)).CapAt(ceiling);
                    if (candidate.Value > checkpoint.Value || (candidate.Value == checkpoint.Value && candidate.Key is not null && (checkpoint.Key is null || candidate.Key.CompareTo(checkpoint.Key) > 0)))
                    {
                        checkpoint = candidate;
                    }
                }

                if (builder.IsFull)
                {
                    yield return builder.Take(checkpoint.ToPosition());
                }
            }
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        if (builder.Count > 0 || !sawAny)
        {
            yield return builder.Take(checkpoint.ToPosition());
        }
    }

    private async IAsyncEnumerable<ChangeBatch> SequencePassAsync(NpgsqlConnection connection, Position resume, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (!SequenceCursor.TryParse(resume, out var cursor))
        {
            throw new SyncException(ErrorClass.Fatal, $"table '{_request.Plan.Table}': checkpoint position '{resume}' is not a sequence cursor");
        }

        string? reset = null;
        if (cursor.Value != long.MinValue)
        {
            await using var highest0 = new NpgsqlCommand($"SELECT max({PostgresSql.Quote(_cursor.Name)})::bigint FROM {_mapper.Table.QualifiedName}", connection);
            if (await highest0.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is long max && max < cursor.Value)
            {
                // Every row is below the cursor: the sequence was reset (or its newest rows deleted). New rows there
                // would never be read, so the pass starts over; the ledger writes only what differs.
                reset = $"The {_request.Plan.SequenceField} of '{_request.Plan.Table}' went back (highest now {max}, cursor at {cursor.Value}): the sequence was reset or its newest rows deleted; the table was re-read from the start and rows were compared by content";
                cursor = SequenceCursor.Start;
            }
        }

        var horizon = await CommitHorizon.ObserveAsync(connection, cancellationToken).ConfigureAwait(false);
        var next = cursor.Advance(Micros(horizon.Bound));
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
        var snapshotMicros = await SnapshotTimeAsync(connection, transaction, cancellationToken).ConfigureAwait(false);
        await using var command = new NpgsqlCommand { Connection = connection, Transaction = transaction };
        var column = PostgresSql.Quote(_cursor.Name);
        command.Parameters.Add(new NpgsqlParameter { Value = cursor.Value == long.MinValue ? long.MinValue : cursor.Value });
        command.CommandText = $"SELECT {_mapper.SelectList(_request.SourceDigests)} FROM {_mapper.Table.QualifiedName} WHERE {column} IS NULL OR {column} >= $1 ORDER BY {column} NULLS LAST, {_mapper.KeyOrder()}";
        var builder = new BatchBuilder(this) { Warning = reset ?? horizon.Warning(_request.Plan.Table, _user) };
        var highest = long.MinValue;
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                var values = _mapper.ReadValues(reader);
                var value = RowCursorValue(values);
                if (value is { } v)
                {
                    highest = Math.Max(highest, v);
                }

                builder.Add(values, value, _mapper.ReadDigest(reader));
                if (builder.IsFull)
                {
                    // Mid-pass the previous cursor stands: the new one holds only once this whole pass is applied.
                    yield return builder.Take(resume);
                }
            }
        }

        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        var done = highest == long.MinValue ? next : next.Record(snapshotMicros, highest);
        yield return builder.Take(done.ToPosition());
    }

    /// <summary>A server time no earlier than the snapshot of the transaction (its first statement takes the snapshot).</summary>
    internal static async Task<long> SnapshotTimeAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand("SELECT clock_timestamp()", connection, transaction);
        var now = (DateTime)(await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false))!;
        return Micros(Instant.FromDateTimeUtc(now));
    }

    /// <summary>
    /// The newest timestamp cursor a checkpoint may hold: the horizon's bound minus the safety margin, in the column's
    /// terms. Zone-less columns are compared as written, so the smallest reading over UTC, the configured zone and the
    /// server session's zone is used: never ahead of any of them.
    /// </summary>
    private long Ceiling(CommitHorizon horizon)
    {
        var bound = horizon.Bound - _request.Plan.SafetyMargin;
        if (_cursor.BaseType == "timestamptz")
        {
            return Micros(bound);
        }

        var readings = new List<long> { Micros(bound), Micros(bound.InZone(_zone).LocalDateTime.InUtc().ToInstant()) };
        if (DateTimeZoneProviders.Tzdb.GetZoneOrNull(horizon.SessionTimeZone) is { } session)
        {
            readings.Add(Micros(bound.InZone(session).LocalDateTime.InUtc().ToInstant()));
        }

        var ceiling = readings.Min();
        return _cursor.BaseType == "date" ? ceiling - (((ceiling % MicrosPerDay) + MicrosPerDay) % MicrosPerDay) : ceiling;
    }

    private const long MicrosPerDay = 86_400_000_000L;

    private static long Micros(Instant instant) => instant.ToUnixTimeTicks() / 10;

    /// <summary>The row's cursor value, from created_at when updated_at is NULL and the fallback applies.</summary>
    private long? RowCursorValue(object?[] values) =>
        values[_cursorIndex] is null && _createdAtIndex >= 0 ? CursorValue(values[_createdAtIndex]) : CursorValue(values[_cursorIndex]);

    /// <summary>A row's cursor column value as the cursor orders it (an infinity as the type's CLR extreme).</summary>
    private object? Bound(object? raw) => PgDateTimes.CursorBound(raw, _cursor.BaseType);

    /// <summary>The row's cursor value: microseconds of the timestamp as written, or the sequence number.</summary>
    private long? CursorValue(object? raw) => Bound(raw) switch
    {
        null => null,
        long l => l,
        DateTime t => (t.Ticks - DateTime.UnixEpoch.Ticks) / 10,
        DateOnly d => (d.ToDateTime(TimeOnly.MinValue).Ticks - DateTime.UnixEpoch.Ticks) / 10,
        _ => null,
    };

    private object FromMicros(long micros)
    {
        var ticks = DateTime.UnixEpoch.Ticks + (micros * 10);
        ticks = Math.Clamp(ticks, DateTime.MinValue.Ticks, DateTime.MaxValue.Ticks);
        return _cursor.BaseType switch
        {
            "timestamptz" => new DateTime(ticks, DateTimeKind.Utc),
            "date" => DateOnly.FromDateTime(new DateTime(ticks, DateTimeKind.Unspecified)),
            _ => new DateTime(ticks, DateTimeKind.Unspecified),
        };
    }

    /// <summary>
    /// The commit time a row's cursor value stands for: zone-less values in the configured zone, by
    /// <see cref="LocalTimeResolver"/>'s DST rule (<paramref name="mapping"/> says when it was needed).
    /// </summary>
    private Instant? CommitTime(object? raw, out LocalTimeMapping mapping)
    {
        mapping = LocalTimeMapping.Unique;
        return Bound(raw) switch
        {
            DateTime { Kind: DateTimeKind.Utc } t => Instant.FromDateTimeUtc(t),
            DateTime t => LocalTimeResolver.Resolve(LocalDateTime.FromDateTime(t), _zone, out mapping),
            DateOnly d => LocalTimeResolver.Resolve(LocalDateTime.FromDateTime(d.ToDateTime(TimeOnly.MinValue)), _zone, out mapping),
            _ => null,
        };
    }

    /// <summary>Accumulates one batch: events, the high-water mark and NULL-cursor counts.</summary>
    private sealed class BatchBuilder
    {
        private readonly PostgresCursorCapture _owner;
        private List<ChangeEvent> _events;
        private int _nullCursor;
        private int _createdAtFallback;
        private int _dstGap;
        private int _dstOverlap;
        private Instant? _highWaterMark;

        public BatchBuilder(PostgresCursorCapture owner)
        {
            _owner = owner;
            _events = new List<ChangeEvent>(owner._request.BatchSize);
            _highWaterMark = owner._request.HighWaterMark;
        }

        public string? Warning { get; init; }

        public int Count => _events.Count;

        public bool IsFull => _events.Count >= _owner._request.BatchSize;

        public RecordKey Add(object?[] values, long? cursorValue, long? digest)
        {
            Position position;
            Instant? commitTime = null;
            if (cursorValue is not { } value)
            {
                _nullCursor++;
                position = Position.None;
            }
            else if (_owner._isTimestamp)
            {
                position = TimestampRow;
                var raw = values[_owner._cursorIndex];
                if (raw is null)
                {
                    _createdAtFallback++;
                    raw = values[_owner._createdAtIndex];
                }

                commitTime = _owner.CommitTime(raw, out var mapping);
                if (commitTime is { } t && (_highWaterMark is null || t > _highWaterMark))
                {
                    _highWaterMark = t;
                }

                _dstGap += mapping == LocalTimeMapping.Gap ? 1 : 0;
                _dstOverlap += mapping == LocalTimeMapping.Overlap ? 1 : 0;
            }
            else
            {
                position = new CursorPosition(CursorPosition.SequenceKind, value, null).ToPosition();
            }

            var change = _owner._mapper.Upsert(values, position, commitTime, digest);
            _events.Add(change);
            return change.Key;
        }

        public ChangeBatch Take(Position checkpoint)
        {
            var batch = new ChangeBatch(_owner._request.Schema, _events, checkpoint)
            {
                HighWaterMark = _highWaterMark,
                NullCursorRows = _nullCursor,
                CreatedAtFallbackRows = _createdAtFallback,
                DstGapRows = _dstGap,
                DstOverlapRows = _dstOverlap,
                Warnings = Warning is null ? [] : [Warning],
            };
            _events = new List<ChangeEvent>(_owner._request.BatchSize);
            _nullCursor = 0;
            _createdAtFallback = 0;
            _dstGap = 0;
            _dstOverlap = 0;
            return batch;
        }
    }
}
