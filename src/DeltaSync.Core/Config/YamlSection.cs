using NodaTime;
using YamlDotNet.RepresentationModel;

namespace DeltaSync.Core.Config;

/// <summary>
/// One mapping of the configuration file (<c>sync.source</c>, <c>cdc.timestamp</c>…) read by key, with its key path.
/// An absent section answers every key with "not set", so defaults apply and nothing below it is reported twice.
/// </summary>
internal sealed class YamlSection
{
    private readonly ConfigReader reader;
    private readonly Dictionary<string, (YamlNode Key, YamlNode Value)> entries;

    private YamlSection(ConfigReader reader, YamlMappingNode? node, string path, YamlNode? anchor, Dictionary<string, (YamlNode Key, YamlNode Value)> entries)
    {
        this.reader = reader;
        Node = node;
        Path = path;
        this.entries = entries;
        Anchor = anchor ?? node;
    }

    /// <summary>The mapping, or null when the section is absent.</summary>
    public YamlMappingNode? Node { get; }

    /// <summary>The key path, e.g. <c>sync.source</c>; empty for the document root.</summary>
    public string Path { get; }

    public bool IsPresent => Node is not null;

    /// <summary>Where "is required" problems inside this section point: its key in the parent (<c>sync:</c>), else the mapping.</summary>
    public YamlNode? Anchor { get; }

    /// <summary>The reader this section reports to, for values that are not under a key (list items).</summary>
    public ConfigReader Reader => reader;

    public static YamlSection Absent(ConfigReader reader, string path) => new(reader, null, path, null, []);

    /// <summary>Wraps <paramref name="node"/>, reporting keys that are not in <paramref name="knownKeys"/>.</summary>
    public static YamlSection Create(ConfigReader reader, YamlMappingNode node, string path, IReadOnlyList<string> knownKeys, YamlNode? anchor = null)
    {
        var entries = new Dictionary<string, (YamlNode Key, YamlNode Value)>(StringComparer.Ordinal);
        foreach (var (keyNode, value) in node.Children)
        {
            if (keyNode is not YamlScalarNode { Value: { } key })
            {
                reader.Report(path.Length == 0 ? "(root)" : path, "keys must be plain names", keyNode);
                continue;
            }

            var keyPath = Join(path, key);
            if (knownKeys.Contains(key, StringComparer.Ordinal))
            {
                entries[key] = (keyNode, value);
            }
            else if (KeySuggestion.Closest(key, knownKeys) is { } suggestion)
            {
                reader.Report(keyPath, $"unknown key '{key}'; did you mean '{suggestion}'?", keyNode);
            }
            else
            {
                reader.Report(keyPath, $"unknown key '{key}'; expected one of: {string.Join(", ", knownKeys)}", keyNode);
            }
        }

        return new YamlSection(reader, node, path, anchor, entries);
    }

    public string PathOf(string key) => Join(Path, key);

    /// <summary>The raw value node of <paramref name="key"/>, or null when it is not set.</summary>
    public YamlNode? this[string key] => entries.TryGetValue(key, out var entry) ? entry.Value : null;

    public YamlSection Section(string key, IReadOnlyList<string> knownKeys, bool required = false) =>
        IsPresent
            ? reader.Section(this[key], PathOf(key), knownKeys, required, Anchor, entries.TryGetValue(key, out var entry) ? entry.Key : null)
            : YamlSection.Absent(reader, PathOf(key));

    public IReadOnlyList<(YamlNode Node, string Path)> Items(string key, string expected) =>
        reader.Items(this[key], PathOf(key), expected);

    public string? Text(string key) => reader.Text(this[key], PathOf(key));

    public string Text(string key, string defaultValue) => Text(key) ?? defaultValue;

    /// <summary>A required text value; when the section itself is absent, that absence was already reported.</summary>
    public string? RequiredText(string key, string hint) =>
        IsPresent ? reader.RequiredText(this[key], PathOf(key), hint, Anchor) : null;

    public int Integer(string key, int defaultValue, int min = 1, int max = int.MaxValue) =>
        reader.Integer(this[key], PathOf(key), defaultValue, min, max);

    public long Integer64(string key, long defaultValue, long min = 1) =>
        reader.Integer64(this[key], PathOf(key), defaultValue, min);

    public bool Boolean(string key, bool defaultValue) => reader.Boolean(this[key], PathOf(key), defaultValue);

    public T Choice<T>(string key, T defaultValue, ConfigChoice<T> choices) =>
        reader.Choice(this[key], PathOf(key), defaultValue, choices);

    public T? OptionalChoice<T>(string key, ConfigChoice<T> choices)
        where T : struct =>
        reader.TryChoice(this[key], PathOf(key), choices, out var value) ? value : null;

    /// <summary>One of <paramref name="choices"/> when the value is text; null when unset or invalid (reported).</summary>
    public string? OptionalName(string key, ConfigChoice<string> choices) =>
        reader.TryChoice(this[key], PathOf(key), choices, out var value) ? value : null;

    public string? RequiredName(string key, ConfigChoice<string> choices)
    {
        if (IsPresent && ConfigReader.IsNull(this[key]))
        {
            Report(key, $"is required: one of {choices.Names}");
            return null;
        }

        return OptionalName(key, choices);
    }

    public Duration Duration(string key, Duration defaultValue, bool allowZero = false) =>
        reader.Duration(this[key], PathOf(key), allowZero) ?? defaultValue;

    public Duration? OptionalDuration(string key, bool allowZero = false) =>
        reader.Duration(this[key], PathOf(key), allowZero);

    public double? Fraction(string key) => reader.Fraction(this[key], PathOf(key));

    public IReadOnlyList<string>? Names(string key) => reader.Names(this[key], PathOf(key));

    public void Report(string key, string message) => reader.Report(PathOf(key), message, this[key] ?? Anchor);

    private static string Join(string path, string key) => path.Length == 0 ? key : $"{path}.{key}";
}
