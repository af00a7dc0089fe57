namespace DeltaSync.Core.Model;

/// <summary>
/// Where a change sits in its source's order. Comparable only within one stream and one kind;
/// the capture strategy that produced it is the one that interprets <see cref="Value"/>.
/// Serialized as <c>kind:value</c>.
/// </summary>
public readonly record struct Position(string Kind, string Value)
{
    /// <summary>No position yet: capture starts with a snapshot.</summary>
    public static readonly Position None = new("none", "");

    public bool IsNone => Kind == "none";

    public override string ToString() => $"{Kind}:{Value}";

    public static Position Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        return colon < 0 ? new Position(text, "") : new Position(text[..colon], text[(colon + 1)..]);
    }
}
