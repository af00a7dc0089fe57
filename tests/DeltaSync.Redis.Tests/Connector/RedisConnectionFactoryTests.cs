using System.Net;
using DeltaSync.Core.Config;
using DeltaSync.Core.Connectors;
using DeltaSync.Core.Model;
using DeltaSync.Core.Pipeline;
using DeltaSync.Core.State;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using StackExchange.Redis;

namespace DeltaSync.Redis.Tests.Connector;

/// <summary>The connection forms a Redis state store reads, without a server.</summary>
public sealed class RedisConnectionFactoryTests
{
    [Theory]
    [InlineData("redis://:s3cr3t@127.0.0.1:6390", "redis://127.0.0.1:6390/0 (prefix deltasync:)", null, "s3cr3t", 0)]
    [InlineData("redis://sync:s3cr3t@cache.internal/4?prefix=shop%3A", "redis://cache.internal:6379/4 (prefix shop:)", "sync", "s3cr3t", 4)]
    [InlineData("redis://ops@cache.internal", "redis://cache.internal:6379/0 (prefix deltasync:)", "ops", null, 0)]
    [InlineData("rediss://:s3cr3t@cache.internal:6380/1", "rediss://cache.internal:6380/1 (prefix deltasync:)", null, "s3cr3t", 1)]
    [InlineData("redis://localhost:6379", "redis://localhost:6379/0 (prefix deltasync:)", null, null, 0)]
    [InlineData("redis://[::1]:6380", "redis://[::1]:6380/0 (prefix deltasync:)", null, null, 0)]
    [InlineData("cache.internal:6380,password=s3cr3t,defaultDatabase=2,prefix=a:b:", "redis://cache.internal:6380/2 (prefix a:b:)", null, "s3cr3t", 2)]
    [InlineData("redis://cache.internal:6380,password=s3cr3t,ssl=true", "rediss://cache.internal:6380/0 (prefix deltasync:)", null, "s3cr3t", 0)]
    public void Every_connection_form_is_read_and_described_without_its_password(string connection, string description, string? user, string? password, int database)
    {
        var settings = RedisConnectionFactory.Parse(connection);

        Assert.Equal(description, settings.Description);
        Assert.Equal((user, password, database), (settings.Options.User, settings.Options.Password, settings.Database));
        Assert.DoesNotContain("s3cr3t", RedisConnectionFactory.Describe(connection), StringComparison.Ordinal);
        Assert.DoesNotContain("s3cr3t", ConnectionText.Redact(connection), StringComparison.Ordinal);
    }

    [Fact]
    public void A_TLS_URI_checks_the_certificate_against_its_host()
    {
        var settings = RedisConnectionFactory.Parse("rediss://:pw@cache.internal:6380");

        Assert.True(settings.Options.Ssl);
        Assert.Equal("cache.internal", settings.Options.SslHost);
        Assert.Equal(new DnsEndPoint("cache.internal", 6380), Assert.Single(settings.Options.EndPoints));
    }

    [Theory]
    [InlineData("redis://:s3cr3t@host:6379/shop", "the path names the database by number")]
    [InlineData("redis://:s3cr3t@host:6379?db=2", "unknown parameter 'db' (known: prefix)")]
    [InlineData("redis://:s3cr3t@host:6379?prefix=", "the key prefix must not be empty")]
    [InlineData("host:6379,password=s3cr3t,prefix=", "the key prefix must not be empty")]
    [InlineData("host:6379,password=s3cr3t,bogus=1", "bogus")]
    [InlineData("redis://", "expected redis://")]
    public void A_malformed_connection_is_a_fatal_error_that_hides_the_password(string connection, string problem)
    {
        var error = Assert.Throws<SyncException>(() => RedisConnectionFactory.Parse(connection));

        Assert.Equal(ErrorClass.Fatal, error.ErrorClass);
        Assert.StartsWith("invalid Redis connection '", error.Message, StringComparison.Ordinal);
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cr3t", error.Message, StringComparison.Ordinal);
    }

    [Property(MaxTest = 300)]
    public void A_percent_encoded_password_comes_back_exactly_and_is_never_described(NonEmptyString text)
    {
        var password = "Pw!" + text.Get;
        var connection = $"redis://ops:{Uri.EscapeDataString(password)}@127.0.0.1:6379/0?prefix=app%3A";

        var settings = RedisConnectionFactory.Parse(connection);

        Assert.Equal(password, settings.Options.Password);
        Assert.Equal("redis://127.0.0.1:6379/0 (prefix app:)", settings.Description);
        Assert.DoesNotContain(password, ConnectionText.Redact(connection), StringComparison.Ordinal);
    }

