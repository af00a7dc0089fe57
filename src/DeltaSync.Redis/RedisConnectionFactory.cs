using System.Diagnostics;
using System.Globalization;
using System.Net;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using StackExchange.Redis;

namespace DeltaSync.Redis;

/// <summary>Where a Redis connection points: client options, the key prefix, and a password-free description.</summary>
/// <param name="Options">StackExchange.Redis options (with the password: never show them).</param>
/// <param name="Prefix">The prefix of every key the state store writes.</param>
/// <param name="Description">Scheme, endpoints, database and prefix, for messages.</param>
public sealed record RedisConnectionSettings(ConfigurationOptions Options, string Prefix, string Description)
{
    /// <summary>The database number the store uses.</summary>
    public int Database => Options.DefaultDatabase ?? 0;

    /// <summary>Endpoints only, for "cannot connect to …" messages.</summary>
    public string Server => string.Join(',', Options.EndPoints.Select(RedisConnectionFactory.Format));

    public override string ToString() => Description;
}

/// <summary>
/// Reads the connection forms a Redis state store accepts and opens connections that fail with a clear,
/// password-free message:
/// <list type="bullet">
/// <item><c>redis://[[user]:password@]host[:port][/db][?prefix=…]</c>, and <c>rediss://</c> for TLS (port 6379 by default);</item>
/// <item><c>host:port</c>, as the configuration binder documents it;</item>
/// <item>a StackExchange.Redis configuration string, <c>host:port,password=…,defaultDatabase=2</c>, with an
/// extra <c>prefix=…</c> option (also after <c>redis://</c>, as <c>state.storage.type: redis</c> normalises it).</item>
/// </list>
/// Keys go under the prefix (default <c>deltasync:</c>), so several syncs can share one database.
/// </summary>
public static class RedisConnectionFactory
{
    /// <summary>The key prefix when the connection names none.</summary>
    public const string DefaultPrefix = "deltasync:";

    private const int DefaultPort = 6379;

    /// <summary>True for <c>redis://</c> and <c>rediss://</c> connections.</summary>
    public static bool Accepts(string connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        return connection.StartsWith("redis://", StringComparison.OrdinalIgnoreCase)
            || connection.StartsWith("rediss://", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The settings for any accepted form; a malformed connection is a fatal configuration error.</summary>
    public static RedisConnectionSettings Parse(string connection)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connection);
        var text = connection.Trim();
        var tls = false;
        if (text.StartsWith("rediss://", StringComparison.OrdinalIgnoreCase))
        {
            tls = true;
            text = text["rediss://".Length..];
        }
        else if (text.StartsWith("redis://", StringComparison.OrdinalIgnoreCase))
        {
            text = text["redis://".Length..];
        }

        var settings = IsConfigurationString(text) ? ParseConfigurationString(connection, text) : ParseUri(connection, text, tls);
        if (tls)
        {
            settings.Options.Ssl = true;
        }

        return settings with { Description = Describe(settings.Options, settings.Prefix) };
    }

    /// <summary>Where the connection points, for messages; never credentials.</summary>
    public static string Describe(string connection)
    {
        try
        {
            return Parse(connection).Description;
        }
        catch (SyncException)
        {
            return ConnectionText.Redact(connection);
        }
    }

    /// <summary>
    /// Connects, with StackExchange.Redis's own retries (<see cref="ConfigurationOptions.ConnectRetry"/> attempts within
    /// <see cref="ConfigurationOptions.ConnectTimeout"/>); a final failure becomes a classified error naming the server.
    /// </summary>
    public static async Task<ConnectionMultiplexer> ConnectAsync(RedisConnectionSettings settings, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var options = settings.Options.Clone();

        // Fail the first connection instead of retrying in the background forever: the run reports it and can be retried.
        options.AbortOnConnectFail = true;
        options.ClientName ??= "deltasync-state";
        var started = Stopwatch.StartNew();
        try
        {
            return await ConnectionMultiplexer.ConnectAsync(options).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            var tried = string.Create(CultureInfo.InvariantCulture, $" (tried {options.ConnectRetry} times over {started.Elapsed.TotalSeconds:0.0} s)");
            throw Classify(e, settings, $"cannot connect to the Redis state store at {settings.Server}{tried}");
        }
    }

