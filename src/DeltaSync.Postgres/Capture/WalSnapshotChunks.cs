using System.Runtime.CompilerServices;
using DeltaSync.Core.Capture;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;

namespace DeltaSync.Postgres.Capture;

/// <summary>
/// A log capture's initial snapshot taken in key-ordered chunks between reads of the log (Netflix DBLog's watermark
/// algorithm). A chunk is selected between a LOW and a HIGH marker written into the log; every change the log carries
/// from the moment reading paused for the chunk up to its HIGH marker takes the key out of the chunk (the log's version
/// is as new or newer), and at the HIGH marker the rest of the chunk is emitted, merged with the ledger so a
/// re-snapshot also finds rows deleted meanwhile. Memory: one chunk, plus the keys the log touched inside its range.
/// </summary>
internal sealed class WalSnapshotChunks : IAsyncDisposable
{
    private readonly int _chunkSize;
    private readonly Func<CancellationToken, IAsyncEnumerable<LedgerEntry>> _scanLedger;
    private readonly HashSet<RecordKey> _touched = [];
    private readonly HashSet<uint> _unsettled = [];
    private IAsyncEnumerator<LedgerEntry>? _ledger;
    private bool? _ledgerHas;
    private List<ChangeEvent>? _rows;
    private RecordKey? _upper;
    private bool _discarded;

    /// <param name="lastKey">The last key of the last chunk emitted (null: none yet).</param>
    /// <param name="chunkSize">Rows per chunk.</param>
    /// <param name="scanLedger">The stream's ledger in key order; read once, chunk by chunk, over the whole snapshot.</param>
    public WalSnapshotChunks(RecordKey? lastKey, int chunkSize, Func<CancellationToken, IAsyncEnumerable<LedgerEntry>> scanLedger)
    {
        LastKey = lastKey;
        Resumed = lastKey is not null;
        _chunkSize = chunkSize;
        _scanLedger = scanLedger;
    }

    /// <summary>The last key of the last chunk emitted: every key up to it is copied, the snapshot continues after it.</summary>
    public RecordKey? LastKey { get; private set; }

    /// <summary>The snapshot continues one interrupted earlier.</summary>
    public bool Resumed { get; }

    /// <summary>Chunks emitted by this capture.</summary>
    public int Emitted { get; private set; }

    /// <summary>Rows emitted by this capture's chunks (after the log's changes took theirs out).</summary>
    public long Rows { get; private set; }

    public int ChunkSize => _chunkSize;

    /// <summary>The HIGH marker of the chunk read and waiting for it in the log; null when none is open.</summary>
    public string? High { get; private set; }

    /// <summary>The open chunk is the table's last (it came back shorter than a chunk): its range has no upper end.</summary>
    public bool IsLast { get; private set; }

    /// <summary>
    /// A transaction that changed the table was read from the log. Until a chunk's snapshot sees it, a chunk could
    /// hold a row older than what the log already applied: PostgreSQL writes (and decodes) a commit before the
    /// transaction becomes visible — for as long as a synchronous standby takes to confirm it, say.
    /// </summary>
    public void Consumed(uint xid) => _unsettled.Add(xid);

    /// <summary>
    /// Whether every transaction read from the log so far is visible in the snapshot a chunk was selected in (given
    /// as <c>pg_current_snapshot()</c>: xmin, xmax, in-progress xids, all 64-bit); those that are are forgotten.
    /// </summary>
    public bool Settle(ulong xmin, ulong xmax, IReadOnlySet<ulong> inProgress)
    {
        _unsettled.RemoveWhere(xid =>
        {
            // The log's xids are 32-bit: widened with the epoch of the snapshot's xmax (they are all recent).
            var full = (xmax & 0xFFFF_FFFF_0000_0000UL) | xid;
            if (full >= xmax && full >= 0x1_0000_0000UL)
            {
                full -= 0x1_0000_0000UL;
            }

            return full < xmin || (full < xmax && !inProgress.Contains(full));
        });
        return _unsettled.Count == 0;
    }

    /// <summary>
    /// A chunk was just selected; its HIGH marker is <paramref name="high"/>. When its snapshot did not see every
    /// transaction already read from the log (<paramref name="settled"/> false) it is discarded at its HIGH marker
    /// and selected again.
    /// </summary>
    public void Open(List<ChangeEvent> rows, string high, bool settled)
    {
        _rows = rows;
        _touched.Clear();
        _discarded = !settled;
        High = high;
        IsLast = rows.Count < _chunkSize;
        _upper = IsLast ? null : rows[^1].Key;
    }

    /// <summary>The log changed <paramref name="key"/> after the open chunk was selected, or just before: its row is not taken from the chunk.</summary>
    public void Touch(RecordKey key)
    {
        if (_rows is not null && InRange(key))
        {
            _touched.Add(key);
        }
    }

    /// <summary>The table was emptied in the chunk's window: none of its rows is current any more.</summary>
    public void Truncated() => _rows?.Clear();

    /// <summary>The table changed shape in the chunk's window: its rows have the old shape; the chunk is read again after its HIGH marker.</summary>
    public void Discard() => _discarded = _rows is not null;

    /// <summary>
    /// The open chunk's HIGH marker came through the log: the chunk's rows the log did not touch, merged with the
    /// ledger's entries of its key range (live entries missing at the source become deletes). Null when the chunk
    /// was discarded and must be read again. <see cref="LastKey"/> moves on as the events are enumerated.
    /// </summary>
    public IAsyncEnumerable<ChangeEvent>? Close(string table, string source, CancellationToken cancellationToken)
    {
        var rows = _rows;
        _rows = null;
        High = null;
        if (rows is null || _discarded)
        {
            return null;
        }

        return CloseAsync(rows, table, source, cancellationToken);
    }

    private async IAsyncEnumerable<ChangeEvent> CloseAsync(List<ChangeEvent> rows, string table, string source, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var upper = _upper;
        var kept = rows.Where(r => !_touched.Contains(r.Key)).ToAsyncEnumerable();
        await foreach (var change in LedgerDiff.DiffAsync(kept, LedgerUpToAsync(upper, cancellationToken), DiffMode.RowHash, table, source, cancellationToken).ConfigureAwait(false))
        {
            Rows++;
            yield return change;
        }

        Emitted++;
        if (upper is not null)
        {
            LastKey = upper;
        }

        _touched.Clear();
    }

    /// <summary>The ledger's entries after <see cref="LastKey"/> up to <paramref name="upper"/> (null: all the rest), those the log touched left out.</summary>
    private async IAsyncEnumerable<LedgerEntry> LedgerUpToAsync(RecordKey? upper, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        _ledger ??= _scanLedger(cancellationToken).GetAsyncEnumerator(cancellationToken);
        while (_ledgerHas ??= await _ledger.MoveNextAsync().ConfigureAwait(false))
        {
            var entry = _ledger.Current;
            if (upper is not null && entry.Key.CompareTo(upper) > 0)
            {
                yield break;
            }

            _ledgerHas = null;
            if ((LastKey is null || entry.Key.CompareTo(LastKey) > 0) && !_touched.Contains(entry.Key))
            {
                yield return entry;
            }
        }
    }

    private bool InRange(RecordKey key) =>
        (LastKey is null || key.CompareTo(LastKey) > 0) && (_upper is null || key.CompareTo(_upper) <= 0);

    public async ValueTask DisposeAsync()
    {
        if (_ledger is not null)
        {
            await _ledger.DisposeAsync().ConfigureAwait(false);
            _ledger = null;
        }
    }
}
