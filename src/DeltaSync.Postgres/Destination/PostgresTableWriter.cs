using System.Globalization;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using Npgsql;

namespace DeltaSync.Postgres.Destination;

/// <summary>
/// Creates and evolves one destination table and writes batches to it: binary COPY into a session-local staging table,
/// then one <c>DELETE … USING</c> and one <c>INSERT … SELECT … ON CONFLICT DO UPDATE</c>, inside the caller's transaction.
/// </summary>
internal sealed class PostgresTableWriter
{
    private const string OpColumn = "__deltasync_delete";

    private readonly PgTable _target;
    private readonly TableSchema _schema;
    private readonly PgColumn[] _columns;

    /// <summary>
    /// Indexes (into <see cref="_columns"/>) of the columns written: all but those the destination generates itself
    /// (<c>GENERATED ALWAYS AS … STORED</c> there), which PostgreSQL computes from the row, as a subscriber of its
    /// logical replication does.
    /// </summary>
    private readonly int[] _written;

    /// <summary>Per column, the most decimal places the column keeps (numeric(p,s)), or -1: more would be rounded away.</summary>
    private readonly int[] _scales;
    private readonly string[] _stageTypes;
    private readonly Action<NpgsqlBinaryImporter, object>[] _writers;
    private readonly string _stage;

    /// <summary>
    /// Whether batches of new rows go straight into the table by binary COPY (every column's staged type is its own):
    /// cleared for good once the table turns out to hold rows the ledger does not know (a reset, a pre-filled table).
    /// </summary>
    private bool _direct;

    private PostgresTableWriter(PgTable target, TableSchema schema, int serial)
    {
        _target = target;
        _schema = schema;
        _columns = schema.Columns.Select(c => target.Columns.First(t => string.Equals(t.Name, c.Name, StringComparison.OrdinalIgnoreCase))).ToArray();
        if (_columns.FirstOrDefault(c => c.IsGenerated && schema.PrimaryKey.Contains(c.Name, StringComparer.OrdinalIgnoreCase)) is { } generatedKey)
        {
            throw new SyncException(
                ErrorClass.Fatal,
                $"destination table '{target.Name}': key column '{generatedKey.Name}' is a generated column there, so rows cannot be written by key. Make it a plain column, or let DeltaSync create the table.");
        }

        _written = Enumerable.Range(0, _columns.Length).Where(i => !_columns[i].IsGenerated).ToArray();
        _scales = _columns.Select(NumericScale).ToArray();
        _stageTypes = _columns.Select(StageType).ToArray();
        _writers = _stageTypes.Select(CopyWriters.For).ToArray();
        _stage = "deltasync_stage_" + serial.ToString(CultureInfo.InvariantCulture);
        _direct = _written.All(i => _columns[i] is var c && c.IsNative && (_stageTypes[i] == c.BaseType + (c.IsArray ? "[]" : "") || (!c.IsArray && _stageTypes[i] == "text")));
    }

    public PgTable Target => _target;

    /// <summary>The (source) schema batches are written in: column order of every row.</summary>
    public TableSchema Schema => _schema;

