using System.IO.Hashing;
using System.Text;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.Time;
using DeltaSync.Sqlite.Raw;
using NodaTime;
using SQLitePCL;
using System.Runtime.InteropServices;

namespace DeltaSync.Sqlite.Capture;

/// <summary>
/// The source half of a SQLite → SQLite bulk load: the initial snapshot a cursor capture would take, as SQL over the
/// source table attached to the destination's connection, with SQL functions that compute inside SQLite — from SQLite's
/// own buffers, through the engine's code — what that snapshot would have recorded per row: the ledger key
/// (<see cref="KeyEncoding"/>), the row hash (<see cref="RowHash"/>), the commit time or sequence position, and the
/// counts the report carries (rows whose created_at stood in, rows without a cursor value, future stamps, DST).
/// A row the capture would dead-letter (a timestamp it cannot read) stops the load: the pipeline then loads the
/// table itself and dead-letters that row with its reason.
/// </summary>
internal sealed class SqliteSnapshotCopy : IDisposable
{
    /// <summary>The schema name the source database is attached under.</summary>
    public const string Attached = "deltasync_bulk_source";

    private readonly SqliteCursorCapture _capture;
    private readonly TableSchema _schema;
    private readonly XxHash64 _hash = new();
    private readonly object?[] _key;
    private readonly List<System.Runtime.InteropServices.GCHandle> _handles = [];
    private char[] _chars = new char[256];

    public SqliteSnapshotCopy(string sourcePath, SqliteCursorCapture capture, CaptureRequest request)
    {
        SourcePath = sourcePath;
        _capture = capture;
        _schema = request.Schema;
        _key = new object?[_schema.PrimaryKey.Count];
    }

    /// <summary>The source database file, attached read-only in spirit: only SELECTs run against it.</summary>
    public string SourcePath { get; }

    /// <summary>Rows the capture would have dead-lettered (the first reason), which stop the load.</summary>
    public string? Unreadable { get; private set; }

    public long NullCursorRows { get; private set; }

    public long CreatedAtFallbackRows { get; private set; }

    public long DstGapRows { get; private set; }

    public long DstOverlapRows { get; private set; }

    public long FutureRows { get; private set; }

    public Instant? NewestFuture { get; private set; }

    public Instant? HighWaterMark { get; private set; }

    /// <summary>Commit times beyond this are counted as future stamps; null: not counted.</summary>
    public Instant? FutureLimit { get; init; }

    /// <summary>Whether the cursor is a sequence, whose continuation the first chunk reads (<see cref="HighestSequenceSql"/>).</summary>
    public bool IsSequence => !_capture.IsTimestamp;

    /// <summary>Where the capture continues from a completed snapshot begun now (read before the copy starts).</summary>
    public Position Start() => _capture.SnapshotStart();

    /// <summary>
    /// Where the capture continues once every chunk is copied: a timestamp from <paramref name="start"/>; a sequence after
    /// <paramref name="highestAtFirstChunk"/>, the highest value when the first chunk began. Chunks read successive
    /// snapshots, and rows written meanwhile get higher values (SQLite has one writer), so the cursor pass reads them
    /// whichever chunk's key range they fell into; the ledger drops those a later chunk copied already.
    /// </summary>
    public Position Done(Position start, long? highestAtFirstChunk) =>
        _capture.IsTimestamp ? start : _capture.SequenceDone(highestAtFirstChunk ?? long.MinValue);

    /// <summary>The highest sequence value of the source table, as the capture normalizes it.</summary>
    public string HighestSequenceSql => $"SELECT max({_capture.CursorExpression}) FROM {SourceTable}";

    /// <summary>The source table, attached.</summary>
    public string SourceTable => $"{Attached}.{SqliteSql.Quote(_schema.Name)}";

