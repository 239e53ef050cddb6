using System.Globalization;
using System.Text;

namespace Recur.Export.Serving;

/// <summary>
/// Protocol buffers text format, as Triton reads config.pbtxt: scalar fields, enum names, repeated
/// numbers as <c>[ a, b ]</c> and nested messages as <c>name { ... }</c> (a repeated message is the
/// block written again).
/// </summary>
internal sealed class PbtxtWriter
{
    private readonly StringBuilder text = new();
    private int depth;

    public PbtxtWriter String(string field, string value) => Line($"{field}: \"{Escape(value)}\"");
    public PbtxtWriter Number(string field, long value) => Line($"{field}: {value.ToString(CultureInfo.InvariantCulture)}");
    public PbtxtWriter Enum(string field, string name) => Line($"{field}: {name}");
    public PbtxtWriter Bool(string field, bool value) => Line($"{field}: {(value ? "true" : "false")}");

    /// <summary>A repeated number field; an empty list is left out (the same message to a parser).</summary>
    public PbtxtWriter Numbers(string field, IReadOnlyList<long> values) =>
        values.Count == 0 ? this : Line($"{field}: [ {string.Join(", ", values.Select(v => v.ToString(CultureInfo.InvariantCulture)))} ]");

    public PbtxtWriter Message(string field, Action<PbtxtWriter> body)
    {
        Line($"{field} {{");
        depth++;
        body(this);
        depth--;
        return Line("}");
    }

    public override string ToString() => text.ToString();

    private PbtxtWriter Line(string line)
    {
        text.Append(' ', 2 * depth).Append(line).Append('\n');
        return this;
    }

    private static string Escape(string value) => value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal);
}