    /// <summary>
    /// A <see cref="SyncException"/> for a Redis failure: lost or refused connections, timeouts and a server that is
    /// loading, busy or read-only (a failover) are transient; authentication and everything else fatal.
    /// </summary>
    public static SyncException Classify(Exception error, RedisConnectionSettings settings, string context)
    {
        ArgumentNullException.ThrowIfNull(error);
        ArgumentNullException.ThrowIfNull(settings);
        var (errorClass, detail) = error switch
        {
            RedisConnectionException { FailureType: ConnectionFailureType.AuthenticationFailure } =>
                (ErrorClass.Fatal, "the server refused the credentials; check the password (and user) in the connection"),
            RedisConnectionException c when IsAuthentication(c.InnerException?.Message) =>
                (ErrorClass.Fatal, "the server refused the credentials; check the password (and user) in the connection"),
            RedisConnectionException c =>
                (ErrorClass.Transient, $"{Describe(c.FailureType)}; check that the server is running and reachable, then run again"),
            RedisTimeoutException or TimeoutException =>
                (ErrorClass.Transient, "the server did not answer in time; run again"),
            RedisServerException s when IsAuthentication(s.Message) =>
                (ErrorClass.Fatal, "the server refused the credentials; check the password (and user) in the connection"),
            RedisServerException s when IsTransientServerError(s.Message) =>
                (ErrorClass.Transient, FirstLine(s.Message)),
            _ => (ErrorClass.Fatal, FirstLine(error.Message)),
        };

        // The client's own messages name endpoints, not passwords; the check keeps it that way whatever it says.
        var password = settings.Options.Password;
        var safe = string.IsNullOrEmpty(password) || !error.ToString().Contains(password, StringComparison.Ordinal);
        var message = $"{context}: {ConnectionText.Redact(detail)}";
        if (!string.IsNullOrEmpty(password))
        {
            message = message.Replace(password, "***", StringComparison.Ordinal);
        }

        return new SyncException(errorClass, message, safe ? error : null);
    }

    internal static string Format(EndPoint endPoint) => endPoint switch
    {
        DnsEndPoint dns => string.Create(CultureInfo.InvariantCulture, $"{dns.Host}:{(dns.Port == 0 ? DefaultPort : dns.Port)}"),
        IPEndPoint { AddressFamily: System.Net.Sockets.AddressFamily.InterNetworkV6 } ip => string.Create(CultureInfo.InvariantCulture, $"[{ip.Address}]:{ip.Port}"),
        IPEndPoint ip => string.Create(CultureInfo.InvariantCulture, $"{ip.Address}:{ip.Port}"),
        _ => endPoint.ToString() ?? "?",
    };

    /// <summary>
    /// A configuration string starts with a plain endpoint followed by options (<c>host:port,password=…</c>); a URI
    /// has no comma before its user info, path or query. (A comma in a URI password must be written <c>%2C</c>.)
    /// </summary>
    private static bool IsConfigurationString(string text)
    {
        var comma = text.IndexOf(',', StringComparison.Ordinal);
        if (comma < 0)
        {
            return false;
        }

        var first = text[..comma];
        return first.Length > 0 && first.IndexOfAny(['@', '/', '?']) < 0 && !first.StartsWith(':');
    }