    /// <summary>
    /// <c>INSERT INTO ledger … SELECT</c> of the entries of the source rows matching <paramref name="range"/> (scope id as
    /// <c>?1</c>, the range's parameters after it).
    /// </summary>
    public string LedgerInsertSql(string ledgerTable, string range)
    {
        var columns = SqliteSql.ColumnList(_schema.Columns.Select(c => c.Name));
        var keys = SqliteSql.ColumnList(_schema.PrimaryKey);
        var cursor = SqliteSql.Quote(_schema.Columns[_capture.CursorIndex].Name);
        var created = _capture.CreatedAtIndex < 0 ? "NULL" : SqliteSql.Quote(_schema.Columns[_capture.CreatedAtIndex].Name);
        var (position, commit) = _capture.IsTimestamp
            ? ("NULL", $"deltasync_bulk_commit({cursor}, __c, {created})")
            : ($"deltasync_bulk_position({cursor}, __c)", "NULL");
        return $"INSERT INTO main.{ledgerTable} (scope_id, key, position, commit_us, row_hash, deleted) " +
            $"SELECT ?1, deltasync_bulk_key({keys}), {position}, {commit}, deltasync_bulk_hash({columns}), 0 " +
            $"FROM (SELECT {columns}, {_capture.CursorExpression} AS __c FROM {SourceTable} WHERE {range})";
    }

    /// <summary>
    /// A query telling whether any row has a NULL in a key column, or null when none can (every key column NOT NULL). A
    /// NULL compares to no bound, so a table holding one is copied in one chunk. (An INTEGER PRIMARY KEY is the rowid and
    /// never NULL; a configured primary_key of the same type may be.)
    /// </summary>
    public string? NullKeySql
    {
        get
        {
            var nullable = _schema.PrimaryKey.Where(k => _schema.Columns[_schema.IndexOf(k)].IsNullable).ToList();
            return nullable.Count == 0
                ? null
                : $"SELECT EXISTS (SELECT 1 FROM {SourceTable} WHERE {string.Join(" OR ", nullable.Select(k => SqliteSql.Quote(k) + " IS NULL"))})";
        }
    }

    /// <summary>
    /// The key range of one chunk: after the previous chunk's last key (parameters from <paramref name="lower"/>, or no
    /// lower bound) and up to its own last key (parameters from <paramref name="upper"/>, or no upper bound). The upper
    /// bound leads with the first key column alone, so SQLite stops its index (or rowid) range there.
    /// </summary>
    public string RangeSql(int? lower, int? upper)
    {
        var key = _schema.PrimaryKey;
        var parts = new List<string>();
        if (lower is { } from)
        {
            parts.Add(SqliteSql.KeyAfter(key, from));
        }

        if (upper is { } to)
        {
            parts.Add($"{SqliteSql.Quote(key[0])} <= ?{to} COLLATE BINARY");
            if (key.Count > 1)
            {
                parts.Add($"NOT {SqliteSql.KeyAfter(key, to)}");
            }
        }

        return parts.Count == 0 ? "1" : string.Join(" AND ", parts);
    }

    /// <summary>
    /// The key of the <paramref name="rows"/>-th row after the lower bound (<c>?1…</c>), in key order, and of the row after
    /// it when there is one (none: the chunk reaches the end of the table).
    /// </summary>
    public string ChunkEndSql(bool hasLower, long rows) =>
        $"SELECT {SqliteSql.ColumnList(_schema.PrimaryKey)} FROM {SourceTable}" +
        (hasLower ? $" WHERE {SqliteSql.KeyAfter(_schema.PrimaryKey, 1)}" : "") +
        $" ORDER BY {SqliteSql.KeyOrder(_schema.PrimaryKey)} LIMIT 2 OFFSET {rows - 1}";

    /// <summary>Registers the functions <see cref="LedgerInsertSql"/> calls on <paramref name="db"/>.</summary>
    public unsafe void Register(sqlite3 db)
    {
        Unregister(db);
        foreach (var (name, arguments, kind) in Functions())
        {
            _handles.Add(SqliteNativeFunctions.Register(db, name, arguments, new Call(this, kind), &Dispatch));
        }
    }

