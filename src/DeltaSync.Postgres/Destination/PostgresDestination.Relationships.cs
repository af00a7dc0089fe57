using DeltaSync.Core.Config;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using NodaTime;
using Npgsql;

namespace DeltaSync.Postgres.Destination;

/// <summary>
/// <c>sync.relationships</c> at a PostgreSQL destination: a batch's parent deletes reach the children in the same
/// transaction, one statement per relationship — cascade (grandchildren too; each child's ledger entry becomes a
/// tombstone), set NULL, or restrict (a permanent error: the batch is split and the delete goes to the dead-letter queue).
/// Parent keys travel as text arrays and are cast to the child's column types, so any key type compares by value.
/// </summary>
internal sealed partial class PostgresDestination
{
    /// <summary>Child rows a unit's deletes reached.</summary>
    private sealed class CarriedDeletes
    {
        public long Deleted { get; set; }

        public long Nulled { get; set; }
    }

    private async Task ResolveChildScopesAsync(NpgsqlConnection connection, IReadOnlyList<ChildRelation> children, CancellationToken cancellationToken)
    {
        foreach (var relation in children)
        {
            await ScopeIdAsync(connection, relation.ChildScope, cancellationToken).ConfigureAwait(false);
            await ResolveChildScopesAsync(connection, relation.Children, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Carries <paramref name="parents"/>' deletes to <paramref name="children"/>. Each parent's delete time (its
    /// tombstone's, else the batch's) goes into its children's tombstones, so a child the source still holds (a
    /// soft-deleted parent) is not revived by a re-read of an older version of it.
    /// </summary>
    private async Task CarryDeletesAsync(
        NpgsqlConnection connection,
        string parentTable,
        IReadOnlyList<(IReadOnlyList<object?> Key, Instant DeletedAt)> parents,
        IReadOnlyList<ChildRelation> children,
        CarriedDeletes carried,
        CancellationToken cancellationToken)
    {
        var parentKeys = parents.Select(p => p.Key).ToList();
        foreach (var relation in children)
        {
            var child = await PostgresCatalog.ReadAsync(connection, relation.ChildTable, cancellationToken).ConfigureAwait(false);
            if (child is null)
            {
                // The child table is not at the destination yet: nothing to reach.
                continue;
            }

            var foreignKey = relation.ForeignKey.Select(name => child.Columns.FirstOrDefault(c => string.Equals(c.Name, name, StringComparison.OrdinalIgnoreCase))
                ?? throw new SyncException(ErrorClass.Fatal, $"relationship {parentTable} → {relation.ChildTable}: foreign_key column '{name}' does not exist at the destination")).ToList();
            if (parentKeys.Any(k => k.Count != foreignKey.Count))
            {
                throw new SyncException(
                    ErrorClass.Fatal,
                    $"relationship {parentTable} → {relation.ChildTable}: foreign_key has {foreignKey.Count} column(s) but the parent's key has {parentKeys[0].Count}");
            }

            // k(k0, k1…, n): the deleted parents' keys, as text cast to each foreign key column's type, and their index.
            var n = foreignKey.Count;
            var keys = $"(SELECT * FROM unnest({string.Join(", ", foreignKey.Select((_, i) => $"${i + 1}::text[]"))}, ${n + 1}::int[]) AS k({string.Join(", ", foreignKey.Select((_, i) => $"k{i}"))}, n))";
            var match = string.Join(" AND ", foreignKey.Select((c, i) => $"c.{PostgresSql.Quote(c.Name)} = k.k{i}::{c.CastType}"));
            string sql;
            switch (relation.OnDelete)
            {
                case DeleteAction.Restrict:
                    sql = $"SELECT EXISTS (SELECT 1 FROM {child.QualifiedName} AS c JOIN {keys} AS k ON {match})";
                    break;
                case DeleteAction.SetNull:
                    sql = $"UPDATE {child.QualifiedName} AS c SET {string.Join(", ", foreignKey.Select(c => $"{PostgresSql.Quote(c.Name)} = NULL"))} FROM {keys} AS k WHERE {match}";
                    break;
                default:
                    var childKey = child.Columns.Where(c => c.KeyOrdinal > 0).OrderBy(c => c.KeyOrdinal).ToList();
                    if (childKey.Count == 0)
                    {
                        throw new SyncException(ErrorClass.Fatal, $"child table '{relation.ChildTable}' has no primary key at the destination; cascaded deletes need one");
                    }

                    sql = $"DELETE FROM {child.QualifiedName} AS c USING {keys} AS k WHERE {match} RETURNING k.n, {string.Join(", ", childKey.Select(c => "c." + PostgresSql.Quote(c.Name)))}";
                    break;
            }

            if (relation.OnDelete != DeleteAction.Restrict)
            {
                // The rows change without the scopes' entries: bulk-load rules over them are written out first.
                var keep = relation.OnDelete == DeleteAction.SetNull ? (int?)null : await ScopeIdAsync(connection, relation.ChildScope, cancellationToken).ConfigureAwait(false);
                await _ledger.MaterializeAsync(connection, relation.ChildTable, keep, cancellationToken).ConfigureAwait(false);
            }

            await using var command = new NpgsqlCommand(sql, connection);
            for (var i = 0; i < foreignKey.Count; i++)
            {
                var column = i;
                command.Parameters.Add(new NpgsqlParameter<string?[]> { TypedValue = [.. parentKeys.Select(k => PortableValue.ToText(k[column]))] });
            }

            command.Parameters.Add(new NpgsqlParameter<int[]> { TypedValue = [.. Enumerable.Range(0, parentKeys.Count)] });

            switch (relation.OnDelete)
            {
                case DeleteAction.Restrict:
                    if (await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is true)
                    {
                        var which = parentKeys.Count == 1 ? $" {new RecordKey([.. parentKeys[0]])}" : "s";
                        throw new SyncException(
                            ErrorClass.Permanent,
                            $"delete of {parentTable}{which} refused: '{relation.ChildTable}' still has rows with ({string.Join(", ", relation.ForeignKey)}) referencing it (sync.relationships on_delete: restrict)");
                    }

                    break;
                case DeleteAction.SetNull:
                    carried.Nulled += await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    break;
                default:
                    var childKey = child.Columns.Where(c => c.KeyOrdinal > 0).OrderBy(c => c.KeyOrdinal).ToList();
                    var removed = new List<(IReadOnlyList<object?> Key, Instant DeletedAt)>();
                    await using (var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false))
                    {
                        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                        {
                            var key = new object?[childKey.Count];
                            for (var i = 0; i < key.Length; i++)
                            {
                                key[i] = PostgresValues.Read(reader, i + 1, childKey[i]);
                            }

                            removed.Add((key, parents[reader.GetInt32(0)].DeletedAt));
                        }
                    }

                    carried.Deleted += removed.Count;
                    if (removed.Count > 0)
                    {
                        var scopeId = await ScopeIdAsync(connection, relation.ChildScope, cancellationToken).ConfigureAwait(false);
                        var tombstones = removed.Select(r => new LedgerEntry(new RecordKey([.. r.Key]), Position.None, r.DeletedAt, 0, Deleted: true)).ToList();
                        await _ledger.WriteAsync(connection, scopeId, tombstones, cancellationToken).ConfigureAwait(false);
                        if (relation.Children.Count > 0)
                        {
                            await CarryDeletesAsync(connection, relation.ChildTable, removed, relation.Children, carried, cancellationToken).ConfigureAwait(false);
                        }
                    }

                    break;
            }
        }
    }
}