    public static TheoryData<Exception, ErrorClass, string> Failures => new()
    {
        { new RedisConnectionException(ConnectionFailureType.SocketFailure, CommandFlags.None, "SocketFailure on 127.0.0.1:6390, password=s3cr3t", null, CommandStatus.Sent), ErrorClass.Transient, "the connection to the server failed" },
        { new RedisConnectionException(ConnectionFailureType.UnableToConnect, CommandFlags.None, "No connection is available", null, CommandStatus.WaitingToBeSent), ErrorClass.Transient, "could not be reached" },
        { new RedisTimeoutException(CommandFlags.None, "Timeout awaiting response (s3cr3t)", CommandStatus.Sent), ErrorClass.Transient, "did not answer in time" },
        { new RedisServerException(RedisErrorKind.Loading, CommandFlags.None, "LOADING Redis is loading the dataset in memory"), ErrorClass.Transient, "LOADING Redis is loading" },
        { new RedisServerException(RedisErrorKind.ReadOnly, CommandFlags.None, "READONLY You can't write against a read only replica."), ErrorClass.Transient, "READONLY" },
        { new RedisServerException(RedisErrorKind.WrongPass, CommandFlags.None, "WRONGPASS invalid username-password pair or user is disabled."), ErrorClass.Fatal, "refused the credentials" },
        { new RedisConnectionException(ConnectionFailureType.AuthenticationFailure, CommandFlags.None, "auth", null, CommandStatus.Sent), ErrorClass.Fatal, "refused the credentials" },
        { new RedisServerException(RedisErrorKind.OutOfMemory, CommandFlags.None, "OOM command not allowed when used memory > 'maxmemory'. s3cr3t"), ErrorClass.Fatal, "OOM command not allowed" },
    };

    [Theory]
    [MemberData(nameof(Failures))]
    public void Redis_failures_are_classified_and_never_carry_the_password(Exception failure, ErrorClass errorClass, string detail)
    {
        var settings = RedisConnectionFactory.Parse("redis://:s3cr3t@127.0.0.1:6390");

        var error = RedisConnectionFactory.Classify(failure, settings, "cannot append in the state store " + settings.Description);

        Assert.Equal(errorClass, error.ErrorClass);
        Assert.StartsWith("cannot append in the state store redis://127.0.0.1:6390/0 (prefix deltasync:): ", error.Message, StringComparison.Ordinal);
        Assert.Contains(detail, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cr3t", error.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("redis://localhost:6379", true)]
    [InlineData("REDISS://localhost:6380", true)]
    [InlineData("localhost:6379", false)]
    [InlineData("postgresql://localhost/db", false)]
    [InlineData("sqlite:state.db", false)]
    public void The_connector_accepts_redis_URIs_only(string connection, bool accepted)
    {
        Assert.Equal(accepted, new RedisConnector().Accepts(connection));
    }

    [Fact]
    public async Task Redis_as_a_source_or_destination_is_refused_with_a_clear_message()
    {
        var connector = new RedisConnector();
        var endpoint = new EndpointOptions("source", "redis", "redis://:s3cr3t@localhost:6379", []);
        var config = ConfigLoader.Parse("sync: {source: {connection: 'sqlite:a.db', tables: [t]}, destination: {connection: 'sqlite:b.db'}}", Path.Combine(Path.GetTempPath(), "x.yaml"));

        var source = await Assert.ThrowsAsync<SyncException>(() => connector.OpenSourceAsync(endpoint, config, CancellationToken.None));
        var destination = await Assert.ThrowsAsync<SyncException>(() => connector.OpenDestinationAsync(endpoint, config, CancellationToken.None));

        foreach (var error in new[] { source, destination })
        {
            Assert.Equal(ErrorClass.Fatal, error.ErrorClass);
            Assert.StartsWith("redis can only hold state", error.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("s3cr3t", error.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Reports_of_a_redis_state_store_go_beside_the_config()
    {
        var folder = Path.Combine(Path.GetTempPath(), "deltasync-redis-folder");
        var config = ConfigLoader.Parse(
            "sync: {source: {connection: 'sqlite:a.db', tables: [t]}, destination: {connection: 'sqlite:b.db'}}\nstate: {storage: {type: redis, connection: 'localhost:6379'}}",
            Path.Combine(folder, "shop.yaml"));

        Assert.Equal(folder, StateStores.Folder(config));
        Assert.Equal("localhost:6379", StateStores.Describe(config));
    }
}
