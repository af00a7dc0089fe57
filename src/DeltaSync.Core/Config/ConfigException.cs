namespace DeltaSync.Core.Config;

/// <summary>One problem in a configuration file.</summary>
/// <param name="File">The configuration file.</param>
/// <param name="KeyPath">Where in it, as a dotted path (<c>sync.source.tables[1].priority</c>).</param>
/// <param name="Message">What is wrong and what is expected.</param>
/// <param name="Line">1-based line, when known.</param>
public sealed record ConfigError(string File, string KeyPath, string Message, int? Line = null)
{
    public override string ToString() =>
        Line is { } line ? $"{File}:{line}: {KeyPath}: {Message}" : $"{File}: {KeyPath}: {Message}";
}

/// <summary>The configuration is invalid; <see cref="Errors"/> lists every problem found.</summary>
public sealed class ConfigException : Exception
{
    public ConfigException(IReadOnlyList<ConfigError> errors)
        : base(string.Join(Environment.NewLine, errors.Select(e => e.ToString())))
    {
        Errors = errors;
    }

    public ConfigException()
        : this([])
    {
    }

    public ConfigException(string message)
        : base(message)
    {
        Errors = [];
    }

    public ConfigException(string message, Exception innerException)
        : base(message, innerException)
    {
        Errors = [];
    }

    public IReadOnlyList<ConfigError> Errors { get; } = [];
}
