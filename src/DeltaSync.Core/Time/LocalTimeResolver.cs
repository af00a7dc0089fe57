using NodaTime;
using NodaTime.TimeZones;

namespace DeltaSync.Core.Time;

/// <summary>How a zone-less (wall-clock) timestamp was placed on the timeline.</summary>
public enum LocalTimeMapping
{
    /// <summary>The wall-clock time exists exactly once in the zone.</summary>
    Unique,

    /// <summary>The wall-clock time was skipped (clocks moved forward): shifted forward by the length of the gap.</summary>
    Gap,

    /// <summary>The wall-clock time happened twice (clocks moved back): the earlier instant (the offset before the change) was taken.</summary>
    Overlap,
}

/// <summary>
/// Maps zone-less timestamps to instants in the configured source zone with one documented rule — NodaTime's lenient
/// resolver: a time in a DST gap is shifted forward by the gap's length, a time in an overlap takes the earlier offset —
/// and says when the rule was needed, so captures can count those rows.
/// </summary>
public static class LocalTimeResolver
{
    /// <summary>
    /// Larger than any difference between two UTC offsets (NodaTime allows ±18 h): an instant this far inside its zone
    /// interval has a wall-clock time no neighbouring interval can also produce.
    /// </summary>
    private static readonly Duration Margin = Duration.FromDays(2);

    /// <summary>The instant <paramref name="local"/> stands for in <paramref name="zone"/>, and how it was found.</summary>
    public static Instant Resolve(LocalDateTime local, DateTimeZone zone, out LocalTimeMapping mapping)
    {
        ArgumentNullException.ThrowIfNull(zone);
        mapping = LocalTimeMapping.Unique;
        var asUtc = local.InUtc().ToInstant();
        if (ReferenceEquals(zone, DateTimeZone.Utc))
        {
            return asUtc;
        }

        // The common case without allocating: the interval the wall-clock time read as UTC falls in gives the offset,
        // and when the resulting instant is far from both of that interval's transitions the mapping is unique.
        var interval = zone.GetZoneInterval(asUtc);
        var instant = asUtc - Duration.FromSeconds(interval.WallOffset.Seconds);
        if ((!interval.HasStart || instant - interval.Start >= Margin) && (!interval.HasEnd || interval.End - instant >= Margin))
        {
            return instant;
        }

        var map = zone.MapLocal(local);
        mapping = map.Count switch
        {
            0 => LocalTimeMapping.Gap,
            1 => LocalTimeMapping.Unique,
            _ => LocalTimeMapping.Overlap,
        };
        return Resolvers.LenientResolver(map).ToInstant();
    }
}
