using System.Globalization;
using DeltaSync.Core.Config;
using DeltaSync.Core.Model;
using DeltaSync.Core.Time;
using NodaTime;

namespace DeltaSync.Core.Pipeline;

/// <summary>
/// A table's <c>soft_delete</c> with <c>mode: propagate</c>: a captured row whose flag column marks it deleted becomes a
/// delete of that record, so every capture method (cursor, log, trigger, polling, reconciliation) and the ledger treat
/// it like a hard delete. The delete's time is the flag's own timestamp when it holds one (<c>deleted_at</c>), else the
/// row's commit time: a delete older than the record's last applied update loses (see <see cref="ChangeResolver"/>).
/// With <c>mode: keep</c> nothing changes: the flag is copied like any column.
/// </summary>
public sealed class SoftDeletes
{
    private readonly int _index;
    private readonly HashSet<string>? _deletedValues;
    private readonly DateTimeZone _zone;

    private SoftDeletes(int index, IReadOnlyList<string>? deletedValues, DateTimeZone zone)
    {
        _index = index;
        _deletedValues = deletedValues is null ? null : new HashSet<string>(deletedValues.Select(Normalize), StringComparer.Ordinal);
        _zone = zone;
    }

    /// <summary>
    /// The transform for a table, or null when it has no soft deletes to propagate. A flag column the source table lacks
    /// is a configuration mistake the table cannot run with.
    /// </summary>
    public static SoftDeletes? For(Connectors.TablePlan plan, TableSchema schema)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(schema);
        if (plan.SoftDelete is not { Mode: SoftDeleteMode.Propagate } options)
        {
            return null;
        }

        var index = schema.IndexOf(options.Field);
        if (index < 0)
        {
            throw new SyncException(
                ErrorClass.Fatal,
                $"table '{plan.Table}': soft_delete.field '{options.Field}' is not a column (columns: {string.Join(", ", schema.Columns.Select(c => c.Name))})");
        }

        return new SoftDeletes(index, options.DeletedValues, Time.TimeZones.Get(plan.Timezone));
    }

    /// <summary>Whether a row's flag value marks it deleted: non-NULL, or one of <c>deleted_values</c>.</summary>
    public bool IsDeleted(object? flag) =>
        flag is not null && (_deletedValues is null || _deletedValues.Contains(Normalize(flag)));

    /// <summary>
    /// The batch with soft-deleted rows turned into deletes, and how many were; the batch itself when none were.
    /// </summary>
    public (ChangeBatch Batch, int Deleted) Apply(ChangeBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        List<ChangeEvent>? events = null;
        var deleted = 0;
        for (var i = 0; i < batch.Events.Count; i++)
        {
            var change = batch.Events[i];
            if (change.Operation == ChangeOperation.Delete || change.Values is null || !IsDeleted(change.Values[_index]))
            {
                events?.Add(change);
                continue;
            }

            events ??= [.. batch.Events.Take(i)];
            deleted++;
            events.Add(change with
            {
                Operation = ChangeOperation.Delete,
                Values = null,
                CommitTime = DeletedAt(change.Values[_index]!) ?? change.CommitTime,
                RowHash = 0,
            });
        }

        if (events is null)
        {
            return (batch, 0);
        }

        return (batch.With(events, batch.CheckpointPosition), deleted);
    }

    /// <summary>The flag as a time (a <c>deleted_at</c> timestamp), or null when it is a plain flag (1, true, 'Y').</summary>
    private Instant? DeletedAt(object flag) =>
        _deletedValues is null && LooksLikeTime(flag) && SourceTimestamp.TryParse(flag, _zone, out var at, out _) ? at : null;

    /// <summary>Text and date values, or epoch numbers past 1973; a small number is a flag (1), not a time in 1970.</summary>
    private static bool LooksLikeTime(object flag) => flag switch
    {
        string or DateTime or DateTimeOffset => true,
        long l => l >= 100_000_000,
        int i => i >= 100_000_000,
        double d => d >= 100_000_000,
        _ => false,
    };

    /// <summary>Flag values compared as text: 1, 1.0 and '1' alike; true/false case-insensitively.</summary>
    private static string Normalize(object value) => value switch
    {
        bool b => b ? "true" : "false",
        double d when d == Math.Floor(d) && Math.Abs(d) < 1e15 => ((long)d).ToString(CultureInfo.InvariantCulture),
        float f when f == MathF.Floor(f) => ((long)f).ToString(CultureInfo.InvariantCulture),
        decimal m when m == decimal.Floor(m) => ((long)m).ToString(CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        string s => s.Trim().ToLowerInvariant() is var t && (t == "true" || t == "false") ? t : s.Trim(),
        _ => value.ToString() ?? "",
    };
}
