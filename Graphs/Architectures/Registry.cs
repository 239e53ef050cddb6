namespace Recur.Graphs.Architectures;

/// <summary>The explicit map from Hugging Face model_type to the architecture that builds it.</summary>
public static class Registry
{
    private static readonly IArchitecture[] All =
    [
        new Rwkv(),
        new Rwkv7(),
        new Gemma(GemmaVariant.Gemma), new Gemma(GemmaVariant.Gemma2),
        new RecurrentGemma(),
        new SwitchTransformers(),
        new Mamba(MambaVariant.Mamba), new Mamba(MambaVariant.FalconMamba),
        new Mamba2(),
        new Jamba(),
    ];

    public static IReadOnlyList<IArchitecture> Architectures => All;

    /// <summary>The architecture for a model_type, or a NotSupportedException with "did you mean".</summary>
    public static IArchitecture Find(string modelType, string configPath)
    {
        var found = All.FirstOrDefault(a => a.ModelType == modelType);
        if (found is not null) return found;
        var closest = All.Select(a => a.ModelType).OrderBy(t => EditDistance(t, modelType)).First();
        string hint = EditDistance(closest, modelType) <= Math.Max(2, modelType.Length / 3) ? $"; did you mean '{closest}'?" : "";
        throw new NotSupportedException(
            $"{configPath}: model_type '{modelType}' is not supported yet (supported: {string.Join(", ", All.Select(a => a.ModelType))}){hint}");
    }

    internal static int EditDistance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
        return d[a.Length, b.Length];
    }
}
