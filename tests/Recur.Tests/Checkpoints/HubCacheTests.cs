using Recur.Export.Checkpoints;
using Recur.Tests.Support;

namespace Recur.Tests.Checkpoints;

/// <summary>
/// Model ids in a fake Hugging Face cache laid out as huggingface_hub writes it (refs, snapshots of
/// symlinks, blobs). The cache root is passed explicitly: tests share one process, so none sets the
/// environment; the environment lookup is tested as a pure function.
/// </summary>
public sealed class HubCacheTests
{
    private const string Main = "0123456789abcdef0123456789abcdef01234567";
    private const string Old = "fedcba9876543210fedcba9876543210fedcba98";

    /// <summary>models--org--tiny-rwkv with the golden rwkv files as blobs, snapshot <paramref name="commit"/> linking to them.</summary>
    private static string AddSnapshot(string cache, string commit, string modelId = "org/tiny-rwkv")
    {
        string repo = Path.Combine(cache, "models--" + modelId.Replace("/", "--"));
        string blobs = Directory.CreateDirectory(Path.Combine(repo, "blobs")).FullName;
        string snapshot = Directory.CreateDirectory(Path.Combine(repo, "snapshots", commit)).FullName;
        foreach (var file in Directory.GetFiles(GoldenCases.Dir("rwkv")))
        {
            string blob = Path.Combine(blobs, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(file))));
            if (!File.Exists(blob)) File.Copy(file, blob);
            File.CreateSymbolicLink(Path.Combine(snapshot, Path.GetFileName(file)), Path.Combine("..", "..", "blobs", Path.GetFileName(blob)));
        }
        return snapshot;
    }

    private static void SetRef(string cache, string name, string commit, string modelId = "org/tiny-rwkv")
    {
        string path = Path.Combine(cache, "models--" + modelId.Replace("/", "--"), "refs", name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, commit); // huggingface_hub writes the hash without a newline
    }

    [Fact]
    public void RefsMainSelectsTheSnapshotAndItsLinksRead()
    {
        using var temp = new TempFolder();
        string main = AddSnapshot(temp.Path, Main);
        AddSnapshot(temp.Path, Old);
        SetRef(temp.Path, "main", Main);

        string folder = HubCache.Resolve("org/tiny-rwkv", null, temp.Path);
        Assert.Equal(main, folder);
        using var checkpoint = Checkpoint.Open(folder);
        using var golden = SafetensorsFile.Open(Path.Combine(GoldenCases.Dir("rwkv"), "model.safetensors"));
        Assert.Equal(golden.Names, checkpoint.Names);
        foreach (var name in golden.Names) Assert.Equal(golden.ReadFloat32(name), checkpoint.ReadFloat32(name));
    }

    [Fact]
    public void RevisionByBranchOrCommit()
    {
        using var temp = new TempFolder();
        AddSnapshot(temp.Path, Main);
        string old = AddSnapshot(temp.Path, Old);
        SetRef(temp.Path, "main", Main);
        SetRef(temp.Path, "v1", Old);

        Assert.Equal(old, HubCache.Resolve("org/tiny-rwkv", "v1", temp.Path));
        Assert.Equal(old, HubCache.Resolve("org/tiny-rwkv", Old, temp.Path));
        var e = Assert.Throws<DirectoryNotFoundException>(() => HubCache.Resolve("org/tiny-rwkv", "v2", temp.Path));
        Assert.Contains("revision 'v2'", e.Message);
        Assert.Contains(Main, e.Message); // lists the snapshots there are
        Assert.Contains("huggingface-cli download org/tiny-rwkv --revision v2", e.Message);
        Assert.Throws<ArgumentException>(() => HubCache.Resolve("org/tiny-rwkv", "../../x", temp.Path));
    }

    [Fact]
    public void WithoutRefsMainTheOnlyOrNewestSnapshot()
    {
        using var temp = new TempFolder();
        string only = AddSnapshot(temp.Path, Old);
        Assert.Equal(only, HubCache.Resolve("org/tiny-rwkv", null, temp.Path));

        string newer = AddSnapshot(temp.Path, Main);
        Directory.SetLastWriteTimeUtc(only, DateTime.UtcNow.AddDays(-1));
        Directory.SetLastWriteTimeUtc(newer, DateTime.UtcNow);
        Assert.Equal(newer, HubCache.Resolve("org/tiny-rwkv", null, temp.Path));
    }

    [Fact]
    public void MissingModelSaysWhereItLookedAndHowToDownload()
    {
        using var temp = new TempFolder();
        var e = Assert.Throws<DirectoryNotFoundException>(() => HubCache.Resolve("org/absent", null, temp.Path));
        Assert.Contains(Path.Combine(temp.Path, "models--org--absent", "snapshots"), e.Message);
        Assert.Contains("huggingface-cli download org/absent", e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void MissingBlobIsAnInterruptedDownload()
    {
        using var temp = new TempFolder();
        string snapshot = AddSnapshot(temp.Path, Main);
        SetRef(temp.Path, "main", Main);
        File.Delete(new FileInfo(Path.Combine(snapshot, "model.safetensors")).ResolveLinkTarget(true)!.FullName);
        var e = Assert.Throws<FileNotFoundException>(() => HubCache.Resolve("org/tiny-rwkv", null, temp.Path));
        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains("interrupted download", e.Message);
    }

    [Theory]
    [InlineData("/h/hub", null, null, null, "/h/hub")]
    [InlineData(null, "legacy", "/hf", "/xdg", "legacy")]
    [InlineData(null, null, "/hf", "/xdg", "/hf/hub")]
    [InlineData(null, null, null, "/xdg", "/xdg/huggingface/hub")]
    [InlineData(null, null, null, null, "/home/u/.cache/huggingface/hub")]
    [InlineData("", null, "~/hf", null, "/home/u/hf/hub")] // empty counts as unset; ~ is the home folder
    public void CacheRootFollowsHuggingFaceHubOrder(string? hubCache, string? legacy, string? hfHome, string? xdg, string expected)
    {
        var env = new Dictionary<string, string?>
        {
            ["HF_HUB_CACHE"] = hubCache,
            ["HUGGINGFACE_HUB_CACHE"] = legacy,
            ["HF_HOME"] = hfHome,
            ["XDG_CACHE_HOME"] = xdg,
        };
        Assert.Equal(expected, HubCache.CacheRoot(name => env.GetValueOrDefault(name), "/home/u"));
    }

    [Theory]
    [InlineData("BlinkDL/rwkv-4-pile-169m", true)]
    [InlineData("RWKV/rwkv-4-169m-pile", true)]
    [InlineData("google/gemma-2b", true)]
    [InlineData("org/name.v1_x", true)]
    [InlineData("./local", false)]
    [InlineData("a/b/c", false)]
    [InlineData("/abs/path", false)]
    [InlineData("name", false)]
    public void ModelIds(string text, bool isId) => Assert.Equal(isId, HubCache.IsModelId(text));

    [Fact]
    public void ConvertOfAnUncachedModelIdExitsTwoWithOneLine()
    {
        using var temp = new TempFolder();
        var result = CliRunner.Run("convert", "recur-tests/surely-not-cached-7f3a", "-o", temp.File("out"), "--quiet", "--no-verify");
        Assert.Equal(2, result.Exit);
        var line = Assert.Single(result.Err.Trim().Split('\n'));
        Assert.Contains("models--recur-tests--surely-not-cached-7f3a", line);
        Assert.Contains("huggingface-cli download recur-tests/surely-not-cached-7f3a", line);
    }

    [Fact]
    public void RevisionWithAFolderIsAUsageError()
    {
        using var temp = new TempFolder();
        var result = CliRunner.Run("convert", GoldenCases.Dir("rwkv"), "-o", temp.File("out"), "--revision", "main", "--quiet", "--no-verify");
        Assert.Equal(2, result.Exit);
        Assert.Contains("--revision main", result.Err);
    }
}
