using System.Globalization;
using System.Runtime.CompilerServices;
using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using NodaTime;

namespace DeltaSync.Core.Capture;

/// <summary>
/// <c>cdc_method: hybrid</c>: a base capture (the change log where the source has one, else a cursor) for every pass,
/// and every <c>cdc.hybrid.reconcile_interval</c> a reconciliation pass: where source and destination both compute
/// key-range digests with the same row hash (<see cref="RangeReconciliation"/>), only the ranges whose digests differ
/// are bisected and read; otherwise the source is read in key order and merged with the ledger. Whatever the base
/// missed — a hard delete a timestamp cursor cannot see, a row written with a backdated timestamp, a change lost with a
/// dropped log, and with digests also a row edited or deleted at the destination — is found and repaired. Its position wraps the base's:
/// <c>hybrid:&lt;last reconciliation, epoch ms&gt;|&lt;base position&gt;</c>.
/// </summary>
public sealed class HybridCapture : IChangeCapture
{
    public const string Kind = "hybrid";

    private readonly ISource _source;
    private readonly CaptureRequest _request;
    private readonly CdcMethod _baseMethod;
    private readonly Duration _interval;
    private readonly IClock _clock;
    private readonly RangeReconcileOptions _options;
    private IChangeCapture? _base;

    public HybridCapture(ISource source, CaptureRequest request, CdcMethod baseMethod, Duration interval, IClock clock, RangeReconcileOptions? options = null)
    {
        _options = options ?? new RangeReconcileOptions();
        _source = source;
        _request = request;
        _baseMethod = baseMethod;
        _interval = interval;
        _clock = clock;
    }

    /// <summary>The base method for a source: its change log when it has one, else the timestamp cursor.</summary>
    public static CdcMethod BaseFor(ISource source, HybridCdcOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        return options.Base ?? (source.SupportedMethods.Contains(CdcMethod.Changelog) ? CdcMethod.Changelog : CdcMethod.Timestamp);
    }

    public async IAsyncEnumerable<ChangeBatch> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var (reconciledAt, inner) = Parse(_request.Resume);
        _base = _source.CreateCapture(_request with { Plan = _request.Plan with { Method = _baseMethod }, Resume = inner });
        var position = inner;
        await foreach (var batch in _base.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            position = batch.CheckpointPosition;
            yield return Wrap(batch, reconciledAt, position);
        }

        var now = _clock.GetCurrentInstant();
        if (reconciledAt is { } last && now - last < _interval)
        {
            yield break;
        }

        var (sourceDigests, destinationDigests, unavailable) = await RangeReconciliation.OpenAsync(_source, _request, cancellationToken).ConfigureAwait(false);
        var reconciliation = sourceDigests is not null && destinationDigests is not null
            ? RangeReconciliation.PassAsync(_source, sourceDigests, destinationDigests, _request, _options, Position.None, cancellationToken)
            : StreamingPassAsync(unavailable, cancellationToken);
        ChangeBatch? previous = null;
        await foreach (var batch in reconciliation.ConfigureAwait(false))
        {
            if (previous is not null)
            {
                yield return Wrap(previous, reconciledAt, position);
            }

            previous = batch;
        }

        if (previous is not null)
        {
            var wrapped = Wrap(previous, now, position);
            yield return new ChangeBatch(wrapped.Schema, wrapped.Events, wrapped.CheckpointPosition)
            {
                DeadLetters = wrapped.DeadLetters,
                HighWaterMark = wrapped.HighWaterMark,
                NullCursorRows = wrapped.NullCursorRows,
                InCommitOrder = wrapped.InCommitOrder,
                CreatedAtFallbackRows = wrapped.CreatedAtFallbackRows,
                DstGapRows = wrapped.DstGapRows,
                DstOverlapRows = wrapped.DstOverlapRows,
                Repair = wrapped.Repair,
                Reconciliation = wrapped.Reconciliation,
                Warnings = [.. wrapped.Warnings, $"'{_request.Plan.Table}' was reconciled with the source (hybrid capture; next reconciliation after {_interval.TotalMinutes.ToString("0.#", CultureInfo.InvariantCulture)} minutes)"],
            };
        }
    }

    /// <summary>
    /// Where the two sides cannot compare digests (different engines, or a connector without them): every source
    /// row, streamed in key order, against the ledger. Finds what the base missed at the source, not drift made at
    /// the destination itself.
    /// </summary>
    private async IAsyncEnumerable<ChangeBatch> StreamingPassAsync(string? unavailable, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var reconcile = _source.CreateCapture(_request with { Plan = _request.Plan with { Method = CdcMethod.Polling }, Resume = Position.None });
        ChangeBatch? previous = null;
        await foreach (var batch in reconcile.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            if (previous is not null)
            {
                yield return previous;
            }

            previous = batch;
        }

        if (previous is not null)
        {
            yield return new ChangeBatch(previous.Schema, previous.Events, previous.CheckpointPosition)
            {
                DeadLetters = previous.DeadLetters,
                Warnings = [.. previous.Warnings, StreamingWarning(_request.Plan.Table, unavailable)],
            };
        }
    }

    /// <summary>The report line of a reconciliation that could not use digests.</summary>
    public static string StreamingWarning(string table, string? unavailable) =>
        $"'{table}' was reconciled by streaming every source row and comparing it with the ledger, not by key-range digests ({unavailable ?? "digests unavailable"}); drift made at the destination itself is not seen this way";

    public ValueTask OnCheckpointedAsync(Position position, CancellationToken cancellationToken)
    {
        var (_, inner) = Parse(position);
        return _base?.OnCheckpointedAsync(inner, cancellationToken) ?? ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        if (_base is not null)
        {
            await _base.DisposeAsync().ConfigureAwait(false);
        }
    }

    public static Position Create(Instant? reconciledAt, Position inner) =>
        new(Kind, (reconciledAt?.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture) ?? "") + "|" + inner);

    public static (Instant? ReconciledAt, Position Inner) Parse(Position position)
    {
        if (position.Kind != Kind)
        {
            // Not written by this capture (none yet, or another method's): the base starts over, reconciliation is due.
            return (null, Position.None);
        }

        var bar = position.Value.IndexOf('|', StringComparison.Ordinal);
        if (bar < 0)
        {
            return (null, Position.None);
        }

        Instant? at = long.TryParse(position.Value.AsSpan(0, bar), CultureInfo.InvariantCulture, out var ms) ? Instant.FromUnixTimeMilliseconds(ms) : null;
        return (at, Position.Parse(position.Value[(bar + 1)..]));
    }

    private static ChangeBatch Wrap(ChangeBatch batch, Instant? reconciledAt, Position inner) =>
        batch.With(batch.Events, Create(reconciledAt, inner));
}