    private static RedisConnectionSettings ParseUri(string connection, string rest, bool tls)
    {
        if (!Uri.TryCreate("redis://" + rest, UriKind.Absolute, out var uri) || string.IsNullOrEmpty(uri.Host))
        {
            throw Invalid(connection, "expected redis://[:password@]host[:port][/db], host:port or a StackExchange.Redis configuration string");
        }

        var options = new ConfigurationOptions();
        options.EndPoints.Add(uri.HostNameType == UriHostNameType.IPv6 ? uri.Host.Trim('[', ']') : uri.Host, uri.Port > 0 ? uri.Port : DefaultPort);
        if (uri.UserInfo.Length > 0)
        {
            var colon = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
            // A lone user-info part is a user name (redis://ops@host), as in other clients' URIs: a password always
            // follows a colon, which is also what keeps it out of redacted text.
            var user = Uri.UnescapeDataString(colon < 0 ? uri.UserInfo : uri.UserInfo[..colon]);
            options.User = user.Length > 0 ? user : null;
            if (colon >= 0)
            {
                options.Password = Uri.UnescapeDataString(uri.UserInfo[(colon + 1)..]);
            }
        }

        if (tls)
        {
            options.SslHost = uri.Host;
        }

        var path = Uri.UnescapeDataString(uri.AbsolutePath.Trim('/'));
        if (path.Length > 0)
        {
            if (!int.TryParse(path, NumberStyles.None, CultureInfo.InvariantCulture, out var database))
            {
                throw Invalid(connection, $"the path names the database by number (redis://host:6379/2), got '{path}'");
            }

            options.DefaultDatabase = database;
        }

        var prefix = DefaultPrefix;
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            var name = Uri.UnescapeDataString(eq < 0 ? pair : pair[..eq]);
            var value = eq < 0 ? "" : Uri.UnescapeDataString(pair[(eq + 1)..]);
            if (!name.Equals("prefix", StringComparison.OrdinalIgnoreCase))
            {
                throw Invalid(connection, $"unknown parameter '{name}' (known: prefix)");
            }

            prefix = CheckPrefix(connection, value);
        }

        return new RedisConnectionSettings(options, prefix, "");
    }

    private static RedisConnectionSettings ParseConfigurationString(string connection, string text)
    {
        // prefix= is ours, not the client's: taken out before the client parses the rest.
        var prefix = DefaultPrefix;
        var parts = new List<string>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (part.StartsWith("prefix=", StringComparison.OrdinalIgnoreCase))
            {
                prefix = CheckPrefix(connection, part["prefix=".Length..]);
            }
            else
            {
                parts.Add(part);
            }
        }

        ConfigurationOptions options;
        try
        {
            options = ConfigurationOptions.Parse(string.Join(',', parts));
        }
        catch (ArgumentException e)
        {
            throw Invalid(connection, e.Message);
        }

        if (options.EndPoints.Count == 0)
        {
            throw Invalid(connection, "no server: expected host:port first");
        }

        return new RedisConnectionSettings(options, prefix, "");
    }

    private static string CheckPrefix(string connection, string prefix) =>
        prefix.Length > 0 ? prefix : throw Invalid(connection, "the key prefix must not be empty");

    private static string Describe(ConfigurationOptions options, string prefix)
    {
        var scheme = options.Ssl ? "rediss" : "redis";
        var endpoints = string.Join(',', options.EndPoints.Select(Format));
        return string.Create(CultureInfo.InvariantCulture, $"{scheme}://{endpoints}/{options.DefaultDatabase ?? 0} (prefix {prefix})");
    }

    private static string Describe(ConnectionFailureType failure) => failure switch
    {
        ConnectionFailureType.UnableToConnect or ConnectionFailureType.UnableToResolvePhysicalConnection => "the server could not be reached",
        ConnectionFailureType.SocketFailure or ConnectionFailureType.SocketClosed => "the connection to the server failed",
        ConnectionFailureType.Loading => "the server is still loading its data",
        ConnectionFailureType.ConnectionDisposed => "the connection was closed",
        _ => "the connection failed (" + failure + ")",
    };

    private static bool IsAuthentication(string? message) =>
        message is not null
        && (message.StartsWith("NOAUTH", StringComparison.Ordinal)
            || message.StartsWith("WRONGPASS", StringComparison.Ordinal)
            || message.Contains("invalid password", StringComparison.OrdinalIgnoreCase)
            || message.Contains("invalid username-password", StringComparison.OrdinalIgnoreCase));

    private static bool IsTransientServerError(string message) =>
        message.StartsWith("LOADING", StringComparison.Ordinal)
        || message.StartsWith("BUSY", StringComparison.Ordinal)
        || message.StartsWith("READONLY", StringComparison.Ordinal)
        || message.StartsWith("TRYAGAIN", StringComparison.Ordinal)
        || message.StartsWith("MASTERDOWN", StringComparison.Ordinal)
        || message.StartsWith("CLUSTERDOWN", StringComparison.Ordinal);

    private static string FirstLine(string message)
    {
        var end = message.IndexOfAny(['\r', '\n']);
        return end < 0 ? message : message[..end];
    }

    private static SyncException Invalid(string connection, string problem) =>
        new(ErrorClass.Fatal, $"invalid Redis connection '{ConnectionText.Redact(connection)}': {problem}");
}
