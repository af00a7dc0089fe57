using System.Reflection;
using System.Runtime.Loader;
using DeltaSync.Core.Config;

namespace DeltaSync.Core.Conflicts;

/// <summary>
/// Loads the <see cref="IConflictResolver"/> named by <c>conflict_resolution.plugin</c> into its own
/// <see cref="AssemblyLoadContext"/>. Assemblies the host already has (DeltaSync.Core above all, so the interface is
/// the same type on both sides) are shared; the plug-in's other dependencies resolve beside it (its .deps.json).
/// </summary>
public static class ConflictPluginLoader
{
    /// <summary>Creates the configured resolver.</summary>
    /// <param name="options">The plug-in block.</param>
    /// <param name="configFile">The configuration file, named in errors.</param>
    /// <exception cref="ConfigException">The assembly cannot be loaded, the type is missing, does not implement the interface or cannot be created.</exception>
    public static IConflictResolver Load(ConflictPluginOptions options, string configFile)
    {
        ArgumentNullException.ThrowIfNull(options);
        Assembly assembly;
        try
        {
            var context = new PluginLoadContext(options.AssemblyPath);
            assembly = context.LoadFromAssemblyPath(options.AssemblyPath);
        }
        catch (Exception e) when (e is FileNotFoundException or FileLoadException or BadImageFormatException or IOException)
        {
            throw Error(configFile, "conflict_resolution.plugin.assembly", $"the plug-in assembly {options.AssemblyPath} cannot be loaded: {e.Message}");
        }

        var type = assembly.GetType(options.TypeName, throwOnError: false);
        if (type is null)
        {
            var candidates = ResolverTypes(assembly).Select(t => t.FullName).ToList();
            var hint = candidates.Count == 0
                ? "it has no public type implementing DeltaSync.Core.Conflicts.IConflictResolver"
                : $"resolvers it has: {string.Join(", ", candidates)}";
            throw Error(configFile, "conflict_resolution.plugin.type", $"type '{options.TypeName}' not found in {Path.GetFileName(options.AssemblyPath)}; {hint}");
        }

        if (!typeof(IConflictResolver).IsAssignableFrom(type) || type.IsAbstract)
        {
            throw Error(configFile, "conflict_resolution.plugin.type", $"type '{options.TypeName}' does not implement DeltaSync.Core.Conflicts.IConflictResolver (a concrete class with a public parameterless constructor)");
        }

        try
        {
            return (IConflictResolver)Activator.CreateInstance(type)!;
        }
        catch (Exception e) when (e is MissingMethodException or TargetInvocationException or MemberAccessException)
        {
            throw Error(configFile, "conflict_resolution.plugin.type", $"type '{options.TypeName}' cannot be created: {(e.InnerException ?? e).Message}");
        }
    }

    private static IEnumerable<Type> ResolverTypes(Assembly assembly)
    {
        try
        {
            return assembly.GetExportedTypes().Where(t => typeof(IConflictResolver).IsAssignableFrom(t) && !t.IsAbstract);
        }
        catch (ReflectionTypeLoadException)
        {
            return [];
        }
    }

    private static ConfigException Error(string configFile, string keyPath, string message) =>
        new([new ConfigError(configFile, keyPath, message)]);

    private sealed class PluginLoadContext(string assemblyPath) : AssemblyLoadContext(name: $"deltasync-plugin:{Path.GetFileName(assemblyPath)}")
    {
        private readonly AssemblyDependencyResolver _resolver = new(assemblyPath);

        protected override Assembly? Load(AssemblyName assemblyName)
        {
            // Shared with the host: the interface must be one type, and the host's copy is the one that is loaded.
            if (Default.Assemblies.Any(a => string.Equals(a.GetName().Name, assemblyName.Name, StringComparison.Ordinal)))
            {
                return null;
            }

            var path = _resolver.ResolveAssemblyToPath(assemblyName);
            return path is null ? null : LoadFromAssemblyPath(path);
        }
    }
}
