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
    // A password with a space (from ${PGPASSWORD}, not percent-encoded): the URI still parses, and was printed whole.
    [InlineData("postgresql://sync:s3cr3t and more@db.local:5432/shop", "postgresql://sync:***@db.local:5432/shop")]
    [InlineData("postgresql://sync:a s3cr3t@b@db.local/shop → postgresql://sync:***@wh/db", "postgresql://sync:***@db.local/shop → postgresql://sync:***@wh/db")]
    [InlineData("source postgresql://sync:x  s3cr3t@db.local/shop, destination sqlite:a.db", "source postgresql://sync:***@db.local/shop, destination sqlite:a.db")]
    public void Passwords_never_survive_redaction(string connection, string expected)
    {
        var redacted = ConnectionText.Redact(connection);

        Assert.Equal(expected, redacted);
        Assert.DoesNotContain("s3cr3t", redacted, StringComparison.Ordinal);
    }
}
