using DeltaSync.Postgres.Tests;

namespace DeltaSync.FaultInjection.Tests.Infrastructure;

/// <summary>A <see cref="FaultProxy"/> in front of the test server (<c>DELTASYNC_TEST_PG</c>).</summary>
internal static class ProxiedPostgres
{
    public static FaultProxy Start()
    {
        var server = new Uri(PgDatabase.ServerUri);
        return FaultProxy.Start(server.Host, server.IsDefaultPort || server.Port < 0 ? 5432 : server.Port);
    }

    /// <summary>The database's URI with the proxy's port: every connection made through it passes the proxy.</summary>
    public static string UriThrough(this FaultProxy proxy, PgDatabase database) => new UriBuilder(database.Uri) { Port = proxy.Port }.Uri.ToString();
}
