namespace DeltaSync.Core.Connectors;

/// <summary>
/// What <see cref="IDestination.PrepareTableAsync"/> changed in an existing destination table to fit the source's schema
/// (nothing when it created the table or the table already fitted).
/// </summary>
/// <param name="Changes">Each change, said for the report: a column added, a column's type widened.</param>
/// <param name="Refused">Changes the source's schema asked for that the destination could not make, with the reason;
/// values that do not fit the column as it is are dead-lettered, never cut.</param>
public sealed record TableEvolution(IReadOnlyList<string> Changes, IReadOnlyList<string> Refused)
{
    public static TableEvolution None { get; } = new([], []);

    /// <summary>What the report should say about how the destination keeps some columns (no change, no re-read).</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    /// <summary>
    /// Whether rows synced before may be out of date (they lack an added column's values, or were refused by a column
    /// since widened): the table is then re-read in full once.
    /// </summary>
    public bool Evolved => Changes.Count > 0;
}
