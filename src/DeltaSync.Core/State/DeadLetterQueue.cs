using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;

namespace DeltaSync.Core.State;

/// <summary>
/// One sync's dead-letter queue as the operator sees it (<c>deltasync dlq …</c>), in any state store: its entries
/// (those of streams named after this sync, including tables no longer configured), selected by id and table, and purged.
/// </summary>
public sealed class DeadLetterQueue
{
    private readonly SyncConfig _config;
    private readonly IStateStore _store;

    public DeadLetterQueue(SyncConfig config, IStateStore store)
    {
        ArgumentNullException.ThrowIfNull(config);
        _config = config;
        _store = store;
    }

    /// <summary>The entries of the named tables (all of this sync's when empty), oldest first. An unknown table is a usage error.</summary>
    public async Task<IReadOnlyList<DeadLetter>> ListAsync(IReadOnlyList<string>? tables, CancellationToken cancellationToken)
    {
        var streams = tables is { Count: > 0 }
            ? TablePlan.Select(_config, tables).Select(p => p.Stream).ToHashSet(StringComparer.Ordinal)
            : null;
        var prefix = TablePlan.StreamName(_config.Name, "");
        var all = await _store.ReadDeadLettersAsync(null, int.MaxValue, cancellationToken).ConfigureAwait(false);
        return all.Where(d => streams?.Contains(d.Stream) ?? d.Stream.StartsWith(prefix, StringComparison.Ordinal)).ToList();
    }

    /// <summary>The entry with this id (<see cref="DeadLetter.Id"/>, case-insensitive), or null.</summary>
    public async Task<DeadLetter?> FindAsync(string id, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(id);
        var all = await ListAsync(null, cancellationToken).ConfigureAwait(false);
        return all.FirstOrDefault(d => string.Equals(d.Id, id.Trim(), StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>
    /// The entries matching every given selector: one of <paramref name="ids"/> (when any) and of <paramref name="tables"/>
    /// (when any); every entry of this sync when both are empty. An id that names no entry is an error, so a typo never
    /// selects nothing silently.
    /// </summary>
    public async Task<IReadOnlyList<DeadLetter>> SelectAsync(IReadOnlyList<string> ids, IReadOnlyList<string> tables, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var entries = await ListAsync(tables, cancellationToken).ConfigureAwait(false);
        if (ids.Count == 0)
        {
            return entries;
        }

        var wanted = ids.Select(i => i.Trim()).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var selected = entries.Where(d => wanted.Contains(d.Id)).ToList();
        var unknown = wanted.Except(selected.Select(d => d.Id), StringComparer.OrdinalIgnoreCase).ToList();
        if (unknown.Count > 0)
        {
            var where = tables.Count > 0 ? $" of table(s) {string.Join(", ", tables)}" : "";
            throw new DeadLetterNotFoundException(
                $"no dead-letter entry {string.Join(", ", unknown)}{where} in {_store.Description}; 'deltasync dlq list' shows the queued ids");
        }

        return selected;
    }

    /// <summary>Removes <paramref name="entries"/>; returns how many were still queued.</summary>
    public Task<int> PurgeAsync(IReadOnlyList<DeadLetter> entries, CancellationToken cancellationToken) =>
        entries.Count == 0 ? Task.FromResult(0) : _store.RemoveDeadLettersAsync(entries, cancellationToken);
}

/// <summary>A dead-letter id given by the operator names no queued entry.</summary>
public sealed class DeadLetterNotFoundException : Exception
{
    public DeadLetterNotFoundException()
    {
    }

    public DeadLetterNotFoundException(string message)
        : base(message)
    {
    }

    public DeadLetterNotFoundException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
