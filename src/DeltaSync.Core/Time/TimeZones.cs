using NodaTime;

namespace DeltaSync.Core.Time;

/// <summary>
/// Time zones by IANA id. UTC, the default, is answered without loading the time zone database (about 15 ms of every
/// run's start-up otherwise).
/// </summary>
public static class TimeZones
{
    /// <summary>The zone <paramref name="id"/> names, or null when the database has no such zone.</summary>
    public static DateTimeZone? Find(string id) =>
        id is "UTC" or "Etc/UTC" ? DateTimeZone.Utc : DateTimeZoneProviders.Tzdb.GetZoneOrNull(id);

    /// <summary>The zone <paramref name="id"/> names, UTC when unknown (configuration validation reports unknown ids).</summary>
    public static DateTimeZone Get(string id) => Find(id) ?? DateTimeZone.Utc;
}
