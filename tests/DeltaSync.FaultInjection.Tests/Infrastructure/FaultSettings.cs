using System.Globalization;
using System.Text;

namespace DeltaSync.FaultInjection.Tests.Infrastructure;

/// <summary>
/// Seeds and trial counts from the environment. Every random choice of a trial (kill delay, mutations, cut point,
/// corruption) comes from its trial seed, which is derived from the base seed and printed in the fault table, so a
/// failing trial is run again with <c>DELTASYNC_FAULT_SEED=&lt;base&gt;</c>.
/// </summary>
internal static class FaultSettings
{
    /// <summary>The base seed when <c>DELTASYNC_FAULT_SEED</c> is not set: the default run is the same every time.</summary>
    public const int DefaultSeed = 20_260_514;

    /// <summary>SIGKILL trials per capture method in the default run; <c>DELTASYNC_FAULT_TRIALS=50</c> is the long mode.</summary>
    public const int DefaultTrials = 3;

    public static int BaseSeed { get; } = ReadInt("DELTASYNC_FAULT_SEED", DefaultSeed, 0);

    public static int TrialsPerMethod { get; } = ReadInt("DELTASYNC_FAULT_TRIALS", DefaultTrials, 1);

    /// <summary>True on CI (<c>CI=true</c>), where a trial that cannot set up its fault fails instead of skipping.</summary>
    public static bool InCi { get; } = string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    /// <summary>A stable seed for one trial of one scenario (FNV-1a over base seed, scenario and trial number).</summary>
    public static int SeedFor(string scenario, int trial)
    {
        var hash = 2_166_136_261u;
        foreach (var b in Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{BaseSeed}/{scenario}/{trial}")))
        {
            hash = (hash ^ b) * 16_777_619u;
        }

        return (int)(hash & 0x7FFF_FFFF);
    }

    private static int ReadInt(string name, int fallback, int minimum)
    {
        var text = Environment.GetEnvironmentVariable(name);
        if (string.IsNullOrWhiteSpace(text))
        {
            return fallback;
        }

        return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= minimum
            ? value
            : throw new InvalidOperationException($"{name}='{text}' is not a whole number ≥ {minimum}");
    }
}
