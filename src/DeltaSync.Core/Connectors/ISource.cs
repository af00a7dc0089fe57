using DeltaSync.Core.Config;
using DeltaSync.Core.Model;
using NodaTime;

namespace DeltaSync.Core.Connectors;

/// <summary>A system changes are read from.</summary>
public interface ISource : IAsyncDisposable
{
    /// <summary>The capture methods this source supports.</summary>
    IReadOnlyCollection<CdcMethod> SupportedMethods { get; }

    /// <summary>Columns and primary key of a table; the key comes from the catalog unless the table options name it.</summary>
    Task<TableSchema> DescribeTableAsync(TableOptions table, CancellationToken cancellationToken);

    /// <summary>The source's own clock (cursor bounds are measured against it, never against ours).</summary>
    Task<Instant> GetClockAsync(CancellationToken cancellationToken);

    /// <summary>A capture for one table, resuming at <see cref="CaptureRequest.Resume"/>.</summary>
    IChangeCapture CreateCapture(CaptureRequest request);

    /// <summary>Removes what the engine installed at the source for a table (triggers, change rows) on <c>state reset</c>.</summary>
    Task UninstallAsync(TablePlan plan, CancellationToken cancellationToken);

    /// <summary>
    /// What <c>status</c> should say about the table's capture at the source (a replication slot's retained WAL, a
    /// change table's backlog); null when there is nothing beyond the checkpoint.
    /// </summary>
    Task<string?> DescribeCaptureAsync(TablePlan plan, CancellationToken cancellationToken) => Task.FromResult<string?>(null);
}
