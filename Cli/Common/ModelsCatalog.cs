using System.Text.Json;

namespace Recur.Cli.Common;

/// <summary>models.json: the architectures, their known public checkpoints, default dtype and tolerances.</summary>
internal sealed class ModelsCatalog
{
    public const string FileName = "models.json";

    private ModelsCatalog(JsonElement root, string path)
    {
        Root = root;
        Path = path;
    }

    public JsonElement Root { get; }
    public string Path { get; }

    public static ModelsCatalog Load()
    {
        string path = System.IO.Path.Combine(AppContext.BaseDirectory, FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: missing; it ships next to the recur binary (rebuild with `make`)", path);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            return new ModelsCatalog(doc.RootElement.Clone(), path);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({e.Message})");
        }
    }

    public IEnumerable<JsonElement> Architectures => Root.GetProperty("architectures").EnumerateArray();

    /// <summary>The validation tolerance (max abs diff) for a model type at a weight dtype.</summary>
    public double Tolerance(string modelType, string dtype)
    {
        foreach (var a in Architectures)
            if (a.GetProperty("model_type").GetString() == modelType
                && a.TryGetProperty("tolerance", out var t) && t.TryGetProperty(dtype, out var v))
                return v.GetDouble();
        return dtype == "fp32" ? 1e-4 : throw new InvalidDataException($"{Path}: no {dtype} tolerance for '{modelType}'; pass --atol");
    }
}
