using System.Globalization;
using System.Text;
using DeltaSync.Core.Model;

namespace DeltaSync.Postgres.Capture;

/// <summary>
/// A commit-aware sequence cursor: the value below which every row is applied, plus the recent passes that may move it.
/// Each pass records <c>(u, m)</c>: a server time no earlier than its snapshot and the highest sequence value it saw.
/// Sequence values come from <c>nextval</c>, which only grows, so a transaction that starts after <c>u</c> takes values
/// above <c>m</c>. When a later pass observes (before its snapshot) that every transaction it cannot see started after
/// <c>u</c>, <c>m</c> becomes the cursor. A transaction that took a low value and stayed open meanwhile keeps the
/// cursor below its value until it commits and is read.
/// </summary>
internal sealed record SequenceCursor(long Value, IReadOnlyList<(long Micros, long Max)> Passes)
{
    public const string Kind = "pgsequence";
    private const int MaxPasses = 16;

    public static readonly SequenceCursor Start = new(long.MinValue, []);

    public Position ToPosition()
    {
        var text = new StringBuilder(Value.ToString(CultureInfo.InvariantCulture)).Append('#');
        text.AppendJoin(',', Passes.Select(p => string.Create(CultureInfo.InvariantCulture, $"{p.Micros}:{p.Max}")));
        return new Position(Kind, text.ToString());
    }

    public static bool TryParse(Position position, out SequenceCursor cursor)
    {
        cursor = Start;
        if (position.Kind != Kind)
        {
            return false;
        }

        var hash = position.Value.IndexOf('#', StringComparison.Ordinal);
        if (hash < 0 || !long.TryParse(position.Value.AsSpan(0, hash), CultureInfo.InvariantCulture, out var value))
        {
            return false;
        }

        var passes = new List<(long, long)>();
        foreach (var part in position.Value[(hash + 1)..].Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var colon = part.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0
                || !long.TryParse(part.AsSpan(0, colon), CultureInfo.InvariantCulture, out var micros)
                || !long.TryParse(part.AsSpan(colon + 1), CultureInfo.InvariantCulture, out var max))
            {
                return false;
            }

            passes.Add((micros, max));
        }

        cursor = new SequenceCursor(value, passes);
        return true;
    }

    /// <summary>
    /// The cursor once every transaction invisible to the pass just read started at or after
    /// <paramref name="boundMicros"/>: the highest value of any earlier pass whose snapshot preceded the bound.
    /// </summary>
    public SequenceCursor Advance(long boundMicros)
    {
        var value = Value;
        var kept = new List<(long, long)>();
        foreach (var pass in Passes)
        {
            if (pass.Micros < boundMicros)
            {
                value = Math.Max(value, pass.Max);
            }
            else
            {
                kept.Add(pass);
            }
        }

        return new SequenceCursor(value, kept);
    }

    /// <summary>Adds a pass. Beyond <see cref="MaxPasses"/>, two neighbours merge into (later time, earlier max): never optimistic.</summary>
    public SequenceCursor Record(long micros, long max)
    {
        if (max <= Value)
        {
            return this;
        }

        var passes = Passes.ToList();
        passes.Add((micros, max));
        while (passes.Count > MaxPasses)
        {
            passes[1] = (passes[1].Item1, passes[0].Item2);
            passes.RemoveAt(0);
        }

        return this with { Passes = passes };
    }
}
