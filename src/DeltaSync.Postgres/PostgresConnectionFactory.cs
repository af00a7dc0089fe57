using System.Globalization;
using System.Net.Sockets;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using Npgsql;
using Polly;
using Polly.Retry;

namespace DeltaSync.Postgres;

/// <summary>
/// Turns a connection text — <c>postgresql://user:pass@host:port/db?sslmode=…</c> (or <c>postgres://</c>) or an Npgsql
/// connection string (<c>Host=…;Database=…</c>) — into Npgsql data sources, and PostgreSQL errors into
/// <see cref="SyncException"/>s with a class and a message that never shows the password.
/// </summary>
public static class PostgresConnectionFactory
{
    private static readonly Dictionary<string, string> QueryKeywords = new(StringComparer.OrdinalIgnoreCase)
    {
        ["sslmode"] = "SSL Mode",
        ["application_name"] = "Application Name",
        ["connect_timeout"] = "Timeout",
        ["command_timeout"] = "Command Timeout",
        ["options"] = "Options",
        ["search_path"] = "Search Path",
        ["target_session_attrs"] = "Target Session Attributes",
        ["keepalive"] = "Keepalive",
        ["pooling"] = "Pooling",
        ["max_pool_size"] = "Maximum Pool Size",
    };

    /// <summary>True when the text names a PostgreSQL database.</summary>
    public static bool Accepts(string connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        return connection.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase)
            || connection.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase)
            || (connection.Contains("Host=", StringComparison.OrdinalIgnoreCase) && !connection.Contains("://", StringComparison.Ordinal));
    }

    /// <summary>An Npgsql connection string for the text; a malformed URI is a configuration error.</summary>
    public static NpgsqlConnectionStringBuilder Parse(string connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        if (!connection.Contains("://", StringComparison.Ordinal))
        {
            try
            {
                return new NpgsqlConnectionStringBuilder(connection);
            }
            catch (ArgumentException e)
            {
                throw new SyncException(ErrorClass.Fatal, $"invalid PostgreSQL connection string '{ConnectionText.Redact(connection)}': {e.Message}");
            }
        }

        if (!Uri.TryCreate(connection, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
        {
            throw new SyncException(ErrorClass.Fatal, $"invalid PostgreSQL URI '{ConnectionText.Redact(connection)}': expected postgresql://user:password@host:port/database (percent-encode the characters @ : / ? # % in the user name and password, e.g. %23 for #, or use a connection string: Host=…;Username=…;Password=…)");
        }

        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host,
            Port = uri.IsDefaultPort || uri.Port <= 0 ? 5432 : uri.Port,
        };
        if (uri.UserInfo.Length > 0)
        {
            var colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
            builder.Username = Uri.UnescapeDataString(colon < 0 ? uri.UserInfo : uri.UserInfo[..colon]);
            if (colon >= 0)
            {
                builder.Password = Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
            }
        }

        var database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
        if (database.Length > 0)
        {
            builder.Database = database;
        }

        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var name = Uri.UnescapeDataString(eq < 0 ? pair : pair[..eq]);
            var value = eq < 0 ? "" : Uri.UnescapeDataString(pair[(eq + 1)..].Replace('+', ' '));
            if (!QueryKeywords.TryGetValue(name, out var keyword))
            {
                throw new SyncException(
                    ErrorClass.Fatal,
                    $"invalid PostgreSQL URI '{ConnectionText.Redact(connection)}': unknown parameter '{name}' (known: {string.Join(", ", QueryKeywords.Keys.Order(StringComparer.Ordinal))})");
            }

            try
            {
                builder[keyword] = value;
            }
            catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
            {
                throw new SyncException(
                    ErrorClass.Fatal,
                    $"invalid PostgreSQL URI '{ConnectionText.Redact(connection)}': {name} '{value}' is not a valid value ({(e.InnerException ?? e).Message})");
            }
        }

        return builder;
    }

    private const int BulkBufferBytes = 1 << 16;
    private const int NpgsqlDefaultBufferBytes = 8192;

    /// <summary>A pooled data source for the connection text.</summary>
    public static NpgsqlDataSource CreateDataSource(string connection, string applicationName)
    {
        var builder = Parse(connection);
        if (string.IsNullOrEmpty(builder.ApplicationName))
        {
            builder.ApplicationName = applicationName;
        }

        // Batches are large and snapshots long: the default 30 s command timeout is too short for them.
        if (!builder.ContainsKey("Command Timeout") || builder.CommandTimeout == 30)
        {
            builder.CommandTimeout = 0;
        }

        // Rows move in bulk (COPY streams, batches of thousands): 64 KiB per read and write instead of Npgsql's 8 KiB
        // takes an eighth of the system calls (1M-row initial load: 0.1 s less CPU in the client). A size the connection
        // string gives (other than the default) is kept.
        if (builder.ReadBufferSize == NpgsqlDefaultBufferBytes)
        {
            builder.ReadBufferSize = BulkBufferBytes;
        }

        if (builder.WriteBufferSize == NpgsqlDefaultBufferBytes)
        {
            builder.WriteBufferSize = BulkBufferBytes;
        }

        // Arrays with NULL elements read as arrays of nullable values instead of failing.
        builder.ArrayNullabilityMode = ArrayNullabilityMode.PerInstance;
        return NpgsqlDataSource.Create(builder.ConnectionString);
    }

    /// <summary>Where the connection points, for messages: host, port and database, never credentials.</summary>
    public static string Describe(string connection)
    {
        try
        {
            var builder = Parse(connection);
            return string.Create(CultureInfo.InvariantCulture, $"postgresql://{builder.Host}:{builder.Port}/{builder.Database}");
        }
        catch (SyncException)
        {
            return ConnectionText.Redact(connection);
        }
    }

    /// <summary>
    /// How many times a connection that fails for a transient reason (refused, reset, timed out, the server starting or
    /// out of connection slots) is tried again, with exponential back-off and jitter from half a second: 4 by default
    /// (about 8 s in all); <c>DELTASYNC_CONNECT_RETRIES</c> overrides it.
    /// </summary>
    public static int ConnectRetries { get; } =
        int.TryParse(Environment.GetEnvironmentVariable("DELTASYNC_CONNECT_RETRIES"), CultureInfo.InvariantCulture, out var retries) && retries >= 0 ? retries : 4;

    private static readonly ResiliencePipeline ConnectRetry = ConnectRetries == 0
        ? ResiliencePipeline.Empty
        : new ResiliencePipelineBuilder()
            .AddRetry(new RetryStrategyOptions
            {
                ShouldHandle = new PredicateBuilder().Handle<Exception>(e => e is NpgsqlException or SocketException or TimeoutException && Classify(e, "").ErrorClass == ErrorClass.Transient),
                MaxRetryAttempts = ConnectRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = TimeSpan.FromMilliseconds(500),
            })
            .Build();

    /// <summary>
    /// Opens a connection, retrying transient failures (<see cref="ConnectRetries"/>), and turns a final failure into a
    /// classified, password-free error that says how long it tried.
    /// </summary>
    public static async Task<NpgsqlConnection> OpenAsync(NpgsqlDataSource dataSource, string role, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        var attempts = 0;
        var started = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            return await ConnectRetry.ExecuteAsync(
                async ct =>
                {
                    attempts++;
                    return await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
                },
                cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or SocketException or TimeoutException)
        {
            var tried = attempts > 1 ? string.Create(CultureInfo.InvariantCulture, $" (tried {attempts} times over {started.Elapsed.TotalSeconds:0.0} s)") : "";
            throw Classify(e, $"cannot connect to the {role} database {Describe(dataSource.ConnectionString)}{tried}");
        }
    }

    /// <summary>
    /// A <see cref="SyncException"/> for a PostgreSQL failure: SQLSTATE classes 08 (connection), 40 (serialization,
    /// deadlock), 53 (resources), 57 (operator intervention) and timeouts are transient; 28 (authentication), 3D (no such
    /// database) and 42 (missing objects, privileges) fatal; data and constraint errors (22, 23) permanent.
    /// </summary>
    public static SyncException Classify(Exception error, string context)
    {
        ArgumentNullException.ThrowIfNull(error);
        var state = (error as PostgresException)?.SqlState ?? "";
        var errorClass = state == "55000"
            ? ErrorClass.Fatal // object not in prerequisite state (wal_level, a missing publication…): a person must act
            : state.Length >= 2
            ? state[..2] switch
            {
                "08" or "40" or "53" or "57" or "55" => ErrorClass.Transient,
                "22" or "23" => ErrorClass.Permanent,
                _ => ErrorClass.Fatal,
            }
            : error is NpgsqlException { IsTransient: true } or SocketException or TimeoutException || error.InnerException is SocketException or TimeoutException
                ? ErrorClass.Transient
                : ErrorClass.Fatal;
        var detail = error is PostgresException pg ? $"{pg.MessageText} (SQLSTATE {pg.SqlState})" : error.InnerException?.Message ?? error.Message;
        return new SyncException(errorClass, $"{context}: {ConnectionText.Redact(detail)}", error);
    }
}
