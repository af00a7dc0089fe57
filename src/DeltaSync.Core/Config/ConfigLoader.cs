using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace DeltaSync.Core.Config;

/// <summary>
/// Reads a DeltaSync YAML configuration file into a validated <see cref="SyncConfig"/>
/// (spec: "Configuration Options"; editor schema: <c>schema/deltasync.schema.json</c>).
/// </summary>
/// <remarks>
/// Every problem in the file is collected and reported at once, each with its key path and line.
/// <c>${NAME}</c> and <c>${NAME:-default}</c> are replaced in values before they are validated.
/// </remarks>
public static class ConfigLoader
{
    private const string FileKeyPath = "(file)";
    private const string YamlKeyPath = "(yaml)";

    /// <summary>Loads and validates the configuration file at <paramref name="path"/>.</summary>
    /// <param name="path">The file; relative paths inside it resolve from its folder.</param>
    /// <param name="environment">Looks up <c>${NAME}</c> variables; the process environment when null.</param>
    /// <exception cref="ConfigException">The file is missing, unreadable, not YAML or invalid; <see cref="ConfigException.Errors"/> lists every problem.</exception>
    public static SyncConfig Load(string path, Func<string, string?>? environment = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        if (Directory.Exists(path))
        {
            throw Single(path, FileKeyPath, "is a folder; expected a YAML configuration file such as deltasync.yaml");
        }

        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw Single(path, FileKeyPath, $"the configuration file does not exist (looked for {Path.GetFullPath(path)})");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw Single(path, FileKeyPath, $"the configuration file cannot be read: {ex.Message}");
        }

        return Parse(text, path, environment);
    }

    /// <summary>Validates configuration text as if it had been read from <paramref name="path"/> (which need not exist).</summary>
    /// <param name="yamlText">The YAML document.</param>
    /// <param name="path">Where the text belongs: names errors, the default sync name and the folder relative paths resolve from.</param>
    /// <param name="environment">Looks up <c>${NAME}</c> variables; the process environment when null.</param>
    /// <exception cref="ConfigException">The text is not YAML or the configuration is invalid.</exception>
    public static SyncConfig Parse(string yamlText, string path, Func<string, string?>? environment = null)
    {
        ArgumentNullException.ThrowIfNull(yamlText);
        ArgumentException.ThrowIfNullOrWhiteSpace(path);

        var configPath = Path.GetFullPath(path);
        var baseDirectory = Path.GetDirectoryName(configPath) ?? Directory.GetCurrentDirectory();
        var rootNode = ReadDocument(yamlText, path);

        var reader = new ConfigReader(path, environment ?? Environment.GetEnvironmentVariable);
        var root = rootNode is null
            ? YamlSection.Absent(reader, string.Empty)
            : YamlSection.Create(reader, rootNode, string.Empty, ConfigKeys.Root);
        if (rootNode is null)
        {
            reader.Report("sync", "is required: the file is empty; see examples/deltasync.yaml", null);
        }

        // cdc first: a realtime sync.frequency polls at cdc.polling.interval, and version CDC checks cdc.version.
        var cdc = CdcBlockBinder.Bind(root.Section("cdc", ConfigKeys.Cdc));
        var (sync, name) = SyncBlockBinder.Bind(root.Section("sync", ConfigKeys.Sync, required: true), cdc);
        var conflicts = ConflictResolutionBlockBinder.Bind(root.Section("conflict_resolution", ConfigKeys.ConflictResolution), baseDirectory);
        var state = StateBlockBinder.Bind(root.Section("state", ConfigKeys.State), baseDirectory, Path.GetFileNameWithoutExtension(configPath));

        if (reader.Errors.Count > 0)
        {
            // Stable sort: problems on one line keep the order they were found in; errors without a line go last.
            throw new ConfigException(reader.Errors.OrderBy(e => e.Line ?? int.MaxValue).ToList());
        }

        return new SyncConfig(name ?? DefaultName(configPath), configPath, sync, cdc, conflicts, state);
    }

    /// <summary>The file name without any extension: <c>deltasync</c> for <c>deltasync.yaml</c> and <c>shop.prod.yml</c> → <c>shop</c>.</summary>
    internal static string DefaultName(string configPath)
    {
        var fileName = Path.GetFileName(configPath).TrimStart('.');
        var dot = fileName.IndexOf('.', StringComparison.Ordinal);
        var stem = dot < 0 ? fileName : fileName[..dot];
        return stem.Length > 0 ? stem : "deltasync";
    }

    /// <summary>The document's root mapping; null for an empty document. Anything else is a single, final error.</summary>
    private static YamlMappingNode? ReadDocument(string yamlText, string path)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yamlText));
        }
        catch (YamlException ex)
        {
            var line = ex.Start.Line > 0 ? (int?)Math.Min(ex.Start.Line, int.MaxValue) : null;
            throw Single(path, YamlKeyPath, $"not valid YAML: {ex.Message}", line);
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or FormatException)
        {
            // YamlDotNet reports some malformed input (e.g. an unclosed flow list) this way, without a position.
            throw Single(path, YamlKeyPath, "not valid YAML: the parser could not read the document (check brackets and quotes)");
        }

        if (stream.Documents.Count > 1)
        {
            throw Single(path, YamlKeyPath, $"expected one YAML document, found {stream.Documents.Count} (remove the extra '---')", ConfigReader.LineOf(stream.Documents[1].RootNode));
        }

        return stream.Documents.Count == 0 || ConfigReader.IsNull(stream.Documents[0].RootNode)
            ? null
            : stream.Documents[0].RootNode as YamlMappingNode
              ?? throw Single(
                  path,
                  "(root)",
                  $"expected a mapping with {string.Join(", ", ConfigKeys.Root)} at the top level, got {ConfigReader.Describe(stream.Documents[0].RootNode)}",
                  ConfigReader.LineOf(stream.Documents[0].RootNode));
    }

    private static ConfigException Single(string file, string keyPath, string message, int? line = null) =>
        new([new ConfigError(file, keyPath, message, line)]);
}
