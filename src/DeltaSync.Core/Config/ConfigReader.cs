using System.Globalization;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Time;
using NodaTime;
using YamlDotNet.RepresentationModel;

namespace DeltaSync.Core.Config;

/// <summary>
/// Turns YAML nodes into typed values for one configuration file, collecting every problem instead of
/// stopping at the first, so a user fixes the whole file in one pass.
/// </summary>
/// <remarks>
/// Each scalar is interpolated (<c>${ENV}</c>) as it is read. Messages quote offending typed values (numbers,
/// choices, durations) so the user can find them, masked by <see cref="ConnectionText.Redact"/>; free text such as
/// a connection string is never quoted, because it may hold an interpolated secret.
/// </remarks>
internal sealed class ConfigReader
{
    private const int MaxQuotedLength = 60;

    private readonly List<ConfigError> errors = [];
    private readonly Func<string, string?> environment;

    public ConfigReader(string file, Func<string, string?> environment)
    {
        File = file;
        this.environment = environment;
    }

    /// <summary>The file named in every error.</summary>
    public string File { get; }

    public IReadOnlyList<ConfigError> Errors => errors;

    public void Report(string keyPath, string message, YamlNode? at) =>
        errors.Add(new ConfigError(File, keyPath, message, LineOf(at)));

    public static int? LineOf(YamlNode? node) =>
        node is null ? null : (int)Math.Min(node.Start.Line, int.MaxValue);

    /// <summary>The mapping at <paramref name="path"/> with its keys checked, or an absent section (reported if required).</summary>
    /// <param name="node">The value node, if any.</param>
    /// <param name="path">Its key path.</param>
    /// <param name="knownKeys">The keys the mapping may have.</param>
    /// <param name="required">Whether a missing section is a problem.</param>
    /// <param name="parent">Where a missing section is reported: the parent's anchor.</param>
    /// <param name="key">The section's own key node, where problems inside it that have no node of their own point.</param>
    public YamlSection Section(YamlNode? node, string path, IReadOnlyList<string> knownKeys, bool required = false, YamlNode? parent = null, YamlNode? key = null)
    {
        if (node is YamlMappingNode mapping)
        {
            return YamlSection.Create(this, mapping, path, knownKeys, key);
        }

        if (IsNull(node))
        {
            if (required)
            {
                Report(path, "is required", node ?? parent);
            }
        }
        else
        {
            Report(path, $"expected a mapping of {DescribeKeys(knownKeys)}, got {Describe(node!)}", node);
        }

        return YamlSection.Absent(this, path);
    }

    /// <summary>The items of a list, each with its key path; empty (and reported) when the node is not a list.</summary>
    public IReadOnlyList<(YamlNode Node, string Path)> Items(YamlNode? node, string path, string expected)
    {
        if (node is YamlSequenceNode sequence)
        {
            return sequence.Children.Select((item, i) => (item, $"{path}[{i}]")).ToList();
        }

        if (!IsNull(node))
        {
            Report(path, $"expected {expected}, got {Describe(node!)}", node);
        }

        return [];
    }

    /// <summary>A scalar's interpolated text; null when absent, null, empty, not a scalar (reported) or badly interpolated (reported).</summary>
    public string? Text(YamlNode? node, string path) =>
        Read(node, path, out var text) == ReadStatus.Value ? text : null;

    /// <summary>Like <see cref="Text"/>, but a missing or empty value is reported as "is required: <paramref name="hint"/>".</summary>
    public string? RequiredText(YamlNode? node, string path, string hint, YamlNode? parent)
    {
        var status = Read(node, path, out var text);
        if (status == ReadStatus.Absent)
        {
            Report(path, $"is required: {hint}", node ?? parent);
        }

        return status == ReadStatus.Value ? text : null;
    }

    public int Integer(YamlNode? node, string path, int defaultValue, int min, int max)
    {
        var text = Text(node, path);
        if (text is null)
        {
            return defaultValue;
        }

        if (TryParseInteger(text, out var value) && value >= min && value <= max)
        {
            return (int)value;
        }

        Report(path, $"expected {DescribeRange(min, max)}, got {Quote(text)}", node);
        return defaultValue;
    }

    public long Integer64(YamlNode? node, string path, long defaultValue, long min)
    {
        var text = Text(node, path);
        if (text is null)
        {
            return defaultValue;
        }

        if (TryParseInteger(text, out var value) && value >= min)
        {
            return value;
        }

        Report(path, $"expected {DescribeRange(min, long.MaxValue)}, got {Quote(text)}", node);
        return defaultValue;
    }

    public bool Boolean(YamlNode? node, string path, bool defaultValue)
    {
        var text = Text(node, path);
        if (text is null)
        {
            return defaultValue;
        }

        if (bool.TryParse(text, out var value))
        {
            return value;
        }

        Report(path, $"expected true or false, got {Quote(text)}", node);
        return defaultValue;
    }

    public T Choice<T>(YamlNode? node, string path, T defaultValue, ConfigChoice<T> choices) =>
        TryChoice(node, path, choices, out var value) ? value : defaultValue;

