using YamlDotNet.RepresentationModel;

namespace DeltaSync.Core.Config;

/// <summary>
/// Binds <c>sync.source.tables</c>: each item is a table name or a mapping with the table's own settings,
/// e.g. <c>["customers", {name: orders, primary_key: [id], priority: critical}]</c>.
/// </summary>
internal static class TableListBinder
{
    public static IReadOnlyList<TableOptions> Bind(YamlSection source, CdcMethod defaultMethod, VersionCdcOptions version, YamlSection sync)
    {
        if (!source.IsPresent)
        {
            return [];
        }

        if (ConfigReader.IsNull(source["tables"]))
        {
            source.Report("tables", "is required: list the tables to sync, e.g. [customers, orders]");
            return [];
        }

        var items = source.Items("tables", "a list of table names or table mappings");
        if (items.Count == 0)
        {
            if (source["tables"] is YamlSequenceNode)
            {
                source.Report("tables", "is empty: list at least one table to sync");
            }

            return [];
        }

        var tables = new List<TableOptions>();
        var firstPathByName = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var inheritingWithoutVersion = new List<string>();
        var versionHasField = version.VersionField is not null || version.SequenceField is not null;
        foreach (var (node, path) in items)
        {
            var table = node is YamlMappingNode
                ? BindMapping(source.Reader.Section(node, path, ConfigKeys.Table), versionHasField)
                : BindName(source.Reader, node, path);
            if (table is null)
            {
                continue;
            }

            if (!firstPathByName.TryAdd(table.Name, path))
            {
                source.Reader.Report(path, $"duplicate table '{table.Name}'; it is already listed at {firstPathByName[table.Name]}", node);
                continue;
            }

            if (table.CdcMethod is null && defaultMethod == CdcMethod.Version && !versionHasField
                && table.VersionField is null && table.SequenceField is null)
            {
                inheritingWithoutVersion.Add(table.Name);
            }

            tables.Add(table);
        }

        if (inheritingWithoutVersion.Count > 0)
        {
            sync.Report(
                "cdc_method",
                "cdc_method 'version' needs a version_field or sequence_field: set one in cdc.version or on each table "
                + $"(missing for {string.Join(", ", inheritingWithoutVersion)})");
        }

        return tables;
    }

    private static TableOptions? BindName(ConfigReader reader, YamlNode node, string path)
    {
        if (node is YamlSequenceNode)
        {
            reader.Report(path, "expected a table name or a mapping such as {name: orders, primary_key: [id]}, got a list", node);
            return null;
        }

        var name = reader.Text(node, path)?.Trim();
        if (string.IsNullOrEmpty(name))
        {
            if (node is YamlScalarNode)
            {
                reader.Report(path, "expected a table name, got an empty value", node);
            }

            return null;
        }

        return new TableOptions(name);
    }

    private static TableOptions? BindMapping(YamlSection table, bool versionHasField)
    {
        var name = table.RequiredText("name", "the table's name");
        var primaryKey = table.Names("primary_key");
        if (primaryKey is { Count: 0 })
        {
            table.Report("primary_key", "is empty: name the key column(s), or leave primary_key out to use the table's own key");
        }

        var options = new TableOptions(
            name?.Trim() ?? string.Empty,
            primaryKey is { Count: > 0 } ? primaryKey : null,
            table.OptionalChoice("cdc_method", ConfigChoices.CdcMethods),
            table.Text("updated_at_field"),
            table.Text("created_at_field"),
            table.Text("version_field"),
            table.Text("sequence_field"),
            table.Choice("priority", TablePriority.Normal, ConfigChoices.Priorities))
        {
            SoftDelete = BindSoftDelete(table.Section("soft_delete", ConfigKeys.SoftDelete)),
        };

        if (options.CdcMethod == CdcMethod.Version && !versionHasField && options.VersionField is null && options.SequenceField is null)
        {
            table.Report("cdc_method", "cdc_method 'version' needs a version_field or sequence_field on this table or in cdc.version");
        }

        return name is null ? null : options;
    }

    /// <summary><c>soft_delete: {field: deleted_at}</c> or <c>{field: is_deleted, deleted_values: [1, true], mode: keep}</c>.</summary>
    private static SoftDeleteOptions? BindSoftDelete(YamlSection softDelete)
    {
        if (!softDelete.IsPresent)
        {
            return null;
        }

        var field = softDelete.RequiredText("field", "the column that marks a row deleted, e.g. deleted_at or is_deleted");
        var values = softDelete.Names("deleted_values");
        if (values is { Count: 0 })
        {
            softDelete.Report("deleted_values", "is empty: list the values that mean deleted (e.g. [1, true]), or leave it out to treat any non-NULL value as deleted");
        }

        var mode = softDelete.Choice("mode", SoftDeleteMode.Propagate, ConfigChoices.SoftDeleteModes);
        return field is null ? null : new SoftDeleteOptions(field.Trim(), values is { Count: > 0 } ? values : null, mode);
    }
}