    /// <summary>
    /// Creates the table from the source schema when missing (a PostgreSQL source's declared types kept, other systems'
    /// columns by kind), or adds the columns the source gained and widens those whose type a PostgreSQL source widened
    /// (<see cref="ColumnWidening"/>). Returns the table and what changed in it.
    /// </summary>
    public static async Task<(PgTable Table, TableEvolution Evolution)> PrepareAsync(NpgsqlConnection connection, string table, TableSchema source, CancellationToken cancellationToken)
    {
        var fromPostgres = source.Dialect == "postgresql";
        var existing = await PostgresCatalog.ReadAsync(connection, table, cancellationToken).ConfigureAwait(false);
        var (schemaName, tableName) = PostgresSql.SplitName(table);
        var changes = new List<string>();
        var refused = new List<string>();
        var notes = new List<string>();
        if (existing is null)
        {
            var qualified = schemaName is null ? PostgresSql.Quote(tableName) : PostgresSql.Qualified(schemaName, tableName);
            if (schemaName is not null)
            {
                // A source table outside public (sales.orders) lands in a schema of the same name.
                await ExecuteAsync(connection, $"CREATE SCHEMA IF NOT EXISTS {PostgresSql.Quote(schemaName)}", cancellationToken).ConfigureAwait(false);
            }

            var types = await TypesAsync(connection, source.Columns, fromPostgres, notes, cancellationToken).ConfigureAwait(false);
            var columns = source.Columns.Select(c =>
                $"{PostgresSql.Quote(c.Name)} {types[c.Name]}{(c.IsNullable || c.IsPrimaryKey ? "" : " NOT NULL")}{(types[c.Name] == PostgresTypes.ForColumn(c, fromPostgres) ? Default(c, fromPostgres) : "")}");
            var sql = $"CREATE TABLE IF NOT EXISTS {qualified} ({string.Join(", ", columns)}, PRIMARY KEY ({PostgresSql.ColumnList(source.PrimaryKey)}))";
            await ExecuteAsync(connection, sql, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            var added = source.Columns.Where(c => !existing.Columns.Any(e => string.Equals(e.Name, c.Name, StringComparison.OrdinalIgnoreCase))).ToList();
            var types = await TypesAsync(connection, added, fromPostgres, notes, cancellationToken).ConfigureAwait(false);
            foreach (var column in added)
            {
                var type = types[column.Name];
                await ExecuteAsync(
                    connection,
                    $"ALTER TABLE {existing.QualifiedName} ADD COLUMN IF NOT EXISTS {PostgresSql.Quote(column.Name)} {type}{(type == PostgresTypes.ForColumn(column, fromPostgres) ? Default(column, fromPostgres) : "")}",
                    cancellationToken).ConfigureAwait(false);
                changes.Add($"column '{column.Name}' added ({type})");
            }

            if (fromPostgres)
            {
                await WidenAsync(connection, existing, source, changes, refused, cancellationToken).ConfigureAwait(false);
            }

            await RelaxDroppedAsync(connection, existing, source, changes, refused, cancellationToken).ConfigureAwait(false);
        }

        var prepared = await PostgresCatalog.ReadAsync(connection, table, cancellationToken).ConfigureAwait(false)
            ?? throw new SyncException(ErrorClass.Fatal, $"destination table '{table}' could not be created");
        if (!await HasUniqueKeyAsync(connection, prepared, source.PrimaryKey, cancellationToken).ConfigureAwait(false))
        {
            throw new SyncException(
                ErrorClass.Fatal,
                $"destination table '{table}' has no primary key or unique index on ({string.Join(", ", source.PrimaryKey)}); upserts need one. Add it, or let DeltaSync create the table.");
        }

        return (prepared, changes.Count == 0 && refused.Count == 0 && notes.Count == 0 ? TableEvolution.None : new TableEvolution(changes, refused) { Notes = notes });
    }

    /// <summary>
    /// The type each column is created with: the PostgreSQL source's own declaration where the destination knows that
    /// type; <c>text</c> where it does not — an enum, domain or composite type of the source's (or an array of one) that
    /// the destination lacks — with a note, since such values travel as their text anyway (an array as its literal).
    /// </summary>
    private static async Task<Dictionary<string, string>> TypesAsync(NpgsqlConnection connection, IReadOnlyList<ColumnSchema> columns, bool fromPostgres, List<string> notes, CancellationToken cancellationToken)
    {
        var types = columns.ToDictionary(c => c.Name, c => PostgresTypes.ForColumn(c, fromPostgres), StringComparer.Ordinal);
        if (!fromPostgres || columns.Count == 0)
        {
            return types;
        }

        var declared = types.Values.Distinct(StringComparer.Ordinal).ToArray();
        var known = new HashSet<string>(StringComparer.Ordinal);
        await using (var command = new NpgsqlCommand("SELECT t FROM unnest($1::text[]) AS t WHERE to_regtype(t) IS NOT NULL", connection))
        {
            command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = declared });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                known.Add(reader.GetString(0));
            }
        }

        foreach (var column in columns.Where(c => !known.Contains(types[c.Name])))
        {
            notes.Add($"column '{column.Name}' is of the source's type {types[column.Name]}, which the destination does not have: created as text holding its values' text (create the type at the destination before the table is created to keep it)");
            types[column.Name] = "text";
        }

        return types;
    }

    /// <summary>
    /// Widens the columns whose type the (PostgreSQL) source widened, one statement each so that one the destination
    /// refuses (a view depends on the column, the user does not own the table) leaves the others widened. Never narrows.
    /// </summary>
    private static async Task WidenAsync(NpgsqlConnection connection, PgTable existing, TableSchema source, List<string> changes, List<string> refused, CancellationToken cancellationToken)
    {
        foreach (var column in source.Columns)
        {
            var current = existing.Columns.FirstOrDefault(e => string.Equals(e.Name, column.Name, StringComparison.OrdinalIgnoreCase));
            if (current is null || current.IsGenerated || ColumnWidening.WidenedType(current.TypeName, column.DeclaredType) is not { } wider)
            {
                continue;
            }

            try
            {
                await ExecuteAsync(connection, $"ALTER TABLE {existing.QualifiedName} ALTER COLUMN {PostgresSql.Quote(current.Name)} TYPE {wider}", cancellationToken).ConfigureAwait(false);
                changes.Add($"column '{current.Name}' widened from {current.TypeName} to {wider}, as at the source");
            }
            catch (PostgresException e) when (PostgresConnectionFactory.Classify(e, "").ErrorClass != ErrorClass.Transient)
            {
                refused.Add($"column '{current.Name}' stays {current.TypeName} (the source's is now {wider}): {e.MessageText} (SQLSTATE {e.SqlState}). Values that do not fit it are dead-lettered; widen it by hand, then run 'deltasync dlq replay'");
            }
        }
    }

    /// <summary>
    /// Drops NOT NULL from a column the source no longer has (dropped or renamed there) and the destination fills from
    /// nothing else (no default): rows written from now on carry no value for it, so without this every later row of
    /// the table would be refused. The column and the values it holds stay; nothing is ever dropped at the destination.
    /// </summary>
    private static async Task RelaxDroppedAsync(NpgsqlConnection connection, PgTable existing, TableSchema source, List<string> changes, List<string> refused, CancellationToken cancellationToken)
    {
        foreach (var column in existing.Columns)
        {
            if (!column.NotNull || column.KeyOrdinal > 0 || column.DefaultSql is not null || column.IsGenerated || column.IsVirtual
                || source.Columns.Any(c => string.Equals(c.Name, column.Name, StringComparison.OrdinalIgnoreCase)))
            {
                continue;
            }

            try
            {
                await ExecuteAsync(connection, $"ALTER TABLE {existing.QualifiedName} ALTER COLUMN {PostgresSql.Quote(column.Name)} DROP NOT NULL", cancellationToken).ConfigureAwait(false);
                changes.Add($"column '{column.Name}' is no longer at the source: NOT NULL dropped at the destination (its values are kept; rows written from now on leave it NULL)");
            }
            catch (PostgresException e) when (PostgresConnectionFactory.Classify(e, "").ErrorClass != ErrorClass.Transient)
            {
                refused.Add($"column '{column.Name}' is no longer at the source but stays NOT NULL: {e.MessageText} (SQLSTATE {e.SqlState}). Rows are refused until it accepts NULL; run ALTER TABLE … ALTER COLUMN … DROP NOT NULL by hand, then 'deltasync dlq replay'");
            }
        }
    }

    public static PostgresTableWriter Create(PgTable target, TableSchema schema, int serial) => new(target, schema, serial);

    /// <summary>Whether this writer was built for <paramref name="schema"/> (same columns in the same order).</summary>
    public bool Fits(TableSchema schema) =>
        schema.Columns.Count == _schema.Columns.Count && schema.Columns.Select(c => c.Name).SequenceEqual(_schema.Columns.Select(c => c.Name), StringComparer.OrdinalIgnoreCase);

    /// <summary>Writes the final state of each key inside the open transaction; returns nothing (counts are the caller's).</summary>
    public async Task WriteAsync(NpgsqlConnection connection, IReadOnlyList<RowWrite> writes, CancellationToken cancellationToken)
    {
        if (writes.Count == 0)
        {
            return;
        }

        // One row per key: a key written twice in a batch ends as its last write (ON CONFLICT may touch a row once).
        var last = new Dictionary<RecordKey, int>(writes.Count);
        for (var i = 0; i < writes.Count; i++)
        {
            last[writes[i].Key] = i;
        }

        if (_direct && writes.All(w => w.Kind == WriteKind.Insert) && await CopyDirectAsync(connection, writes, last, cancellationToken).ConfigureAwait(false))
        {
            return;
        }

        await ExecuteAsync(
            connection,
            $"CREATE TEMP TABLE IF NOT EXISTS {PostgresSql.Quote(_stage)} ({PostgresSql.Quote(OpColumn)} boolean, {string.Join(", ", _written.Select(i => $"{PostgresSql.Quote(_columns[i].Name)} {_stageTypes[i]}"))}) ON COMMIT DELETE ROWS",
            cancellationToken).ConfigureAwait(false);
        bool hasDeletes, hasUpserts;
        await using (var importer = await connection.BeginBinaryImportAsync(
            $"COPY pg_temp.{PostgresSql.Quote(_stage)} ({PostgresSql.Quote(OpColumn)}, {WrittenColumnList()}) FROM STDIN (FORMAT BINARY)",
            cancellationToken).ConfigureAwait(false))
        {
            (hasDeletes, hasUpserts) = CopyRows(importer, writes, last, withOp: true, cancellationToken);
            await importer.CompleteAsync(cancellationToken).ConfigureAwait(false);
        }

        var stage = "pg_temp." + PostgresSql.Quote(_stage);
        var keyMatch = string.Join(" AND ", _schema.PrimaryKey.Select(k => $"t.{PostgresSql.Quote(k)} = {Cast("s", k)}"));
        if (hasDeletes)
        {
            await ExecuteAsync(connection, $"DELETE FROM {_target.QualifiedName} AS t USING {stage} AS s WHERE s.{PostgresSql.Quote(OpColumn)} AND {keyMatch}", cancellationToken).ConfigureAwait(false);
        }

        if (hasUpserts)
        {
            var nonKey = _written.Select(i => _columns[i]).Where(c => !_schema.PrimaryKey.Contains(c.Name, StringComparer.OrdinalIgnoreCase)).ToList();
            var action = nonKey.Count == 0
                ? "DO NOTHING"
                : "DO UPDATE SET " + string.Join(", ", nonKey.Select(c => $"{PostgresSql.Quote(c.Name)} = excluded.{PostgresSql.Quote(c.Name)}"));
            var select = string.Join(", ", _written.Select(i => Cast("s", _columns[i].Name)));
            await ExecuteAsync(
                connection,
                $"INSERT INTO {_target.QualifiedName} ({WrittenColumnList()}) SELECT {select} FROM {stage} AS s WHERE NOT s.{PostgresSql.Quote(OpColumn)} " +
                $"ON CONFLICT ({PostgresSql.ColumnList(_schema.PrimaryKey.Select(k => _columns.First(c => string.Equals(c.Name, k, StringComparison.OrdinalIgnoreCase)).Name))}) {action}",
                cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>New rows straight into the table in a savepoint; false (rolled back) when one of them already exists.</summary>
    private async Task<bool> CopyDirectAsync(NpgsqlConnection connection, IReadOnlyList<RowWrite> writes, Dictionary<RecordKey, int> last, CancellationToken cancellationToken)
    {
        await ExecuteAsync(connection, "SAVEPOINT deltasync_direct", cancellationToken).ConfigureAwait(false);
        try
        {
            await using (var importer = await connection.BeginBinaryImportAsync(
                $"COPY {_target.QualifiedName} ({WrittenColumnList()}) FROM STDIN (FORMAT BINARY)",
                cancellationToken).ConfigureAwait(false))
            {
                CopyRows(importer, writes, last, withOp: false, cancellationToken);
                await importer.CompleteAsync(cancellationToken).ConfigureAwait(false);
            }

            await ExecuteAsync(connection, "RELEASE SAVEPOINT deltasync_direct", cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (PostgresException e) when (e.SqlState == "23505")
        {
            await ExecuteAsync(connection, "ROLLBACK TO SAVEPOINT deltasync_direct", cancellationToken).ConfigureAwait(false);
            _direct = false;
            return false;
        }
    }

    /// <summary>Writes the final state of each key as COPY rows (with the delete flag first when staging).</summary>
    /// <remarks>Synchronous writes: they fill the importer's buffer, which is flushed to the socket as it fills.</remarks>
    private (bool Deletes, bool Upserts) CopyRows(NpgsqlBinaryImporter importer, IReadOnlyList<RowWrite> writes, Dictionary<RecordKey, int> last, bool withOp, CancellationToken cancellationToken)
    {
        var hasDeletes = false;
        var hasUpserts = false;
        for (var w = 0; w < writes.Count; w++)
        {
            var write = writes[w];
            if (last[write.Key] != w)
            {
                continue;
            }

            if ((w & 1023) == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }

            importer.StartRow();
            var delete = write.Kind == WriteKind.Delete;
            hasDeletes |= delete;
            hasUpserts |= !delete;
            if (withOp)
            {
                importer.Write(delete, NpgsqlTypes.NpgsqlDbType.Boolean);
            }

            foreach (var i in _written)
            {
                object? raw;
                if (delete)
                {
                    var k = KeyIndex(i);
                    raw = k < 0 ? null : write.Key.Values[k];
                }
                else
                {
                    raw = write.Values![i];
                }

                object? value;
                try
                {
                    value = PostgresValues.ToColumn(raw, _columns[i]);
                    if (_scales[i] >= 0 && value is not null && Rounds(value, _scales[i]))
                    {
                        throw new OverflowException($"it has more than {_scales[i]} decimal place(s), which the column would round away");
                    }
                }
                catch (Exception e) when (e is FormatException or InvalidCastException or OverflowException or ArgumentException)
                {
                    throw new SyncException(
                        ErrorClass.Permanent,
                        $"table '{_target.Name}', record {write.Key}: column '{_columns[i].Name}' value '{Core.Model.PortableValue.ToText(raw)}' does not fit {_columns[i].TypeName}: {e.Message}",
                        e);
                }

                if (value is null)
                {
                    importer.WriteNull();
                }
                else
                {
                    _writers[i](importer, value);
                }
            }
        }

        return (hasDeletes, hasUpserts);
    }

    private int KeyIndex(int column)
    {
        for (var k = 0; k < _schema.KeyIndexes.Count; k++)
        {
            if (_schema.KeyIndexes[k] == column)
            {
                return k;
            }
        }

        return -1;
    }

    private string WrittenColumnList() => PostgresSql.ColumnList(_written.Select(i => _columns[i].Name));

    /// <summary>
    /// A staged column as the target column's type (staged as text when the types differ): cast to the type without its
    /// modifier (<see cref="PgColumn.CastType"/>), so that the assignment into the column refuses a value too long for
    /// it (SQLSTATE 22001, the record is dead-lettered) instead of an explicit cast cutting it to fit.
    /// </summary>
    private string Cast(string alias, string column)
    {
        var i = Array.FindIndex(_columns, c => string.Equals(c.Name, column, StringComparison.OrdinalIgnoreCase));
        var c = _columns[i];
        var staged = $"{alias}.{PostgresSql.Quote(c.Name)}";
        return _stageTypes[i] == "text" && c.BaseType != "text" ? $"{staged}::{c.CastType}" : staged;
    }

    /// <summary>The scale of a <c>numeric(p,s)</c> column (not an array), else -1.</summary>
    /// <remarks>
    /// PostgreSQL rounds a numeric to the column's scale on assignment (and on binary COPY) without a word, unlike a
    /// string too long for its column; the writer refuses such a value itself so that it is dead-lettered, not changed.
    /// </remarks>
    private static int NumericScale(PgColumn column) =>
        column is { BaseType: "numeric", IsArray: false } && column.TypeName.StartsWith("numeric(", StringComparison.Ordinal)
            && column.TypeName.IndexOf(',', StringComparison.Ordinal) is > 0 and var comma
            && int.TryParse(column.TypeName.AsSpan(comma + 1, column.TypeName.Length - comma - 2), NumberStyles.Integer, CultureInfo.InvariantCulture, out var scale)
            && scale is >= 0 and <= 28
            ? scale
            : -1;

    /// <summary>Whether <paramref name="value"/> (as written to a numeric column) has more decimal places than <paramref name="scale"/>.</summary>
    private static bool Rounds(object value, int scale)
    {
        switch (value)
        {
            case decimal d:
                return decimal.Round(d, scale) != d;
            case string text:
                // As text (a value wider than decimal): its significant digits after the point, exponent-free form only.
                var point = text.IndexOf('.', StringComparison.Ordinal);
                return point >= 0 && text.AsSpan(point + 1).TrimEnd('0').Length > scale && !text.Contains('e', StringComparison.OrdinalIgnoreCase);
            default:
                return false;
        }
    }

    /// <summary>
    /// The staging column's type: the target's base type (no length or precision: the INSERT's assignment cast checks
    /// lengths, and <see cref="Rounds"/> numeric scales) when Npgsql writes it natively, else text, cast to the target
    /// type by the INSERT.
    /// </summary>
    private static string StageType(PgColumn column)
    {
        if (!column.IsNative || column.BaseType is "text" or "varchar" or "bpchar" or "name")
        {
            return column.IsArray && column.IsNative ? "text[]" : "text";
        }

        return column.BaseType + (column.IsArray ? "[]" : "");
    }

    private static string Default(Core.Model.ColumnSchema column, bool fromPostgres) =>
        fromPostgres && column.DefaultSql is { Length: > 0 } sql && !sql.Contains("nextval(", StringComparison.OrdinalIgnoreCase)
            ? " DEFAULT " + sql
            : "";

    private static async Task<bool> HasUniqueKeyAsync(NpgsqlConnection connection, PgTable table, IReadOnlyList<string> key, CancellationToken cancellationToken)
    {
        const string sql = """
            SELECT array_agg(a.attname::text ORDER BY a.attname)
            FROM pg_index i
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
            WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indpred IS NULL
            GROUP BY i.indexrelid
            """;
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.Add(new NpgsqlParameter { Value = table.QualifiedName });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        var wanted = key.Select(k => table.Columns.FirstOrDefault(c => string.Equals(c.Name, k, StringComparison.OrdinalIgnoreCase))?.Name ?? k)
            .Order(StringComparer.Ordinal).ToList();
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
        {
            var columns = reader.GetFieldValue<string[]>(0).Order(StringComparer.Ordinal).ToList();
            if (columns.SequenceEqual(wanted))
            {
                return true;
            }
        }

        return false;
    }

    internal static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
