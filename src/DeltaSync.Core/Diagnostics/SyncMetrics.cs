using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using NodaTime;

namespace DeltaSync.Core.Diagnostics;

/// <summary>
/// The <c>DeltaSync</c> meter: records read and applied per table, conflicts, dead letters, batch apply latency and
/// lag (source clock minus the newest applied commit time). Any OpenTelemetry or dotnet-counters listener can read it.
/// </summary>
public static class SyncMetrics
{
    public const string MeterName = "DeltaSync";

    private static readonly Meter Meter = new(MeterName, "0.1.0");
    private static readonly ConcurrentDictionary<string, double> Lags = new();

    public static readonly Counter<long> RecordsRead = Meter.CreateCounter<long>("deltasync.records.read", "{record}", "Changes captured from the source");
    public static readonly Counter<long> RecordsApplied = Meter.CreateCounter<long>("deltasync.records.applied", "{record}", "Rows written to the destination (inserts, updates, deletes)");
    public static readonly Counter<long> Conflicts = Meter.CreateCounter<long>("deltasync.conflicts", "{conflict}", "Conflicts detected");
    public static readonly Counter<long> DeadLettered = Meter.CreateCounter<long>("deltasync.records.dead_lettered", "{record}", "Records sent to the dead-letter queue");
    public static readonly Histogram<double> BatchApplyLatency = Meter.CreateHistogram<double>("deltasync.batch.apply.duration", "ms", "Time to apply one batch at the destination, including ledger and checkpoint");

    static SyncMetrics()
    {
        Meter.CreateObservableGauge("deltasync.lag", ObserveLag, "s", "Source clock minus the newest applied source commit time, per table");
    }

    public static void RecordLag(string table, Instant sourceNow, Instant newestApplied) =>
        Lags[table] = (sourceNow - newestApplied).TotalSeconds;

    private static IEnumerable<Measurement<double>> ObserveLag() =>
        Lags.Select(kv => new Measurement<double>(kv.Value, new KeyValuePair<string, object?>("table", kv.Key)));
}
