using System.Text.RegularExpressions;

namespace DeltaSync.Core.Connectors;

/// <summary>Helpers for connection strings: recognising schemes and hiding secrets in anything shown to people.</summary>
public static partial class ConnectionText
{
    /// <summary>The URI scheme (<c>sqlite</c>, <c>postgresql</c>…) or null for a native connection string.</summary>
    public static string? Scheme(string connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var m = SchemeRegex().Match(connection);
        return m.Success ? m.Groups[1].Value.ToLowerInvariant() : null;
    }

    /// <summary>The connection with passwords replaced by <c>***</c>, safe for logs, reports and errors.</summary>
    public static string Redact(string connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var text = UriPassword().Replace(connection, "$1***@");
        text = KeyValuePassword().Replace(text, "$1=***");
        return text;
    }

    [GeneratedRegex(@"^([a-zA-Z][a-zA-Z0-9+.\-]*):(?!\\)")]
    private static partial Regex SchemeRegex();

    [GeneratedRegex(@"(://[^:/@\s]*:)[^@\s]*@")]
    private static partial Regex UriPassword();

    [GeneratedRegex(@"((?:password|pwd|secret|token|api[_-]?key)\s*)=[^;]*", RegexOptions.IgnoreCase)]
    private static partial Regex KeyValuePassword();
}
