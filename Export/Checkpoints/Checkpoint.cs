using System.Security.Cryptography;
using System.Text;
using Recur.Graphs.Weights;
using static Recur.Package.Tensors.NameSuggestions;
using Recur.Package.Files;

namespace Recur.Export.Checkpoints;

/// <summary>
/// The weights in a Hugging Face checkpoint folder: model.safetensors, or shards listed by
/// model.safetensors.index.json; else the PyTorch equivalents (pytorch_model.bin, its index, or one
/// *.pth / *.pt), as transformers prefers safetensors when both are present. Shards are opened on first use, and each is then checked against
/// the index both ways (every tensor the index maps to it is there, and it holds nothing else),
/// so a conversion that reads every tensor has checked the whole checkpoint.
/// </summary>
public sealed class Checkpoint : ITensorSource, IDisposable
{
    private readonly Dictionary<string, Shard> shardOf;
    private readonly Shard[] shards;
    private readonly IReadOnlyCollection<string> names;
    private readonly Lazy<string> contentHash;
    private bool disposed;

    private Checkpoint(string folder, IReadOnlyList<string> files, Shard[] shards, Dictionary<string, Shard> shardOf, IEnumerable<string> names)
    {
        Folder = folder;
        Files = files;
        this.shards = shards;
        this.shardOf = shardOf;
        this.names = Array.AsReadOnly(names.Order(StringComparer.Ordinal).ToArray());
        contentHash = new Lazy<string>(ComputeContentHash, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The checkpoint folder, as a full path.</summary>
    public string Folder { get; }

    /// <summary>The files that hold the weights, relative to <see cref="Folder"/>: the index first if sharded, then the shards.</summary>
    public IReadOnlyList<string> Files { get; }

    /// <summary>Tensor names in ordinal order.</summary>
    public IReadOnlyCollection<string> Names => names;

    /// <summary>
    /// Lowercase hex SHA-256 for provenance. One file: the SHA-256 of that file (what sha256sum and the
    /// Hub's LFS pointer show). Sharded: the SHA-256 of the text "{sha256}  {file}\n" for each of
    /// <see cref="Files"/> sorted by name, i.e. of sha256sum's output over them. Computed on first use.
    /// </summary>
    public string ContentHash => contentHash.Value;

    /// <summary>Opens the checkpoint in a folder; see the class summary for what is checked when.</summary>
    public static Checkpoint Open(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        string full = Path.GetFullPath(folder);
        if (!Directory.Exists(full))
            throw new DirectoryNotFoundException(File.Exists(full)
                ? $"checkpoint folder {full} is a file; pass the folder that holds the checkpoint"
                : $"checkpoint folder {full} does not exist");

        foreach (var format in CheckpointFormat.All)
        {
            string single = Path.Combine(full, format.SingleFile);
            string index = Path.Combine(full, format.IndexFile);
            var others = format.OtherPatterns.SelectMany(p => Directory.EnumerateFiles(full, p)).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
            string? found = File.Exists(single) ? format.SingleFile : File.Exists(index) ? format.IndexFile : others.FirstOrDefault();
            if (found is null) continue;
            // Original-format repositories (e.g. BlinkDL's) hold several sizes of one model side by side.
            if (found == others.FirstOrDefault() && others.Count > 1)
                throw new InvalidDataException(
                    $"{full} holds {others.Count} {format.Description} checkpoints ({string.Join(", ", others.Take(4))}{(others.Count > 4 ? ", ..." : "")}); which one is meant is unclear: put the one to convert in a folder of its own with its config.json");
            if (!format.IsSupported)
                throw new NotSupportedException(
                    $"{full} holds a {format.Description} checkpoint ({found}), which Recur does not read yet; convert it to safetensors first (in Python: model.save_pretrained(folder, safe_serialization=True))");
            return found == format.IndexFile ? OpenSharded(full, index, format) : OpenSingle(full, found, format);
        }

        var lookedFor = CheckpointFormat.All.SelectMany(f => new[] { f.SingleFile, f.IndexFile }.Concat(f.OtherPatterns));
        var strays = Directory.EnumerateFiles(full, "*.safetensors").Select(Path.GetFileName).Order(StringComparer.Ordinal).Take(3).ToList();
        throw new FileNotFoundException(
            $"no checkpoint in {full}: looked for {string.Join(", ", lookedFor)}"
            + (strays.Count > 0 ? $"; found {string.Join(", ", strays)}, but a single-file checkpoint must be named model.safetensors" : ""),
            Path.Combine(full, CheckpointFormat.Safetensors.SingleFile));
    }

    public bool TryGetEntry(string name, out TensorEntry entry)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (shardOf.TryGetValue(name, out var shard)) return shard.Source.TryGetEntry(name, out entry);
        entry = null!; // the interface's out parameter is not annotated; callers check the return value
        return false;
    }

    public float[] ReadFloat32(string name) => ShardOf(name).Source.ReadFloat32(name);

    public void ReadRaw(string name, Span<byte> destination) => ShardOf(name).Source.ReadRaw(name, destination);

    public string Describe(string name) => ShardOf(name).FileName;

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        foreach (var shard in shards) shard.Dispose();
    }

