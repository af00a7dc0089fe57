using DeltaSync.Core.Config;

namespace DeltaSync.Core.Tests.Config;

/// <summary>Shared fixtures: a place configs pretend to live and helpers to parse them.</summary>
internal static class ConfigText
{
    /// <summary>A folder that need not exist: <see cref="ConfigLoader.Parse"/> never touches the disk.</summary>
    public static readonly string Folder = Path.Combine(Path.GetTempPath(), "deltasync-config-tests");

    public static readonly string FilePath = Path.Combine(Folder, "shop.yaml");

    /// <summary>The smallest valid configuration.</summary>
    public const string Minimal = """
        sync:
          source:
            connection: "sqlite:source.db"
            tables: [customers]
          destination:
            connection: "sqlite:dest.db"
        """;

    public static Func<string, string?> Environment(params (string Name, string Value)[] variables)
    {
        var map = variables.ToDictionary(v => v.Name, v => v.Value, StringComparer.Ordinal);
        return name => map.GetValueOrDefault(name);
    }

    public static SyncConfig Parse(string yaml, Func<string, string?>? environment = null) =>
        ConfigLoader.Parse(yaml, FilePath, environment ?? Environment());

    public static IReadOnlyList<ConfigError> Errors(string yaml, Func<string, string?>? environment = null) =>
        Assert.Throws<ConfigException>(() => Parse(yaml, environment)).Errors;

    public static ConfigError SingleError(string yaml, Func<string, string?>? environment = null) =>
        Assert.Single(Errors(yaml, environment));

    /// <summary>The repository root, found from the test binaries' folder.</summary>
    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "DeltaSync.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("DeltaSync.sln not found above " + AppContext.BaseDirectory);
    }
}