    /// <summary>False when the value is not set or not one of <paramref name="choices"/> (reported).</summary>
    public bool TryChoice<T>(YamlNode? node, string path, ConfigChoice<T> choices, out T value)
    {
        value = default!;
        var text = Text(node, path);
        if (text is null)
        {
            return false;
        }

        if (choices.TryGet(text, out value))
        {
            return true;
        }

        Report(path, $"expected one of {choices.Names}, got {Quote(text)}", node);
        return false;
    }

    /// <summary>A duration; <paramref name="allowZero"/> false demands a strictly positive one.</summary>
    public Duration? Duration(YamlNode? node, string path, bool allowZero)
    {
        var text = Text(node, path);
        if (text is null)
        {
            return null;
        }

        if (!DurationParser.TryParse(text, out var value))
        {
            Report(path, $"expected a duration such as '5 minutes', '30s', '1h30m' or 'PT5M', got {Quote(text)}", node);
            return null;
        }

        if (!allowZero && value == NodaTime.Duration.Zero)
        {
            Report(path, "must be longer than zero", node);
            return null;
        }

        return value;
    }

    public double? Fraction(YamlNode? node, string path)
    {
        var text = Text(node, path);
        if (text is null)
        {
            return null;
        }

        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value is >= 0 and <= 1)
        {
            return value;
        }

        Report(path, $"expected a number between 0 and 1, got {Quote(text)}", node);
        return null;
    }

    /// <summary>A list of names, also accepting a single name; null when absent.</summary>
    public IReadOnlyList<string>? Names(YamlNode? node, string path)
    {
        if (node is YamlSequenceNode)
        {
            var names = new List<string>();
            foreach (var (item, itemPath) in Items(node, path, "a list of names"))
            {
                var name = Text(item, itemPath);
                if (name is null)
                {
                    if (item is YamlScalarNode)
                    {
                        Report(itemPath, "expected a name, got an empty value", item);
                    }
                }
                else
                {
                    names.Add(name);
                }
            }

            return names;
        }

        if (node is YamlMappingNode)
        {
            Report(path, "expected a name or a list of names, got a mapping", node);
            return null;
        }

        var single = Text(node, path);
        return single is null ? null : [single];
    }

    private ReadStatus Read(YamlNode? node, string path, out string text)
    {
        text = string.Empty;
        if (IsNull(node))
        {
            return ReadStatus.Absent;
        }

        if (node is not YamlScalarNode scalar)
        {
            Report(path, $"expected a single value, got {Describe(node!)}", node);
            return ReadStatus.Invalid;
        }

        if (!EnvironmentInterpolation.TryInterpolate(scalar.Value ?? string.Empty, environment, out text, out var problems))
        {
            foreach (var problem in problems)
            {
                Report(path, problem, node);
            }

            return ReadStatus.Invalid;
        }

        // An empty result (`${VAR:-}`, or "") means "not set", so a default applies.
        return text.Length == 0 ? ReadStatus.Absent : ReadStatus.Value;
    }

    /// <summary>Plain <c>~</c>, <c>null</c> or nothing at all: YAML's null. A quoted "null" is a string.</summary>
    public static bool IsNull(YamlNode? node) =>
        node is null
        || node is YamlScalarNode { Style: YamlDotNet.Core.ScalarStyle.Plain, Value: null or "" or "~" or "null" or "Null" or "NULL" };

    public static string Describe(YamlNode node) => node switch
    {
        YamlMappingNode => "a mapping",
        YamlSequenceNode => "a list",
        YamlScalarNode scalar => Quote(scalar.Value ?? string.Empty),
        _ => "an alias",
    };

    /// <summary>The value in quotes for a message, shortened, and with anything that looks like a password masked.</summary>
    public static string Quote(string text)
    {
        var shown = ConnectionText.Redact(text);
        return shown.Length <= MaxQuotedLength ? $"'{shown}'" : $"'{shown[..MaxQuotedLength]}…'";
    }

    private static string DescribeKeys(IReadOnlyList<string> keys) =>
        keys.Count <= 4 ? string.Join(", ", keys) : string.Join(", ", keys.Take(3)) + ", …";

    private static string DescribeRange(long min, long max) => (min, max) switch
    {
        (1, long.MaxValue or int.MaxValue) => "a positive integer",
        (0, long.MaxValue or int.MaxValue) => "a non-negative integer",
        (1, _) => $"a positive integer up to {max}",
        _ => $"an integer from {min} to {max}",
    };

    // YAML 1.1 lets digits be grouped with '_' (1_000_000); people copy that from other tools.
    private static bool TryParseInteger(string text, out long value)
    {
        var digits = text.Trim();
        if (digits.Contains('_', StringComparison.Ordinal))
        {
            if (digits.StartsWith('_') || digits.EndsWith('_') || digits.Contains("__", StringComparison.Ordinal))
            {
                value = 0;
                return false;
            }

            digits = digits.Replace("_", string.Empty, StringComparison.Ordinal);
        }

        return long.TryParse(digits, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out value);
    }

    private enum ReadStatus
    {
        Absent,
        Value,
        Invalid,
    }
}
