using System.Globalization;
using Npgsql;

namespace DeltaSync.Benchmarks.Postgres;

/// <summary>
/// CPU seconds (user + system) that a consumer's processes used during a measured phase, from <c>/proc/PID/stat</c>
/// (the server runs on this machine, on loopback): the client process (DeltaSync's <c>run --follow</c>; none for
/// native replication) and the server processes working for the consumer — the walsender of its slot, and at the
/// destination the apply worker (native) or the sessions named <c>deltasync…</c>. Wall time on a shared two-core
/// machine moves with whatever else runs; the CPU a consumer spends per change moves much less, so both are reported.
/// </summary>
public sealed class ConsumerCpu
{
    // USER_HZ: the unit of /proc/PID/stat's utime and stime on Linux (100 on every architecture .NET runs on).
    private const double TicksPerSecond = 100;

    private readonly BenchmarkDatabase _source;
    private readonly BenchmarkDatabase _destination;
    private readonly string _slot;
    private readonly int? _clientPid;
    private readonly Dictionary<int, long> _serverStart = [];
    private readonly HashSet<int> _walsenders = [];
    private long _clientStart;

    private ConsumerCpu(BenchmarkDatabase source, BenchmarkDatabase destination, string slot, int? clientPid)
    {
        _source = source;
        _destination = destination;
        _slot = slot;
        _clientPid = clientPid;
    }

    /// <summary>Whether this machine has <c>/proc</c> (else the CPU columns stay empty).</summary>
    public static bool Available => File.Exists("/proc/self/stat");

    /// <summary>Takes the starting counters of the consumer's processes.</summary>
    public static async Task<ConsumerCpu> StartAsync(BenchmarkDatabase source, BenchmarkDatabase destination, string slot, int? clientPid, CancellationToken cancellationToken)
    {
        var cpu = new ConsumerCpu(source, destination, slot, clientPid);
        foreach (var pid in await cpu.ServerPidsAsync(cancellationToken).ConfigureAwait(false))
        {
            cpu._serverStart[pid] = Ticks(pid) ?? 0;
        }

        cpu._clientStart = clientPid is { } client ? Ticks(client) ?? 0 : 0;
        return cpu;
    }

    /// <summary>
    /// CPU seconds since <see cref="StartAsync"/>: the client's, and the server processes' together, of which the
    /// walsender's (decoding the log for the consumer).
    /// </summary>
    /// <remarks>A server process that appeared in between counts whole; one that ended in between is lost (none does
    /// here: DeltaSync's sessions are pooled and its replication stream stays open).</remarks>
    public async Task<(double? Client, double Server, double Walsender)> StopAsync(CancellationToken cancellationToken)
    {
        long server = 0, walsender = 0;
        var pids = new HashSet<int>(_serverStart.Keys);
        pids.UnionWith(await ServerPidsAsync(cancellationToken).ConfigureAwait(false));
        foreach (var pid in pids)
        {
            if (Ticks(pid) is { } now)
            {
                var used = now - _serverStart.GetValueOrDefault(pid);
                server += used;
                walsender += _walsenders.Contains(pid) ? used : 0;
            }
        }

        double? client = _clientPid is { } c && Ticks(c) is { } clientNow ? (clientNow - _clientStart) / TicksPerSecond : null;
        return (client, server / TicksPerSecond, walsender / TicksPerSecond);
    }

    private async Task<List<int>> ServerPidsAsync(CancellationToken cancellationToken)
    {
        var pids = new List<int>();
        await using (var source = await _source.OpenAsync(cancellationToken).ConfigureAwait(false))
        {
            await using (var walsender = new NpgsqlCommand("SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL", source))
            {
                walsender.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _slot });
                var before = pids.Count;
                await ReadPidsAsync(walsender, pids, cancellationToken).ConfigureAwait(false);
                _walsenders.UnionWith(pids.Skip(before));
            }

            await using var command = new NpgsqlCommand(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE 'deltasync%'", source);
            await ReadPidsAsync(command, pids, cancellationToken).ConfigureAwait(false);
        }

        await using (var destination = await _destination.OpenAsync(cancellationToken).ConfigureAwait(false))
        {
            await using var command = new NpgsqlCommand(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() " +
                "AND (backend_type = 'logical replication worker' OR application_name LIKE 'deltasync%')",
                destination);
            await ReadPidsAsync(command, pids, cancellationToken).ConfigureAwait(false);
        }

        return pids;
    }

    private static async Task ReadPidsAsync(NpgsqlCommand command, List<int> pids, CancellationToken cancellationToken)
    {
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            pids.Add(reader.GetInt32(0));
        }
    }

    /// <summary>utime + stime of a process in clock ticks; null when it is gone (or this is not Linux).</summary>
    private static long? Ticks(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }

        // The command name (field 2) is in parentheses and may hold spaces: count fields after its closing one.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
    }
}
