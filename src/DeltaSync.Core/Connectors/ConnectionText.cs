using System.Text.RegularExpressions;

namespace DeltaSync.Core.Connectors;

/// <summary>Hides secrets in connection strings before anything shows them to people.</summary>
public static partial class ConnectionText
{
    /// <summary>The connection with passwords replaced by <c>***</c>, safe for logs, reports and errors.</summary>
    public static string Redact(string connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var text = UriPassword().Replace(connection, "$1***@");
        text = KeyValuePassword().Replace(text, "$1=***");
        return text;
    }

    /// <summary>
    /// <c>scheme://user:password@</c> up to the last '@' of the token: a password may hold an '@' that was not
    /// percent-encoded, and showing what follows its first one would show part of it. It may hold spaces too (the URI
    /// still parses), so the password ends at the first '@' whose host part (no '@') runs to a space or the end.
    /// </summary>
    [GeneratedRegex(@"(://[^:/@\s]*:)[^\r\n]*?@(?=[^@\s]*(?:\s|$))")]
    private static partial Regex UriPassword();

    [GeneratedRegex(@"((?:password|pwd|secret|token|api[_-]?key)\s*)=[^;]*", RegexOptions.IgnoreCase)]
    private static partial Regex KeyValuePassword();
}