    /// <summary>Removes the functions again (the writer connection outlives the load).</summary>
    public void Unregister(sqlite3 db)
    {
        var removed = true;
        foreach (var (name, arguments, _) in Functions())
        {
            removed &= SqliteNativeFunctions.Remove(db, name, arguments);
        }

        if (!removed)
        {
            // SQLite refuses to drop a function while a statement runs; it may still call it, so its state must live on.
            return;
        }

        foreach (var handle in _handles)
        {
            handle.Free();
        }

        _handles.Clear();
    }

    public void Dispose() => _capture.DisposeAsync().AsTask().GetAwaiter().GetResult();

    private IEnumerable<(string Name, int Arguments, FunctionKind Kind)> Functions() =>
    [
        ("deltasync_bulk_key", _key.Length, FunctionKind.Key),
        ("deltasync_bulk_hash", _schema.Columns.Count, FunctionKind.Hash),
        ("deltasync_bulk_commit", 3, FunctionKind.Commit),
        ("deltasync_bulk_position", 2, FunctionKind.Position),
    ];

    /// <summary>SQLite calls this once per row and function. An exception must not unwind into SQLite: it fails the statement instead.</summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(System.Runtime.CompilerServices.CallConvCdecl)])]
    private static unsafe void Dispatch(nint context, int count, nint* args)
    {
        try
        {
            var call = SqliteNativeFunctions.State<Call>(context);
            var values = new ReadOnlySpan<nint>(args, count);
            switch (call.Kind)
            {
                case FunctionKind.Key:
                    call.Copy.Key(context, values);
                    break;
                case FunctionKind.Hash:
                    call.Copy.Hash(context, values);
                    break;
                case FunctionKind.Commit:
                    call.Copy.Commit(context, values);
                    break;
                default:
                    call.Copy.SequencePosition(context, values);
                    break;
            }
        }
        catch (Exception e)
        {
            SqliteNativeFunctions.ResultError(context, e.Message);
        }
    }

    private void Key(nint context, ReadOnlySpan<nint> args)
    {
        if (args.Length == 1 && SqliteNativeFunctions.ValueType(args[0]) == SqliteNativeFunctions.Integer)
        {
            Span<byte> encoded = stackalloc byte[KeyEncoding.IntegerKeyLength];
            KeyEncoding.EncodeInteger(SqliteNativeFunctions.ValueInt64(args[0]), encoded);
            SqliteNativeFunctions.ResultBlob(context, encoded);
            return;
        }

        for (var i = 0; i < args.Length; i++)
        {
            _key[i] = SqliteNativeFunctions.Value(args[i]);
        }

        SqliteNativeFunctions.ResultBlob(context, KeyEncoding.Encode(_key));
    }

    /// <summary><see cref="RowHash.Compute"/> over the values the capture's reader would build (text decoded as it decodes it).</summary>
    private void Hash(nint context, ReadOnlySpan<nint> args)
    {
        _hash.Reset();
        foreach (var value in args)
        {
            switch (SqliteNativeFunctions.ValueType(value))
            {
                case SqliteNativeFunctions.Integer:
                    RowHash.AppendInteger(_hash, SqliteNativeFunctions.ValueInt64(value));
                    break;
                case SqliteNativeFunctions.Float:
                    RowHash.AppendReal(_hash, SqliteNativeFunctions.ValueDouble(value));
                    break;
                case SqliteNativeFunctions.Text:
                    RowHash.AppendText(_hash, Chars(value));
                    break;
                case SqliteNativeFunctions.Blob:
                    RowHash.AppendBlob(_hash, SqliteNativeFunctions.Bytes(value));
                    break;
                default:
                    RowHash.AppendNull(_hash);
                    break;
            }
        }

        SqliteNativeFunctions.ResultInt64(context, (long)_hash.GetCurrentHashAsUInt64());
    }

    /// <summary>A text value decoded as <see cref="Encoding.UTF8"/> decodes it for a string, into a reused buffer.</summary>
    private ReadOnlySpan<char> Chars(nint value)
    {
        var bytes = SqliteNativeFunctions.Bytes(value);
        var needed = Encoding.UTF8.GetMaxCharCount(bytes.Length);
        if (_chars.Length < needed)
        {
            _chars = new char[Math.Max(needed, _chars.Length * 2)];
        }

        return _chars.AsSpan(0, Encoding.UTF8.GetChars(bytes, _chars));
    }

