using System.Globalization;
using System.Runtime.CompilerServices;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;

namespace DeltaSync.Postgres.Capture;

/// <summary>
/// Ledger entries of a table keyed by <c>date</c>, <c>timestamp</c>, <c>timestamptz</c>, <c>time</c> or <c>uuid</c>,
/// prepared for a comparison of the table with its ledger (polling, a trigger or log snapshot), whose entries missing at
/// the source become deletes sent with the entry's key:
/// <list type="bullet">
/// <item>An entry's key components of these types are read back into the values the capture reads (<see cref="KeyEncoding"/>
/// stores dates and times as ISO text, uuids as their bytes), so a delete reaches a destination that compares them as
/// values — a SQLite destination stores <c>2024-01-01T00:00:00.25Z</c> and a uuid's text, not the key's
/// <c>2024-01-01T00:00:00.2500000</c> or 16 bytes.</item>
/// <item>Entries that versions before 2026-12-07 wrote are left out: their keys were culture text without fractions of
/// a second (<c>03/01/2024 05:00:00</c>, <c>10:00</c>), match no key read today, and would have become deletes of live
/// rows. A row deleted at the source before the first pass of this version therefore stays at the destination until
/// <c>deltasync reconcile</c>, which compares the table itself, removes it (at a PostgreSQL destination: a SQLite one
/// computes no key-range digests, and the row must be deleted by hand).</item>
/// </list>
/// </summary>
internal static class LedgerKeyValues
{
    public static IAsyncEnumerable<LedgerEntry> Prepare(IAsyncEnumerable<LedgerEntry> entries, IReadOnlyList<PgColumn> keyColumns)
    {
        var types = keyColumns.Select(c => !c.IsArray && c.BaseType is "date" or "timestamp" or "timestamptz" or "time" or "uuid" ? c.BaseType : null).ToArray();
        return types.All(t => t is null) ? entries : PrepareAsync(entries, types, CancellationToken.None);
    }

    /// <summary>
    /// Whether a key component is in the old form: a date with slashes, or a time as HH:mm or HH:mm:ss (the current form
    /// has seven decimals; <see cref="PgDateTimes.EndOfDay"/>'s <c>24:00:00</c>, which the old form never wrote, is current).
    /// </summary>
    internal static bool IsLegacy(object? component) =>
        component is string text
        && (text.Contains('/', StringComparison.Ordinal) || (text.Length is 5 or 8 && text[2] == ':' && !text.StartsWith("24:", StringComparison.Ordinal)));

    /// <summary>A key component of the type as the capture reads it (infinities and 24:00:00 stay text).</summary>
    internal static object? Typed(object? component, string type)
    {
        if (type == "uuid" && component is byte[] { Length: 16 } uuid)
        {
            return new Guid(uuid, bigEndian: true);
        }

        if (component is not string text)
        {
            return component;
        }

        var c = CultureInfo.InvariantCulture;
        return type switch
        {
            "date" when DateOnly.TryParseExact(text, "yyyy-MM-dd", c, DateTimeStyles.None, out var date) => date,
            "timestamp" when DateTime.TryParseExact(text, "yyyy-MM-dd'T'HH:mm:ss.fffffff", c, DateTimeStyles.None, out var local) => DateTime.SpecifyKind(local, DateTimeKind.Unspecified),
            "timestamptz" when DateTime.TryParseExact(text, "yyyy-MM-dd'T'HH:mm:ss.fffffff", c, DateTimeStyles.None, out var utc) => DateTime.SpecifyKind(utc, DateTimeKind.Utc),
            "time" when TimeOnly.TryParseExact(text, "HH:mm:ss.fffffff", c, DateTimeStyles.None, out var time) => time,
            _ => text,
        };
    }

    private static async IAsyncEnumerable<LedgerEntry> PrepareAsync(IAsyncEnumerable<LedgerEntry> entries, string?[] types, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var entry in entries.WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            var values = entry.Key.Values;
            var typed = new object?[values.Count];
            var legacy = false;
            for (var i = 0; i < typed.Length && !legacy; i++)
            {
                var type = i < types.Length ? types[i] : null;
                legacy = type is not null and not "uuid" && IsLegacy(values[i]);
                typed[i] = type is null ? values[i] : Typed(values[i], type);
            }

            if (!legacy)
            {
                // The typed values encode to the entry's bytes: its key's encoding is kept, not computed again per entry.
                yield return entry with { Key = entry.Key.WithValues(typed) };
            }
        }
    }
}
