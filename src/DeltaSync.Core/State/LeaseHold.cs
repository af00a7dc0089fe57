namespace DeltaSync.Core.State;

/// <summary>A lease this worker holds on a stream: who it is and the fencing epoch the lease was granted at.</summary>
public sealed record LeaseHold(string Owner, long Epoch);
