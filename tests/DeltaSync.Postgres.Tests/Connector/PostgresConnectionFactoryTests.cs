using DeltaSync.Core.Pipeline;

namespace DeltaSync.Postgres.Tests.Connector;

public sealed class PostgresConnectionFactoryTests
{
    [Fact]
    public void A_uri_becomes_an_npgsql_connection_string()
    {
        var builder = PostgresConnectionFactory.Parse("postgresql://app%40corp:p%3Ass@db.example:6543/shop?sslmode=disable&application_name=nightly+sync");

        Assert.Equal(("db.example", 6543, "shop", "app@corp", "p:ss", "nightly sync"), (builder.Host, builder.Port, builder.Database, builder.Username, builder.Password, builder.ApplicationName));
        Assert.Equal(Npgsql.SslMode.Disable, builder.SslMode);
    }

    [Fact]
    public void Defaults_and_native_strings_are_accepted()
    {
        Assert.Equal(5432, PostgresConnectionFactory.Parse("postgres://u@localhost/db").Port);
        Assert.Equal("h", PostgresConnectionFactory.Parse("Host=h;Database=d;Username=u;Password=secret").Host);
        Assert.True(PostgresConnectionFactory.Accepts("Host=h;Database=d"));
        Assert.False(PostgresConnectionFactory.Accepts("sqlite:dest.db"));
    }

