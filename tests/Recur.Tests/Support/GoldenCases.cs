namespace Recur.Tests.Support;

/// <summary>The golden checkpoints in tests/golden/, found by walking up from the test assembly.</summary>
public static class GoldenCases
{
    private static readonly Lazy<string> Root = new(FindRepositoryRoot);

    /// <summary>Every case folder under tests/golden.</summary>
    public static IReadOnlyList<string> All { get; } =
    [
        "falcon_mamba", "gemma", "gemma2", "gemma_bf16", "jamba", "mamba", "mamba2", "recurrent_gemma", "recurrent_gemma_bf16", "rwkv", "switch", "switch_capacity",
    ];

    /// <summary>The repository root: the first ancestor of the test assembly that contains tests/golden.</summary>
    public static string RepositoryRoot => Root.Value;

    /// <summary>The folder of one case, e.g. Dir("rwkv") holds config.json, model.safetensors, expected.safetensors.</summary>
    public static string Dir(string caseName)
    {
        string dir = Path.Combine(RepositoryRoot, "tests", "golden", caseName);
        if (!Directory.Exists(dir))
            throw new DirectoryNotFoundException($"golden case '{caseName}' not found: {dir} does not exist (cases: {string.Join(", ", All)})");
        return dir;
    }

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (Directory.Exists(Path.Combine(dir.FullName, "tests", "golden"))) return dir.FullName;
        throw new DirectoryNotFoundException($"no tests/golden folder above {AppContext.BaseDirectory}");
    }
}
