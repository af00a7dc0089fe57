using DeltaSync.Core.Model;

namespace DeltaSync.Core.Pipeline;

/// <summary>
/// The one exception type the engine reasons about: its <see cref="ErrorClass"/> decides retry, dead-letter or stop.
/// Messages say what happened, where, and what to do; they never contain secrets.
/// </summary>
public sealed class SyncException : Exception
{
    public SyncException(ErrorClass errorClass, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        ErrorClass = errorClass;
    }

    public SyncException()
        : this(ErrorClass.Fatal, "sync failed")
    {
    }

    public SyncException(string message)
        : this(ErrorClass.Fatal, message)
    {
    }

    public SyncException(string message, Exception innerException)
        : this(ErrorClass.Fatal, message, innerException)
    {
    }

    public ErrorClass ErrorClass { get; }
}
