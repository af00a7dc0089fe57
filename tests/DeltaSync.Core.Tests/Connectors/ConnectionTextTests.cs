using DeltaSync.Core.Connectors;

namespace DeltaSync.Core.Tests.Connectors;

public sealed class ConnectionTextTests
{
    [Theory]
    [InlineData("postgresql://sync:s3cr3t@db.local:5432/shop", "postgresql://sync:***@db.local:5432/shop")]
    [InlineData("Host=db;Username=sync;Password=s3cr3t;Database=shop", "Host=db;Username=sync;Password=***;Database=shop")]
    [InlineData("Server=db;Pwd = s3cr3t", "Server=db;Pwd =***")]
    [InlineData("redis://:s3cr3t@127.0.0.1:6379", "redis://:***@127.0.0.1:6379")]
    [InlineData("sqlite:shop.db", "sqlite:shop.db")]
    public void Passwords_never_survive_redaction(string connection, string expected)
    {
        var redacted = ConnectionText.Redact(connection);

        Assert.Equal(expected, redacted);
        Assert.DoesNotContain("s3cr3t", redacted, StringComparison.Ordinal);
    }
}
