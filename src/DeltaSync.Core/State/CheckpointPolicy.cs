using DeltaSync.Core.Config;
using NodaTime;

namespace DeltaSync.Core.State;

/// <summary>
/// <c>state.checkpointing</c>: when a committed checkpoint is also saved to the state store. The destination holds the
/// newest checkpoint with the data in any case, so a less frequent save never loses progress; it saves round trips.
/// </summary>
public sealed class CheckpointPolicy
{
    private readonly CheckpointingOptions _options;
    private readonly IClock _clock;
    private long _records;
    private Instant _last;

    public CheckpointPolicy(CheckpointingOptions options, IClock clock)
    {
        _options = options;
        _clock = clock;
        _last = clock.GetCurrentInstant();
    }

    /// <summary>Counts <paramref name="records"/> and says whether to save now.</summary>
    public bool ShouldSave(long records)
    {
        _records += records;
        var save = _options.Frequency switch
        {
            CheckpointFrequency.EveryNRecords => _records >= Math.Max(1, _options.Interval),
            CheckpointFrequency.TimeBased => _clock.GetCurrentInstant() - _last >= Duration.FromSeconds(Math.Max(1, _options.Interval)),
            _ => true,
        };
        if (save)
        {
            _records = 0;
            _last = _clock.GetCurrentInstant();
        }

        return save;
    }
}
