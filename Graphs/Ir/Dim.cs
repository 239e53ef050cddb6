namespace Recur.Graphs.Ir;

/// <summary>One dimension of a tensor shape: a fixed size, a named symbol ("batch"), or unknown.</summary>
public readonly record struct Dim
{
    public long? Size { get; }
    public string? Symbol { get; }

    private Dim(long? size, string? symbol) { Size = size; Symbol = symbol; }

    public static Dim Of(long size) => size >= 0 ? new(size, null) : throw new ArgumentOutOfRangeException(nameof(size), size, "a dimension cannot be negative");
    public static Dim Named(string symbol) => new(null, symbol);
    public static readonly Dim Unknown = new(null, null);

    public bool IsFixed => Size.HasValue;

    public static implicit operator Dim(long size) => Of(size);
    public static implicit operator Dim(int size) => Of(size);
    public static implicit operator Dim(string symbol) => Named(symbol);

    /// <summary>Whether two dimensions can be the same at run time (unknown and symbolic dims match anything).</summary>
    public bool CompatibleWith(Dim other) => !(IsFixed && other.IsFixed) || Size == other.Size;

    /// <summary>The more specific of two compatible dimensions.</summary>
    public Dim Merge(Dim other) => IsFixed ? this : other.IsFixed ? other : Symbol is not null ? this : other;

    public override string ToString() => Size?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? Symbol ?? "?";
}

/// <summary>Helpers over shapes (a null shape means the rank is unknown).</summary>
public static class Shapes
{
    public static string Format(IReadOnlyList<Dim>? shape) => shape is null ? "[?]" : "[" + string.Join(", ", shape) + "]";

    public static Dim Product(IEnumerable<Dim> dims)
    {
        long size = 1;
        foreach (var d in dims)
        {
            if (!d.IsFixed) return Dim.Unknown;
            size *= d.Size!.Value;
        }
        return size;
    }
}