    /// <summary>A cursor value read as the capture reads it (text straight from SQLite's buffer).</summary>
    private bool TryParseTimestamp(nint value, out Instant instant, out LocalTimeMapping mapping, out string? problem) =>
        SqliteNativeFunctions.ValueType(value) == SqliteNativeFunctions.Text
            ? SourceTimestamp.TryParseText(Chars(value), _capture.Zone, out instant, out mapping, out problem)
            : SourceTimestamp.TryParse(SqliteNativeFunctions.Value(value), _capture.Zone, out instant, out mapping, out problem);

    /// <summary>
    /// A timestamp row's commit time in epoch microseconds, or NULL: (updated_at, the cursor expression, created_at),
    /// read exactly as the capture's snapshot reads them. Counts what the report counts; a value the capture would
    /// dead-letter fails the statement.
    /// </summary>
    private void Commit(nint context, ReadOnlySpan<nint> args)
    {
        var cursorNull = SqliteNativeFunctions.ValueType(args[1]) == SqliteNativeFunctions.Null;
        Instant instant;
        LocalTimeMapping mapping;
        if (SqliteNativeFunctions.ValueType(args[0]) == SqliteNativeFunctions.Null)
        {
            if (cursorNull || SqliteNativeFunctions.ValueType(args[2]) == SqliteNativeFunctions.Null || !TryParseTimestamp(args[2], out instant, out mapping, out _))
            {
                NullCursorRows++;
                SqliteNativeFunctions.ResultNull(context);
                return;
            }

            CreatedAtFallbackRows++;
        }
        else
        {
            if (!TryParseTimestamp(args[0], out instant, out mapping, out var problem) || cursorNull)
            {
                Unreadable ??= problem ?? $"'{SqliteNativeFunctions.Value(args[0])}' is in a format SQLite's date functions cannot order";
                SqliteNativeFunctions.ResultError(context, "unreadable timestamp");
                return;
            }
        }

        Note(instant, mapping);
        SqliteNativeFunctions.ResultInt64(context, instant.ToUnixTimeTicks() / 10);
    }

    /// <summary>A sequence row's ledger position, or NULL: (sequence column, the cursor expression).</summary>
    private void SequencePosition(nint context, ReadOnlySpan<nint> args)
    {
        if (SqliteNativeFunctions.ValueType(args[0]) == SqliteNativeFunctions.Null)
        {
            NullCursorRows++;
            SqliteNativeFunctions.ResultNull(context);
            return;
        }

        if (SqliteNativeFunctions.ValueType(args[1]) == SqliteNativeFunctions.Null)
        {
            Unreadable ??= $"'{SqliteNativeFunctions.Value(args[0])}' is not a whole number";
            SqliteNativeFunctions.ResultError(context, "unreadable sequence value");
            return;
        }

        SqliteNativeFunctions.ResultText(context, _capture.LedgerPosition(SqliteNativeFunctions.ValueInt64(args[1])).ToString());
    }

    private void Note(Instant commit, LocalTimeMapping mapping)
    {
        if (HighWaterMark is null || commit > HighWaterMark)
        {
            HighWaterMark = commit;
        }

        if (FutureLimit is { } limit && commit > limit)
        {
            FutureRows++;
            if (NewestFuture is null || commit > NewestFuture)
            {
                NewestFuture = commit;
            }
        }

        if (mapping == LocalTimeMapping.Gap)
        {
            DstGapRows++;
        }
        else if (mapping == LocalTimeMapping.Overlap)
        {
            DstOverlapRows++;
        }
    }

    private enum FunctionKind
    {
        Key,
        Hash,
        Commit,
        Position,
    }

    /// <summary>What one registered function computes, and for which load.</summary>
    private sealed record Call(SqliteSnapshotCopy Copy, FunctionKind Kind);
}
