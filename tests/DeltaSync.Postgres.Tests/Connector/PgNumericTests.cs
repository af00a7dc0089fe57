using FsCheck;
using FsCheck.Fluent;
using Npgsql;

namespace DeltaSync.Postgres.Tests.Connector;

/// <summary><see cref="PgNumeric"/> against the server's own <c>numeric_send</c> and <c>numeric_out</c>.</summary>
public sealed class PgNumericTests
{
    private static readonly string[] Samples =
    [
        "0", "0.00", "1", "-1", "1.5", "1.50", "10000", "9999", "-0.0001", "0.00000001", "123456789.987654321",
        "12345678901234567890.123456789012345678901234567890", "0.000000000000000000000000000000001",
        "79228162514264337593543950336", "-79228162514264337593543950335", "1.0000000000000000000000000000000",
        "NaN", "Infinity", "-Infinity",
    ];

    [Fact]
    public async Task Decode_and_encode_match_the_servers_binary_form_and_text()
    {
        await using var db = await PgDatabase.CreateAsync();
        await using var connection = await db.OpenAsync();
        foreach (var sample in Samples)
        {
            await using var command = new NpgsqlCommand("SELECT numeric_send($1::numeric), $1::numeric::text", connection);
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = sample });
            await using var reader = await command.ExecuteReaderAsync();
            await reader.ReadAsync();
            var binary = reader.GetFieldValue<byte[]>(0);
            var text = reader.GetString(1);
            Assert.Equal(text, PgNumeric.Decode(binary));
            Assert.Equal(text, PgNumeric.Decode(PgNumeric.Encode(text)));
            if (text is not ("NaN" or "Infinity" or "-Infinity"))
            {
                // (The server puts a display scale into its infinities' header, which numeric_recv ignores.)
                Assert.Equal(Convert.ToHexString(binary), Convert.ToHexString(PgNumeric.Encode(text)));
            }
        }
    }

    [Fact]
    public async Task Values_that_fit_decimal_read_from_text_as_npgsql_reads_them_in_binary()
    {
        // Ledger row hashes were computed from Npgsql's decimals: the text path must give the same value and scale.
        await using var db = await PgDatabase.CreateAsync();
        await using var connection = await db.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT n, n::text FROM unnest('{0, 0.00, 1.50, -2.5, 10000, 123456789.987654321, 0.0000000001, 7922816251426433759354395033.5}'::numeric[]) n",
            connection);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            var binary = reader.GetDecimal(0);
            var fromText = Assert.IsType<decimal>(PgNumeric.FromText(reader.GetString(1)));
            Assert.Equal(decimal.GetBits(binary), decimal.GetBits(fromText));
        }
    }

    [Fact]
    public void Text_that_decimal_cannot_hold_exactly_stays_text()
    {
        Assert.Equal("NaN", PgNumeric.FromText("NaN"));
        Assert.Equal("12345678901234567890.123456789012345678901234567890", PgNumeric.FromText("12345678901234567890.123456789012345678901234567890"));
        Assert.Equal(1.50m, PgNumeric.FromText("1.50"));
    }

    [Fact]
    public void Encoding_round_trips_any_plain_decimal_text()
    {
        var numbers =
            from digits in Gen.Choose(1, 60).SelectMany(n => Gen.ListOf(Gen.Elements('0', '1', '5', '9'), n))
            from scale in Gen.Choose(0, 40)
            from negative in Gen.Elements(false, true)
            select Plain(new string([.. digits]), scale, negative);
        Prop.ForAll(numbers.ToArbitrary(), text => PgNumeric.Decode(PgNumeric.Encode(text)) == text).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void Reading_the_binary_form_gives_what_its_text_gives_scale_and_all()
    {
        var numbers =
            from digits in Gen.Choose(1, 40).SelectMany(n => Gen.ListOf(Gen.Elements('0', '0', '1', '5', '9'), n))
            from scale in Gen.Choose(0, 32)
            from negative in Gen.Elements(false, true)
            select Plain(new string([.. digits]), scale, negative);
        Prop.ForAll(numbers.ToArbitrary(), text => Same(PgNumeric.FromText(text), PgNumeric.Read(PgNumeric.Encode(text)))).QuickCheckThrowOnFailure();
        foreach (var sample in Samples.Concat(["79228162514264337593543950335", "7.9228162514264337593543950335", "0.0000000000000000000000000001", "0.00000000000000000000000000001", "100000000", "-0.50"]))
        {
            Assert.True(Same(PgNumeric.FromText(PgNumeric.Decode(PgNumeric.Encode(sample))), PgNumeric.Read(PgNumeric.Encode(sample))), sample);
        }
    }

    /// <summary>The same value of the same type, and for decimals the same scale.</summary>
    private static bool Same(object expected, object actual) =>
        (expected, actual) switch
        {
            (decimal e, decimal a) => decimal.GetBits(e).SequenceEqual(decimal.GetBits(a)),
            (string e, string a) => e == a,
            _ => false,
        };

    /// <summary>The digits as numeric_out prints them with <paramref name="scale"/> fraction digits.</summary>
    private static string Plain(string digits, int scale, bool negative)
    {
        var all = digits.PadLeft(scale + 1, '0');
        var whole = all[..^scale].TrimStart('0');
        var text = (whole.Length == 0 ? "0" : whole) + (scale > 0 ? "." + all[^scale..] : "");
        return negative && text.Trim('0', '.').Length > 0 ? "-" + text : text;
    }
}
