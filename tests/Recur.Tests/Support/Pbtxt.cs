using System.Globalization;
using System.Text;

namespace Recur.Tests.Support;

/// <summary>
/// A reader of protocol buffers text format, enough for Triton's config.pbtxt: <c>field: scalar</c>,
/// <c>field: [ a, b ]</c>, <c>field { ... }</c> (also <c>field: { ... }</c> and lists of messages),
/// quoted strings and # comments. Field order is kept; a repeated field is its entries in order.
/// </summary>
public sealed class Pbtxt
{
    private readonly List<(string Field, object Value)> fields = [];

    public IEnumerable<object> All(string field) => fields.Where(f => f.Field == field).SelectMany(f => f.Value is List<object> list ? list : [f.Value]);
    public IEnumerable<Pbtxt> Messages(string field) => All(field).Cast<Pbtxt>();
    public Pbtxt Message(string field) => Messages(field).Single();
    public bool Has(string field) => fields.Any(f => f.Field == field);
    /// <summary>A scalar as written: a string's text, or a number, enum or bool token.</summary>
    public string Scalar(string field) => (string)All(field).Single();
    public long Long(string field) => long.Parse(Scalar(field), CultureInfo.InvariantCulture);
    public long[] Longs(string field) => All(field).Select(v => long.Parse((string)v, CultureInfo.InvariantCulture)).ToArray();

    public static Pbtxt Parse(string text)
    {
        var reader = new Reader(text);
        var message = reader.Fields('\0');
        return message;
    }

    private sealed class Reader(string text)
    {
        private int at;

        public Pbtxt Fields(char end)
        {
            var message = new Pbtxt();
            while (true)
            {
                Skip();
                if (at == text.Length)
                {
                    if (end != '\0') throw Error($"expected '{end}' before the end");
                    return message;
                }
                if (text[at] == end)
                {
                    at++;
                    return message;
                }
                string name = Identifier();
                Skip();
                bool colon = Peek(':');
                if (colon) at++;
                Skip();
                message.fields.Add((name, Value(allowScalar: colon)));
                Skip();
                if (at < text.Length && (text[at] == ',' || text[at] == ';')) at++;
            }
        }

        private object Value(bool allowScalar)
        {
            if (Peek('{')) { at++; return Fields('}'); }
            if (Peek('<')) { at++; return Fields('>'); }
            if (!allowScalar) throw Error("expected '{' after a field name without ':'");
            if (Peek('['))
            {
                at++;
                var list = new List<object>();
                Skip();
                if (Peek(']')) { at++; return list; }
                while (true)
                {
                    Skip();
                    list.Add(Value(allowScalar: true));
                    Skip();
                    if (Peek(',')) { at++; continue; }
                    if (Peek(']')) { at++; return list; }
                    throw Error("expected ',' or ']' in a list");
                }
            }
            if (Peek('"') || Peek('\'')) return QuotedString();
            int start = at;
            while (at < text.Length && (char.IsLetterOrDigit(text[at]) || text[at] is '-' or '+' or '.' or '_')) at++;
            if (at == start) throw Error("expected a value");
            return text[start..at];
        }

        private string QuotedString()
        {
            char quote = text[at++];
            var s = new StringBuilder();
            while (at < text.Length && text[at] != quote)
            {
                if (text[at] == '\\' && at + 1 < text.Length)
                {
                    at++;
                    s.Append(text[at] switch { 'n' => '\n', 't' => '\t', var c => c });
                }
                else s.Append(text[at]);
                at++;
            }
            if (at == text.Length) throw Error("unterminated string");
            at++;
            return s.ToString();
        }

        private string Identifier()
        {
            int start = at;
            while (at < text.Length && (char.IsLetterOrDigit(text[at]) || text[at] == '_')) at++;
            if (at == start) throw Error("expected a field name");
            return text[start..at];
        }

        private bool Peek(char c) => at < text.Length && text[at] == c;

        private void Skip()
        {
            while (at < text.Length)
            {
                if (char.IsWhiteSpace(text[at])) at++;
                else if (text[at] == '#') while (at < text.Length && text[at] != '\n') at++;
                else return;
            }
        }

        private FormatException Error(string message) => new($"config.pbtxt at offset {at}: {message}");
    }
}
