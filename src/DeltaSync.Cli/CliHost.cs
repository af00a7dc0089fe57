using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Postgres;
using DeltaSync.Redis;
using DeltaSync.Sqlite;
using Microsoft.Extensions.Logging;
using DeltaSync.Cli.Output;

namespace DeltaSync.Cli;

/// <summary>Wires the engine for a command: connectors, logging, configuration.</summary>
internal static class CliHost
{
    public static ConnectorRegistry Connectors() => new ConnectorRegistry().Add(new SqliteConnector()).Add(new PostgresConnector()).Add(new RedisConnector());

    public static SyncConfig LoadConfig(string? path)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new UsageException("--config FILE is required");
        }

        var config = ConfigLoader.Load(Path.GetFullPath(path));
        // What the named systems cannot do is a configuration error too (exit 2), found before anything is opened.
        var errors = Connectors().Check(config);
        return errors.Count > 0 ? throw new ConfigException(errors) : config;
    }

    /// <summary>Logs go to standard error, so standard output stays clean for --json and reports.</summary>
    public static ILoggerFactory Logging(bool verbose) => new LoggerFactory(
        [new StderrLoggerProvider(color: !Console.IsErrorRedirected)],
        new LoggerFilterOptions { MinLevel = verbose ? LogLevel.Information : LogLevel.Warning });
}
