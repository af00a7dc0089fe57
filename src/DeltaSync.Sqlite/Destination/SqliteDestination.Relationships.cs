using DeltaSync.Core.Config;
using DeltaSync.Core.Ledger;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Sqlite.Raw;
using NodaTime;
using SQLitePCL;

namespace DeltaSync.Sqlite.Destination;

/// <summary>
/// <c>sync.relationships</c> at a SQLite destination: a parent's delete reaches its children in the same transaction,
/// as the source's foreign key would — cascade (grandchildren first, each child's ledger entry becomes a tombstone),
/// set NULL, or restrict (a permanent error: the batch is split and that delete goes to the dead-letter queue).
/// </summary>
internal sealed partial class SqliteDestination
{
    /// <summary>Child rows a unit's deletes reached.</summary>
    private sealed class CarriedDeletes
    {
        public long Deleted { get; set; }

        public long Nulled { get; set; }
    }

    private readonly Dictionary<string, List<string>> _childKeys = new(StringComparer.OrdinalIgnoreCase);

    /// <param name="deletedAt">
    /// When the parent was deleted (its tombstone's time, else the batch's): the children's tombstones carry it, so a
    /// child the source still holds (a soft-deleted parent) is not revived by a re-read of an older version of it.
    /// </param>
    private void CarryDelete(sqlite3 db, string parentTable, IReadOnlyList<object?> parentKey, IReadOnlyList<ChildRelation> children, Instant deletedAt, CarriedDeletes carried)
    {
        foreach (var relation in children)
        {
            if (!_childKeys.TryGetValue(relation.ChildTable, out var childKey))
            {
                childKey = KeyColumns(db, relation.ChildTable);
                if (childKey is null)
                {
                    // The child table is not at the destination yet: nothing to reach.
                    continue;
                }

                _childKeys[relation.ChildTable] = childKey;
            }

            if (relation.ForeignKey.Count != parentKey.Count)
            {
                throw new SyncException(
                    ErrorClass.Fatal,
                    $"relationship {parentTable} → {relation.ChildTable}: foreign_key has {relation.ForeignKey.Count} column(s) but the parent's key has {parentKey.Count}");
            }

            var where = string.Join(" AND ", relation.ForeignKey.Select((c, i) => $"{SqliteSql.Quote(c)} = ?{i + 1}"));
            var child = SqliteSql.Quote(relation.ChildTable);
            switch (relation.OnDelete)
            {
                case DeleteAction.Restrict:
                {
                    var probe = Bound(Statement($"{relation.ChildTable}\u0001restrict\u0001{where}", () => $"SELECT 1 FROM {child} WHERE {where} LIMIT 1"), parentKey);
                    var referenced = probe.Step();
                    probe.Reset();
                    if (referenced)
                    {
                        throw new SyncException(
                            ErrorClass.Permanent,
                            $"delete of {parentTable} {new RecordKey([.. parentKey])} refused: '{relation.ChildTable}' still has rows with ({string.Join(", ", relation.ForeignKey)}) referencing it (sync.relationships on_delete: restrict)");
                    }

                    break;
                }

                case DeleteAction.SetNull:
                {
                    var set = string.Join(", ", relation.ForeignKey.Select(c => $"{SqliteSql.Quote(c)} = NULL"));
                    var update = Bound(Statement($"{relation.ChildTable}\u0001setnull\u0001{where}", () => $"UPDATE {child} SET {set} WHERE {where}"), parentKey);
                    update.Execute();
                    carried.Nulled += raw.sqlite3_changes(db);
                    break;
                }

                default:
                {
                    // The children's keys first: their own children are reached before they go, and their ledger
                    // entries become tombstones (a later re-insert at the source is then written again).
                    var keys = new List<object?[]>();
                    var select = Bound(Statement($"{relation.ChildTable}\u0001children\u0001{where}", () => $"SELECT {SqliteSql.ColumnList(childKey)} FROM {child} WHERE {where}"), parentKey);
                    while (select.Step())
                    {
                        keys.Add(select.ReadRow(childKey.Count));
                    }

                    select.Reset();
                    if (keys.Count == 0)
                    {
                        break;
                    }

                    if (relation.Children.Count > 0)
                    {
                        foreach (var key in keys)
                        {
                            CarryDelete(db, relation.ChildTable, key, relation.Children, deletedAt, carried);
                        }
                    }

                    var delete = Bound(Statement($"{relation.ChildTable}\u0001cascade\u0001{where}", () => $"DELETE FROM {child} WHERE {where}"), parentKey);
                    delete.Execute();
                    carried.Deleted += raw.sqlite3_changes(db);
                    if (ExistingScopeId(db, relation.ChildScope) is { } scopeId)
                    {
                        var tombstones = keys.Select(k => new LedgerEntry(new RecordKey(k), Position.None, deletedAt, 0, Deleted: true)).ToList();
                        WriteLedger(db, scopeId, _ledger.KeepingMergeStates(db, scopeId, tombstones));
                    }

                    break;
                }
            }
        }
    }

    /// <summary>When each of a unit's deletes happened, by key: its tombstone's commit time, else the batch's checkpoint time.</summary>
    private static Dictionary<RecordKey, Instant> DeleteTimes(ApplyUnit unit) =>
        unit.LedgerUpdates.Where(e => e.Deleted).GroupBy(e => e.Key).ToDictionary(g => g.Key, g => g.Last().CommitTime ?? unit.Checkpoint.CreatedAt);

    private static RawStatement Bound(RawStatement statement, IReadOnlyList<object?> values)
    {
        statement.Reset();
        for (var i = 0; i < values.Count; i++)
        {
            statement.Bind(i + 1, values[i]);
        }

        return statement;
    }

    /// <summary>The primary key columns of a destination table, in key order; null when the table does not exist.</summary>
    private static List<string>? KeyColumns(sqlite3 db, string table)
    {
        using var statement = new RawStatement(db, "SELECT name, pk FROM pragma_table_info(?1) ORDER BY pk");
        statement.Bind(1, table);
        var any = false;
        var key = new List<string>();
        while (statement.Step())
        {
            any = true;
            if (statement.GetInt64(1) > 0)
            {
                key.Add(statement.GetText(0));
            }
        }

        return !any ? null : key.Count > 0 ? key : throw new SyncException(ErrorClass.Fatal, $"child table '{table}' has no primary key at the destination; cascaded deletes need one");
    }

    /// <summary>A scope's id when its stream has written here before (a child never synced has no ledger to update).</summary>
    private long? ExistingScopeId(sqlite3 db, LedgerScope scope)
    {
        if (_scopes.TryGetValue(scope, out var id))
        {
            return id;
        }

        using var select = new RawStatement(db, $"SELECT scope_id FROM {SqliteLedger.Scopes} WHERE destination_table = ?1 AND source = ?2");
        select.Bind(1, scope.DestinationTable);
        select.Bind(2, scope.Source);
        return select.Step() ? select.GetInt64(0) : null;
    }
}
