using System.Text;

namespace DeltaSync.Core.Config;

/// <summary>
/// Replaces <c>${NAME}</c> and <c>${NAME:-default}</c> in one configuration value; <c>$${</c> stands for a literal <c>${</c>.
/// </summary>
/// <remarks>
/// The loader applies this to each scalar after YAML parsing, so a substituted value can never change the
/// document's structure and quoting in the file keeps working. As in the shell, <c>:-</c> uses the default when
/// the variable is unset or empty.
/// </remarks>
public static class EnvironmentInterpolation
{
    /// <summary>Interpolates <paramref name="text"/>; on failure <paramref name="problems"/> says what is wrong, without any value.</summary>
    /// <param name="text">One scalar value as written in the file.</param>
    /// <param name="environment">Looks up a variable; null when it is not set.</param>
    /// <param name="result">The interpolated text (best effort when there are problems).</param>
    /// <param name="problems">Empty on success, else one message per bad reference, e.g. "environment variable NAME is not set".</param>
    public static bool TryInterpolate(string text, Func<string, string?> environment, out string result, out IReadOnlyList<string> problems)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(environment);

        if (!text.Contains('$', StringComparison.Ordinal))
        {
            result = text;
            problems = [];
            return true;
        }

        var output = new StringBuilder(text.Length);
        var found = new List<string>();
        var index = 0;
        while (index < text.Length)
        {
            var c = text[index];
            if (c != '$')
            {
                output.Append(c);
                index++;
            }
            else if (At(text, index, "$${"))
            {
                output.Append("${");
                index += 3;
            }
            else if (At(text, index, "${"))
            {
                index = ReadReference(text, index, environment, output, found);
            }
            else
            {
                output.Append(c);
                index++;
            }
        }

        result = output.ToString();
        problems = found;
        return found.Count == 0;
    }

    private static int ReadReference(string text, int start, Func<string, string?> environment, StringBuilder output, List<string> problems)
    {
        var close = text.IndexOf('}', start + 2);
        if (close < 0)
        {
            problems.Add("'${' has no closing '}'; write '$${' for a literal '${'");
            output.Append(text, start, text.Length - start);
            return text.Length;
        }

        var body = text.AsSpan(start + 2, close - start - 2);
        var separator = body.IndexOf(":-", StringComparison.Ordinal);
        var name = separator < 0 ? body : body[..separator];
        if (!IsValidName(name))
        {
            problems.Add($"'{Shorten(name)}' is not a valid environment variable name (letters, digits and '_', not starting with a digit)");
            return close + 1;
        }

        var nameText = name.ToString();
        var value = environment(nameText);
        if (separator >= 0)
        {
            output.Append(string.IsNullOrEmpty(value) ? body[(separator + 2)..] : value);
        }
        else if (value is null)
        {
            problems.Add($"environment variable {nameText} is not set");
        }
        else
        {
            output.Append(value);
        }

        return close + 1;
    }

    private static bool At(string text, int index, string token) =>
        string.CompareOrdinal(text, index, token, 0, token.Length) == 0;

    private static bool IsValidName(ReadOnlySpan<char> name)
    {
        if (name.IsEmpty || char.IsAsciiDigit(name[0]))
        {
            return false;
        }

        foreach (var c in name)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c != '_')
            {
                return false;
            }
        }

        return true;
    }

    private static string Shorten(ReadOnlySpan<char> text) =>
        text.Length <= 40 ? text.ToString() : string.Concat(text[..40], "…");
}
