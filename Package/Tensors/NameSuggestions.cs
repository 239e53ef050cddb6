using System.Text;

namespace Recur.Package.Tensors;

/// <summary>"Did you mean" for tensor names, and quoting of untrusted names into one-line messages.</summary>
internal static class NameSuggestions
{
    // Names longer than this are not compared: a hostile header must not make an error message slow.
    private const int MaxComparedLength = 512;

    /// <summary>The message tail for a missing tensor: "closest names: 'a', 'b', 'c'".</summary>
    public static string ClosestText(string query, IEnumerable<string> names)
    {
        var closest = Closest(query, names, 3);
        return closest.Count == 0 ? "it holds no tensors" : "closest names: " + string.Join(", ", closest.Select(Quote));
    }

    /// <summary>Up to <paramref name="count"/> names by edit distance, ties broken by the longer shared suffix.</summary>
    public static IReadOnlyList<string> Closest(string query, IEnumerable<string> names, int count)
    {
        var best = new List<(int Distance, int Suffix, string Name)>(count + 1);
        foreach (var name in names)
        {
            if (name.Length > MaxComparedLength || query.Length > MaxComparedLength) continue;
            int bound = best.Count < count ? int.MaxValue : best[^1].Distance;
            if (Math.Abs(name.Length - query.Length) > bound) continue; // the length gap is a lower bound
            int distance = EditDistance(query, name, bound);
            if (distance > bound) continue;
            var candidate = (distance, SharedSuffix(query, name), name);
            int at = best.FindIndex(b => Better(candidate, b));
            best.Insert(at < 0 ? best.Count : at, candidate);
            if (best.Count > count) best.RemoveAt(best.Count - 1);
        }
        return best.Select(b => b.Name).ToList();
    }

    private static bool Better((int Distance, int Suffix, string Name) a, (int Distance, int Suffix, string Name) b) =>
        a.Distance != b.Distance ? a.Distance < b.Distance
        : a.Suffix != b.Suffix ? a.Suffix > b.Suffix
        : string.CompareOrdinal(a.Name, b.Name) < 0;

    private static int SharedSuffix(string a, string b)
    {
        int n = 0;
        while (n < a.Length && n < b.Length && a[^(n + 1)] == b[^(n + 1)]) n++;
        return n;
    }

    /// <summary>Levenshtein distance; stops early and returns a value above bound once it must exceed it.</summary>
    private static int EditDistance(string a, string b, int bound)
    {
        Span<int> previous = stackalloc int[b.Length + 1];
        Span<int> current = stackalloc int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) previous[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            int rowMin = current[0];
            for (int j = 1; j <= b.Length; j++)
            {
                int substitute = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
                current[j] = Math.Min(substitute, Math.Min(previous[j], current[j - 1]) + 1);
                rowMin = Math.Min(rowMin, current[j]);
            }
            if (rowMin > bound) return rowMin;
            var swap = previous; previous = current; current = swap;
        }
        return previous[b.Length];
    }

    /// <summary>A name or key from a file, quoted for a one-line message: control characters escaped, long names cut.</summary>
    public static string Quote(string text)
    {
        const int MaxShown = 200;
        var sb = new StringBuilder(Math.Min(text.Length, MaxShown) + 2).Append('\'');
        foreach (char c in text.Length > MaxShown ? text[..MaxShown] : text)
        {
            if (char.IsControl(c)) sb.Append($"\\u{(int)c:x4}");
            else sb.Append(c);
        }
        if (text.Length > MaxShown) sb.Append($"...({text.Length} chars)");
        return sb.Append('\'').ToString();
    }
}
