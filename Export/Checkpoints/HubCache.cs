using System.Text.RegularExpressions;
using Recur.Package.Files;

namespace Recur.Export.Checkpoints;

/// <summary>
/// Finds a model id (ORG/NAME) in the local Hugging Face cache that huggingface_hub fills:
/// <code>
/// {cache}/models--ORG--NAME/refs/main          the commit hash "main" points to (refs/REV for other branches, tags)
/// {cache}/models--ORG--NAME/snapshots/{hash}/  the files of that commit, symlinks into ../../blobs/
/// </code>
/// The cache root is $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE (its old name), else $HF_HOME/hub,
/// else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub, as huggingface_hub resolves it.
/// Nothing is downloaded.
/// </summary>
public static partial class HubCache
{
    /// <summary>ORG/NAME as the Hub spells repository ids (letters, digits, '-', '_', '.').</summary>
    public static bool IsModelId(string text) => ModelId().IsMatch(text);

    /// <summary>The cache root from the environment (a pure function of the variables and the home folder).</summary>
    public static string CacheRoot(Func<string, string?> environment, string home)
    {
        string? Var(string name) => environment(name) is { Length: > 0 } v ? Expand(v, home) : null;
        return Var("HF_HUB_CACHE") ?? Var("HUGGINGFACE_HUB_CACHE")
            ?? (Var("HF_HOME") is { } hfHome ? Path.Combine(hfHome, "hub") : null)
            ?? Path.Combine(Var("XDG_CACHE_HOME") ?? Path.Combine(home, ".cache"), "huggingface", "hub");
    }

    /// <summary>The snapshot folder of a model in the cache this process's environment names.</summary>
    public static string Resolve(string modelId, string? revision) =>
        Resolve(modelId, revision, CacheRoot(Environment.GetEnvironmentVariable, Environment.GetFolderPath(Environment.SpecialFolder.UserProfile)));

    /// <summary>
    /// The snapshot folder of <paramref name="modelId"/> under <paramref name="cacheRoot"/>: the commit
    /// refs/{revision or main} names, a commit hash given as the revision, or (no revision, no refs/main)
    /// the only or newest snapshot. Throws DirectoryNotFoundException saying where it looked.
    /// </summary>
    internal static string Resolve(string modelId, string? revision, string cacheRoot)
    {
        if (!IsModelId(modelId)) throw new ArgumentException($"'{modelId}' is not a Hugging Face model id (ORG/NAME)");
        string repo = Path.Combine(cacheRoot, "models--" + modelId.Replace("/", "--", StringComparison.Ordinal));
        string snapshots = Path.Combine(repo, "snapshots");
        string download = $"download it with `huggingface-cli download {modelId}{(revision is null ? "" : " --revision " + revision)}` on a machine with internet (and copy the cache here, or set HF_HUB_CACHE), or pass a checkpoint folder";
        if (!Directory.Exists(snapshots))
            throw new DirectoryNotFoundException($"{modelId} is not a folder, and not in the Hugging Face cache: looked for {snapshots}; {download}");

        string? commit;
        if (revision is not null)
        {
            if (revision.Length == 0 || revision.IndexOfAny(['\\', '\0']) >= 0 || revision.Split('/').Any(p => p is "" or "." or ".."))
                throw new ArgumentException($"--revision '{revision}' is not a branch, tag or commit name");
            string reference = Path.Combine(repo, "refs", revision);
            commit = File.Exists(reference) ? InputFiles.ReadText(reference, "Hugging Face cache reference", 4096).Trim() : revision;
        }
        else
        {
            string main = Path.Combine(repo, "refs", "main");
            commit = File.Exists(main) ? InputFiles.ReadText(main, "Hugging Face cache reference", 4096).Trim() : LatestSnapshot(snapshots);
        }

        string folder = commit is null ? "" : Path.Combine(snapshots, commit);
        if (commit is null || !IsPlainName(commit) || !Directory.Exists(folder))
        {
            var present = Directory.Exists(snapshots) ? Directory.GetDirectories(snapshots).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList() : [];
            string wanted = revision is null ? "refs/main" : $"revision '{revision}'";
            throw new DirectoryNotFoundException(
                $"{modelId}: the Hugging Face cache at {repo} has no snapshot for {wanted}{(commit is null || commit == revision ? "" : $" (commit {commit})")}"
                + $" (snapshots: {(present.Count == 0 ? "none" : string.Join(", ", present))}); {download}");
        }
        CheckLinks(modelId, folder);
        return folder;
    }

    /// <summary>The only snapshot, or the most recently written one when there are several.</summary>
    private static string? LatestSnapshot(string snapshots) =>
        new DirectoryInfo(snapshots).GetDirectories().OrderByDescending(d => d.LastWriteTimeUtc).ThenBy(d => d.Name, StringComparer.Ordinal)
            .Select(d => d.Name).FirstOrDefault();

    /// <summary>A snapshot file whose blob is missing is an interrupted download; say so instead of "no checkpoint".</summary>
    private static void CheckLinks(string modelId, string folder)
    {
        foreach (var file in new DirectoryInfo(folder).EnumerateFiles())
        {
            if (file.LinkTarget is null || file.ResolveLinkTarget(returnFinalTarget: true) is { Exists: true }) continue;
            throw new FileNotFoundException(
                $"{modelId}: {file.FullName} points to {file.LinkTarget}, which is missing (an interrupted download?); run `huggingface-cli download {modelId}` again",
                file.FullName);
        }
    }

    private static bool IsPlainName(string name) =>
        name.Length > 0 && name != "." && name != ".." && name.IndexOfAny(['/', '\\', '\0']) < 0;

    private static string Expand(string path, string home) =>
        path == "~" ? home : path.StartsWith("~/", StringComparison.Ordinal) ? Path.Combine(home, path[2..]) : path;

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
    private static partial Regex ModelId();
}
