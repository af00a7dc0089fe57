using NodaTime;

namespace DeltaSync.Core.State;

/// <summary>A checkpoint as a store holds it: the serialized payload (with its checksum inside) and its version.</summary>
public sealed record StoredCheckpoint(string Stream, long Version, string Payload, Instant SavedAt);