    [Fact]
    public void An_unknown_parameter_is_a_clear_error_without_the_password()
    {
        var error = Assert.Throws<SyncException>(() => PostgresConnectionFactory.Parse("postgresql://u:hunter2@h/db?sslmod=require"));

        Assert.Contains("unknown parameter 'sslmod'", error.Message, StringComparison.Ordinal);
        Assert.Contains("sslmode", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", error.Message, StringComparison.Ordinal);
        Assert.Equal("postgresql://h:5432/db", PostgresConnectionFactory.Describe("postgresql://u:hunter2@h/db"));
    }

    /// <summary>
    /// A known parameter with a value Npgsql refuses is a configuration error naming the parameter (it escaped as
    /// "error: unexpected ArgumentException: Couldn't set SSL Mode (Parameter 'SSL Mode')").
    /// </summary>
    [Theory]
    [InlineData("sslmode=bogus", "sslmode 'bogus'")]
    [InlineData("connect_timeout=soon", "connect_timeout 'soon'")]
    [InlineData("pooling=perhaps", "pooling 'perhaps'")]
    public void A_parameter_value_that_does_not_fit_is_a_clear_error_without_the_password(string query, string named)
    {
        var error = Assert.Throws<SyncException>(() => PostgresConnectionFactory.Parse($"postgresql://u:hunter2@h/db?{query}"));

        Assert.Equal(Core.Model.ErrorClass.Fatal, error.ErrorClass);
        Assert.Contains($"invalid PostgreSQL URI 'postgresql://u:***@h/db?{query}': {named}", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", error.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// A password holding an '@' that was not percent-encoded makes the URI invalid; the error hid the password only up to
    /// its first '@' and printed the rest ("postgres:***@ret@127.0.0.1" for "Leak5Sec@ret").
    /// </summary>
    [Theory]
    [InlineData("postgresql://sync:hunter@2@db.example:5432/shop", "hunter@2")]
    [InlineData("postgresql://sync:a@b@c@db.example/shop", "a@b@c")]
    public void A_password_with_an_unencoded_at_sign_is_hidden_whole(string uri, string password)
    {
        var error = Assert.Throws<SyncException>(() => PostgresConnectionFactory.Parse(uri));

        Assert.Contains("invalid PostgreSQL URI 'postgresql://sync:***@db.example", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(password[(password.IndexOf('@', StringComparison.Ordinal) + 1)..] + "@", error.Message, StringComparison.Ordinal);
        Assert.Equal("postgresql://sync:***@db.example/shop", Core.Connectors.ConnectionText.Redact(uri.Replace(":5432", "", StringComparison.Ordinal)));
    }

    /// <summary>
    /// A password with a character the URI syntax reserves ('#', '/', '?', '@'), typically from an environment variable,
    /// makes the URI unparseable; the error said only "expected postgresql://user:password@host:port/database", which the
    /// text looks like. It now says what to do.
    /// </summary>
    [Theory]
    [InlineData("postgresql://sync:hun#ter2@db.example:5432/shop")]
    [InlineData("postgresql://sync:hun/ter2@db.example:5432/shop")]
    [InlineData("postgresql://sync:hun?ter2@db.example:5432/shop")]
    public void A_password_with_a_reserved_character_is_a_clear_error(string uri)
    {
        var error = Assert.Throws<SyncException>(() => PostgresConnectionFactory.Parse(uri));

        Assert.Contains("percent-encode", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("ter2", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("\"Sales\".\"Orders\"", "Sales", "Orders")]
    [InlineData("sales.orders", "sales", "orders")]
    [InlineData("orders", null, "orders")]
    [InlineData("\"a.b\"", null, "a.b")]
    public void Table_names_split_into_schema_and_table(string name, string? schema, string table) =>
        Assert.Equal((schema, table), PostgresSql.SplitName(name));
}

public sealed class PostgresDataSourceSettingsTests
{
    [Fact]
    public async Task Connections_read_and_write_in_64_KiB_buffers_unless_the_connection_string_says_otherwise()
    {
        await using var defaults = PostgresConnectionFactory.CreateDataSource("postgresql://sync:pw@127.0.0.1:9/shop", "test");
        var built = new Npgsql.NpgsqlConnectionStringBuilder(defaults.ConnectionString);
        Assert.Equal(65536, built.ReadBufferSize);
        Assert.Equal(65536, built.WriteBufferSize);

        await using var own = PostgresConnectionFactory.CreateDataSource("Host=127.0.0.1;Port=9;Database=shop;Read Buffer Size=16384;Write Buffer Size=32768", "test");
        built = new Npgsql.NpgsqlConnectionStringBuilder(own.ConnectionString);
        Assert.Equal(16384, built.ReadBufferSize);
        Assert.Equal(32768, built.WriteBufferSize);
    }
}

public sealed class PostgresConnectRetryTests
{
    [Fact]
    public async Task An_unreachable_server_is_retried_with_backoff_then_reported_as_transient_without_the_password()
    {
        // A port nothing listens on: every attempt is refused at once, so the time spent is the back-off.
        await using var dataSource = PostgresConnectionFactory.CreateDataSource("postgresql://sync:hunter2@127.0.0.1:9/shop", "test");
        var watch = System.Diagnostics.Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<SyncException>(() => PostgresConnectionFactory.OpenAsync(dataSource, "source", CancellationToken.None));

        Assert.Equal(Core.Model.ErrorClass.Transient, error.ErrorClass);
        Assert.Contains($"tried {PostgresConnectionFactory.ConnectRetries + 1} times", error.Message, StringComparison.Ordinal);
        Assert.Contains("postgresql://127.0.0.1:9/shop", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", error.Message, StringComparison.Ordinal);
        Assert.True(watch.Elapsed > TimeSpan.FromSeconds(2), $"gave up after {watch.Elapsed}: no back-off");
    }
}

public sealed class PostgresErrorClassTests
{
    [Theory]
    [InlineData("08006", Core.Model.ErrorClass.Transient)]   // connection failure
    [InlineData("40001", Core.Model.ErrorClass.Transient)]   // serialization failure
    [InlineData("40P01", Core.Model.ErrorClass.Transient)]   // deadlock
    [InlineData("55006", Core.Model.ErrorClass.Transient)]   // object in use (a slot another reader holds)
    [InlineData("57P01", Core.Model.ErrorClass.Transient)]   // admin shutdown
    [InlineData("55000", Core.Model.ErrorClass.Fatal)]       // not in prerequisite state (wal_level, …)
    [InlineData("28P01", Core.Model.ErrorClass.Fatal)]       // password authentication failed
    [InlineData("3D000", Core.Model.ErrorClass.Fatal)]       // no such database
    [InlineData("42P01", Core.Model.ErrorClass.Fatal)]       // no such table
    [InlineData("23505", Core.Model.ErrorClass.Permanent)]   // unique violation
    [InlineData("22P02", Core.Model.ErrorClass.Permanent)]   // invalid text representation
    public void Server_errors_are_classed_by_sqlstate(string sqlState, Core.Model.ErrorClass expected)
    {
        var error = new Npgsql.PostgresException("something went wrong", "ERROR", "ERROR", sqlState);

        var classified = PostgresConnectionFactory.Classify(error, "doing something");

        Assert.Equal(expected, classified.ErrorClass);
        Assert.Contains($"(SQLSTATE {sqlState})", classified.Message, StringComparison.Ordinal);
    }
}