    private Shard ShardOf(string name)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (shardOf.TryGetValue(name, out var shard)) return shard;
        throw new KeyNotFoundException($"tensor {Quote(name)} is not in checkpoint {Folder}; {ClosestText(name, names)}");
    }

    private static Checkpoint OpenSingle(string folder, string fileName, CheckpointFormat format)
    {
        var shard = new Shard(folder, fileName, format, indexPath: null, indexed: null);
        try
        {
            var source = shard.Source; // one file: open it now, its header lists the names
            var shardOf = source.Names.ToDictionary(n => n, _ => shard, StringComparer.Ordinal);
            return new Checkpoint(folder, [fileName], [shard], shardOf, source.Names);
        }
        catch
        {
            shard.Dispose();
            throw;
        }
    }

    private static Checkpoint OpenSharded(string folder, string indexPath, CheckpointFormat format)
    {
        var index = ShardIndex.Read(indexPath);
        var byShard = index.WeightMap.GroupBy(kv => kv.Value, kv => kv.Key, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal).ToList();
        foreach (var group in byShard)
        {
            string path = Path.Combine(folder, group.Key);
            if (!File.Exists(path))
                throw new FileNotFoundException(
                    $"{indexPath} maps {group.Count()} tensors (e.g. {Quote(group.First())}) to shard {group.Key}, which is not in {folder}; download the missing shard",
                    path);
        }

        var shards = byShard.Select(g => new Shard(folder, g.Key, format, indexPath, g.ToHashSet(StringComparer.Ordinal))).ToArray();
        var shardOf = new Dictionary<string, Shard>(StringComparer.Ordinal);
        foreach (var shard in shards)
            foreach (var name in shard.Indexed!) shardOf.Add(name, shard);
        return new Checkpoint(folder, [Path.GetFileName(indexPath), .. shards.Select(s => s.FileName)], shards, shardOf, index.WeightMap.Keys);
    }

    private string ComputeContentHash()
    {
        if (Files.Count == 1) return HashFile(Path.Combine(Folder, Files[0]));
        var manifest = new StringBuilder();
        foreach (var file in Files.Order(StringComparer.Ordinal))
            manifest.Append(HashFile(Path.Combine(Folder, file))).Append("  ").Append(file).Append('\n');
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(manifest.ToString())));
    }

    private static string HashFile(string path)
    {
        InputFiles.RequireRegular(path, "checkpoint file");
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 20, FileOptions.SequentialScan);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>One file of the checkpoint, opened on first use and then checked against the index.</summary>
    private sealed class Shard(string folder, string fileName, CheckpointFormat format, string? indexPath, HashSet<string>? indexed) : IDisposable
    {
        private readonly Lock gate = new();
        private ITensorSource? source;

        public string FileName => fileName;

        /// <summary>The tensors the index maps to this shard; null for a single-file checkpoint.</summary>
        public HashSet<string>? Indexed => indexed;

        public ITensorSource Source
        {
            get
            {
                lock (gate)
                {
                    if (source is not null) return source;
                    var opened = format.OpenFile!(Path.Combine(folder, fileName));
                    try
                    {
                        CheckAgainstIndex(opened);
                    }
                    catch
                    {
                        (opened as IDisposable)?.Dispose();
                        throw;
                    }
                    return source = opened;
                }
            }
        }

        public void Dispose()
        {
            lock (gate)
            {
                (source as IDisposable)?.Dispose();
                source = null;
            }
        }

        private void CheckAgainstIndex(ITensorSource opened)
        {
            if (indexed is null) return;
            string shardPath = Path.Combine(folder, fileName);
            var missing = indexed.Where(n => !opened.TryGetEntry(n, out _)).Order(StringComparer.Ordinal).ToList();
            if (missing.Count > 0)
                throw new InvalidDataException(
                    $"{indexPath} maps tensor {Quote(missing[0])} to {fileName}, but that shard has no such tensor"
                    + (missing.Count > 1 ? $" (nor {missing.Count - 1} more the index maps to it)" : "")
                    + $"; {shardPath} holds {opened.Names.Count} tensors; the index and the shards disagree (re-download the checkpoint?)");
            var unlisted = opened.Names.Where(n => !indexed.Contains(n)).Order(StringComparer.Ordinal).ToList();
            if (unlisted.Count > 0)
                throw new InvalidDataException(
                    $"{shardPath} holds {unlisted.Count} tensors that {Path.GetFileName(indexPath)} does not map to it: "
                    + string.Join(", ", unlisted.Take(3).Select(Quote)) + (unlisted.Count > 3 ? ", ..." : "")
                    + "; the index is stale or the shard belongs to another checkpoint");
        }
    }
}
