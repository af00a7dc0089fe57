using System.Runtime.CompilerServices;
using DeltaSync.Core.Ledger;

namespace DeltaSync.Postgres.Capture;

/// <summary>
/// Ledger entries that versions before 2026-12-07 wrote for keys of <c>date</c>, <c>timestamp</c>, <c>timestamptz</c>
/// or <c>time</c>: the key was culture text without fractions of a second (<c>03/01/2024 05:00:00</c>, <c>10:00</c>),
/// so it matches no key read today (full-precision ISO text, <see cref="Core.Model.KeyEncoding"/>). A comparison of the
/// table with its ledger (polling, a trigger or log snapshot) would take every such entry for a row deleted at the source
/// and send its lossy key to the destination as a delete; they are left out instead. Rows written since have entries
/// of the new form; a row deleted at the source before its first pass with this version is not removed by the pass —
/// <c>deltasync reconcile</c> compares the table itself and removes it.
/// </summary>
internal static class LegacyTimeKeys
{
    public static IAsyncEnumerable<LedgerEntry> Without(IAsyncEnumerable<LedgerEntry> entries, IReadOnlyList<PgColumn> keyColumns)
    {
        var positions = Enumerable.Range(0, keyColumns.Count)
            .Where(i => !keyColumns[i].IsArray && keyColumns[i].BaseType is "date" or "timestamp" or "timestamptz" or "time")
            .ToArray();
        return positions.Length == 0 ? entries : FilterAsync(entries, positions, CancellationToken.None);
    }

    /// <summary>
    /// Whether a key component is in the old form: a date with slashes, or a time as HH:mm or HH:mm:ss (the current form
    /// has seven decimals; <see cref="PgDateTimes.EndOfDay"/>'s <c>24:00:00</c>, which the old form never wrote, is current).
    /// </summary>
    internal static bool IsLegacy(object? component) =>
        component is string text
        && (text.Contains('/', StringComparison.Ordinal) || (text.Length is 5 or 8 && text[2] == ':' && !text.StartsWith("24:", StringComparison.Ordinal)));

    private static async IAsyncEnumerable<LedgerEntry> FilterAsync(IAsyncEnumerable<LedgerEntry> entries, int[] positions, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var entry in entries.WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            if (!positions.Any(p => p < entry.Key.Values.Count && IsLegacy(entry.Key.Values[p])))
            {
                yield return entry;
            }
        }
    }
}
