using System.Globalization;
using System.Text.Json;
using Recur.Export.Checkpoints;
using Recur.Export.Packages;
using Recur.Package;
using Recur.Package.Files;
using Recur.Graphs;
using Recur.Graphs.Architectures;
using Recur.Graphs.Config;
using Recur.Graphs.Ir;
using Recur.Graphs.Weights;

namespace Recur.Export;

public sealed record ConvertOptions
{
    /// <summary>A checkpoint folder, or a Hugging Face model id (ORG/NAME) to find in the local Hugging Face cache.</summary>
    public required string CheckpointDir { get; init; }
    /// <summary>Branch, tag or commit of a model id in the cache (default: main); not for folders.</summary>
    public string? Revision { get; init; }
    public required string OutputDir { get; init; }
    public TensorDType MatrixWeightType { get; init; } = TensorDType.Float32;
    /// <summary>Integer matrix weights (int8 / int4); null keeps them in <see cref="MatrixWeightType"/>.</summary>
    public WeightQuantization? Quantization { get; init; }
    public int Opset { get; init; } = GraphBuilder.DefaultOpset;
    /// <summary>RWKV-4 only: positions per chunk of the parallel WKV, 0 for the Scan over positions; null for the default.</summary>
    public int? WkvChunk { get; init; }
    public ExternalDataMode ExternalData { get; init; } = ExternalDataMode.Auto;
    /// <summary>Replace an existing non-empty output folder, if it is a Recur package holding nothing but package files.</summary>
    public bool Force { get; init; }
    /// <summary>Convert NaN and infinite weights as they are instead of refusing them.</summary>
    public bool AllowNonFinite { get; init; }
    /// <summary>Attention caches of this many positions written in place (see <see cref="ExportOptions.KvCacheLength"/>).</summary>
    public int? KvCacheLength { get; init; }
    /// <summary>Storage type of growing attention caches (see <see cref="ExportOptions.KvCacheType"/>).</summary>
    public TensorDType KvCacheType { get; init; } = TensorDType.Float32;
}

/// <summary>The output folder is taken, or replacing it would delete something that is not a package file.</summary>
public sealed class OutputExistsException(string message) : IOException(message);

public sealed record ConvertResult(string OutputDir, PackageManifest Manifest, IReadOnlyList<string> Files, long ParameterCount, long WeightBytes);

/// <summary>
/// checkpoint folder -> architecture -> graphs -> package, written into a temporary folder beside
/// the target and renamed into place only after it has been verified.
/// </summary>
public static partial class Converter
{
    /// <summary>Files copied from the checkpoint so a package carries its tokenizer and generation defaults.</summary>
    private static readonly string[] CompanionFiles =
    [
        "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
        "tokenizer.model", "spiece.model", "vocab.json", "merges.txt", "added_tokens.json", PackageManifest.WorldVocabularyFile,
    ];

    public static string DTypeName(TensorDType t) => t switch
    {
        TensorDType.Float32 => "fp32",
        TensorDType.Float16 => "fp16",
        TensorDType.BFloat16 => "bf16",
        TensorDType.Int64 => "int64",
        TensorDType.Int32 => "int32",
        _ => t.ToString(),
    };

    /// <param name="verify">Called with the finished temporary folder before it replaces anything (e.g. load it in ONNX Runtime).</param>
    /// <param name="progress">Lines of what happens, for the user.</param>
    /// <param name="bytesWritten">Weight bytes written so far and the total, as the package is written.</param>
    public static ConvertResult Convert(ConvertOptions options, Action<string>? verify = null, Action<string>? progress = null,
        Action<long, long>? bytesWritten = null)
    {
        string source = ResolveSource(options);
        string target = Path.TrimEndingDirectorySeparator(Path.GetFullPath(options.OutputDir));
        string parent = Path.GetDirectoryName(target) ?? throw new OutputExistsException($"-o {target}: is a root folder; choose a folder below it");
        RemoveAbandoned(parent); // first: it may put back a package the target check must see
        CheckTarget(target, source, options.Force);

        var (config, inferredConfig) = LoadConfig(source, progress);
        var architecture = Registry.Find(config.ModelType, config.Path);
        if (options.WkvChunk is int chunk && (chunk < 0 || architecture is not Rwkv))
            throw new ArgumentException(chunk < 0 ? $"--wkv-chunk {chunk}: expected 0 (the Scan over positions) or a positive chunk length"
                : $"--wkv-chunk: applies to RWKV-4 (model_type rwkv), but {config.Path} is model_type {config.ModelType}");
        using var checkpoint = Checkpoint.Open(source);
        var weights = new WeightPuller(Renamed(checkpoint, config, source), source);
        progress?.Invoke($"building {architecture.HfClass} graph from {source}");
        var model = architecture.Build(config, weights, new ExportOptions
        {
            Opset = options.Opset, MatrixWeightType = options.MatrixWeightType, Quantization = options.Quantization,
            WkvChunk = options.WkvChunk,
            KvCacheLength = options.KvCacheLength,
            KvCacheType = options.KvCacheType,
        });
        if (options.KvCacheType != TensorDType.Float32)
        {
            if (options.KvCacheLength is not null)
                throw new NotSupportedException("--kv-dtype fp16 with --kv-cache-length: the in-place cache is float32 only; choose one");
            if (!model.Graphs.Any(g => g.Graph.States.Any(s => s.DType == options.KvCacheType)))
                throw new NotSupportedException($"--kv-dtype fp16: {config.ModelType} packages have no growing attention cache that takes it (gemma, gemma2, jamba do)");
        }
        if (options.KvCacheLength is not null && !model.Graphs.Any(g => g.Graph.States.Any(s => s.InPlaceAxis is not null)))
            throw new NotSupportedException($"--kv-cache-length: {config.ModelType} packages have no attention cache that takes it (gemma, gemma2 do)");
        RefuseUnused(weights, source);

        string temp = Path.Combine(parent, $".{Path.GetFileName(target)}.converting-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            var files = new List<string>();
            // One graph is model.onnx; an encoder-decoder pair is encoder.onnx + decoder.onnx.
            var graphFiles = model.Graphs.ToDictionary(g => g.Role, g => model.Graphs.Count == 1 ? "model.onnx" : $"{g.Role}.onnx");
            var manifest = BuildManifest(options, config, architecture, model, graphFiles, checkpoint, source);
            string manifestJson = manifest.ToJson();
            long total = model.Graphs.Sum(g => g.Graph.Initializers.Sum(i => i.ByteSize)), before = 0;
            foreach (var graph in model.Graphs)
            {
                progress?.Invoke($"writing {graphFiles[graph.Role]} ({graph.Graph.NodeCount} nodes, {graph.Graph.Initializers.Count} initializers)");
                long offset = before;
                // The state contract travels inside the model too, so a bare model.onnx still explains itself.
                var meta = new Dictionary<string, string> { ["recur.package"] = manifestJson, ["recur.graph_role"] = graph.Role };
                files.AddRange(ModelWriter.Write(graph.Graph, Path.Combine(temp, graphFiles[graph.Role]),
                    new ModelWriteOptions
                    {
                        ExternalData = options.ExternalData,
                        AllowNonFinite = options.AllowNonFinite,
                        Metadata = meta,
                        Progress = bytesWritten is null ? null : done => bytesWritten(offset + done, total),
                    }));
                before += graph.Graph.Initializers.Sum(i => i.ByteSize);
            }
            File.WriteAllText(Path.Combine(temp, PackageManifest.FileName), manifestJson);
            foreach (var (name, text) in model.ExtraFiles) File.WriteAllText(Path.Combine(temp, name), text);
            if (!model.ExtraFiles.ContainsKey(GenAiConfig.FileName)
                && GenAiConfig.ForStates(manifest, config) is { } genai)
                File.WriteAllText(Path.Combine(temp, GenAiConfig.FileName), genai);
            foreach (var name in CompanionFiles)
            {
                string from = Path.Combine(source, name);
                if (InputFiles.KindOf(from) == InputFiles.Kind.Missing) continue;
                InputFiles.RequireWithin(from, "checkpoint file", name.EndsWith(".json", StringComparison.Ordinal) ? InputBudgets.JsonBytes : InputBudgets.TextBytes);
                File.Copy(from, Path.Combine(temp, name));
            }
            if (inferredConfig is not null) File.WriteAllText(Path.Combine(temp, "config.json"), inferredConfig);
            verify?.Invoke(temp);
            Commit(temp, target);
            var initializers = model.Graphs.SelectMany(g => g.Graph.Initializers).ToList();
            return new ConvertResult(target, manifest, Directory.GetFiles(target).Select(Path.GetFileName).ToList()!,
                initializers.Sum(i => i.ElementCount), initializers.Sum(i => i.ByteSize));
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>A folder as given; else a model id looked up in the local Hugging Face cache.</summary>
    private static string ResolveSource(ConvertOptions options)
    {
        string path = Path.GetFullPath(options.CheckpointDir);
        if (Directory.Exists(path))
        {
            if (options.Revision is not null)
                throw new ArgumentException($"--revision {options.Revision}: a revision selects a snapshot of a model id in the Hugging Face cache, but {path} is a folder");
            return path;
        }
        if (HubCache.IsModelId(options.CheckpointDir)) return HubCache.Resolve(options.CheckpointDir, options.Revision);
        throw new DirectoryNotFoundException($"{options.CheckpointDir}: no such checkpoint folder (nor a Hugging Face model id ORG/NAME)");
    }

    /// <summary>
    /// config.json. An original RWKV-7 .pth without one gets the config its shapes imply (announced in one line, and
    /// returned as text for the package); an original RWKV-4 .pth has too little in its shapes, so the message offers one.
    /// </summary>
    private static (ModelConfig Config, string? Inferred) LoadConfig(string source, Action<string>? progress)
    {
        string path = Path.Combine(source, "config.json");
        if (!File.Exists(path) && Directory.EnumerateFiles(source, "*.pth").Any())
        {
            string? suggestion = null;
            bool inferring = false;
            try
            {
                using var checkpoint = Checkpoint.Open(source);
                if (Rwkv7OriginalNames.Matches(checkpoint))
                {
                    inferring = true;
                    var (json, summary) = Rwkv7OriginalNames.InferConfig(checkpoint, source);
                    progress?.Invoke(summary);
                    return (ModelConfig.Parse(json, $"{path} (inferred from the tensor shapes)"), json);
                }
                if (RwkvOriginalNames.Matches(checkpoint)) suggestion = RwkvOriginalNames.SuggestConfig(checkpoint);
            }
            catch (Exception e) when (!inferring && e is InvalidDataException or NotSupportedException or IOException)
            {
                // The checkpoint's own problem is reported once a config.json is there; the missing config comes first.
            }
            if (suggestion is not null)
                throw new FileNotFoundException(
                    $"{path}: not found; an original RWKV-4 checkpoint needs a config.json beside it (hyper-parameters such as rescale_every and the token ids are not in the weights). From its shapes and RwkvConfig's defaults: {suggestion}",
                    path);
        }
        var config = ModelConfig.Load(path);
        return (MambaOriginalConfig.Matches(config) ? MambaOriginalConfig.ToHuggingFace(config) : config, null);
    }

    /// <summary>The checkpoint under the names the architecture pulls: BlinkDL's original RWKV-4 and RWKV-7 names are mapped to Hugging Face's.</summary>
    private static ITensorSource Renamed(Checkpoint checkpoint, ModelConfig config, string source)
    {
        if (Rwkv7OriginalNames.Matches(checkpoint))
        {
            if (config.ModelType != "rwkv7")
                throw new InvalidDataException($"{source}: the checkpoint has original RWKV-7 tensor names (emb.weight, blocks.0.att.r_k), but config.json says model_type '{config.ModelType}'");
            return Rwkv7OriginalNames.Open(checkpoint);
        }
        if (!RwkvOriginalNames.Matches(checkpoint)) return checkpoint;
        if (config.ModelType != "rwkv")
            throw new InvalidDataException($"{source}: the checkpoint has original RWKV-4 tensor names (emb.weight, blocks.0.att.key.weight), but config.json says model_type '{config.ModelType}'");
        return RwkvOriginalNames.Open(checkpoint);
    }

    private static PackageManifest BuildManifest(ConvertOptions options, ModelConfig config, IArchitecture architecture, ExportedModel model,
        IReadOnlyDictionary<string, string> graphFiles, Checkpoint checkpoint, string source)
    {
        var decoder = model.Graphs.Single(g => g.Role == "decoder").Graph;
        return new PackageManifest
        {
            ModelType = config.ModelType,
            HfClass = architecture.HfClass,
            Graphs = new Dictionary<string, string>(graphFiles),
            State = decoder.States.Select(s => new PackageManifest.StateEntry(s.Input, s.Output, TensorDTypes.Name(s.DType),
                s.Shape.Select(d => d.IsFixed ? (object)d.Size!.Value : d.Symbol ?? "?").ToList(), s.Init, s.InPlaceAxis)).ToList(),
            EncoderFeeds = model.Feeds.Select(f => new PackageManifest.FeedEntry(f.EncoderOutput, f.DecoderInput)).ToList(),
            DType = options.Quantization?.Name ?? DTypeName(options.MatrixWeightType),
            Opset = options.Opset,
            Generation = ReadGeneration(config, source),
            Tokenizer = InputFiles.KindOf(Path.Combine(source, "tokenizer.json")) != InputFiles.Kind.Missing ? "tokenizer.json"
                : InputFiles.KindOf(Path.Combine(source, PackageManifest.WorldVocabularyFile)) != InputFiles.Kind.Missing ? PackageManifest.WorldVocabularyFile : null,
            Source = new PackageManifest.SourceEntry(source, checkpoint.ContentHash, "recur"),
            Config = config.Scalars(),
            Routing = decoder.Routing.Count == 0 ? null
                : decoder.Routing.Select(r => new PackageManifest.RoutingEntry(r.ExpertScopes, r.ExpertsPerToken)).ToList(),
        };
    }

    /// <summary>Token ids for generation: generation_config.json where present, else config.json; each an integer
    /// id, or for eos_token_id a list of them (both files allow that).</summary>
    private static PackageManifest.GenerationEntry ReadGeneration(ModelConfig config, string source)
    {
        string genPath = Path.Combine(source, "generation_config.json");
        using var doc = InputFiles.KindOf(genPath) == InputFiles.Kind.Missing ? null : InputFiles.ReadJson(genPath, "generation config");
        JsonFields? gen = doc is null ? null : new JsonFields(doc.RootElement, genPath);
        JsonFields configFields = new(config.Root, config.Path);
        IReadOnlyList<long> Ids(string key, bool list)
        {
            var from = gen is { } g && g.Has(key) ? g : configFields.Has(key) ? configFields : (JsonFields?)null;
            if (from is not { } f) return [];
            var v = f.Get(key);
            if (v.ValueKind == JsonValueKind.Array && list) return v.EnumerateArray().Select(x => f.AsInteger(x, key, 0, int.MaxValue)).ToList();
            return [f.AsInteger(v, key, 0, int.MaxValue)];
        }
        long? Id(string key) => Ids(key, list: false) is [long id] ? id : null;
        return new PackageManifest.GenerationEntry(Id("bos_token_id"), Ids("eos_token_id", list: true), Id("pad_token_id"), Id("decoder_start_token_id"));
    }

    private static void RefuseUnused(WeightPuller weights, string source)
    {
        var unused = weights.Unused();
        if (unused.Count == 0) return;
        string list = string.Join(", ", unused.Take(8).Select(e => $"{e.Name} [{string.Join(", ", e.Shape)}]"));
        throw new InvalidDataException(
            $"{source}: {unused.Count} checkpoint tensor(s) are not used by the graph, so the checkpoint does not match its config: {list}{(unused.Count > 8 ? ", ..." : "")}");
    }

    /// <summary>
    /// The output rules: never the checkpoint's folder, one inside it or one above it; an existing non-empty folder only
    /// with --force, and only when it is a Recur package that holds nothing but package files (so --force can never
    /// delete a user's file). Everything else is refused before any work, naming what is in the way.
    /// </summary>
    private static void CheckTarget(string target, string source, bool force)
    {
        // Compared as real paths, so a symbolic link cannot hide that -o and the checkpoint overlap.
        string t = InputFiles.RealPath(target).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar;
        string s = InputFiles.RealPath(source).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar;
        if (t == s) throw new OutputExistsException($"-o {target}: is the checkpoint folder; choose another output folder");
        if (t.StartsWith(s, StringComparison.Ordinal)) throw new OutputExistsException($"-o {target}: is inside the checkpoint folder {source}; choose a folder outside it");
        if (s.StartsWith(t, StringComparison.Ordinal)) throw new OutputExistsException($"-o {target}: holds the checkpoint folder {source}; choose a folder outside it");
        switch (InputFiles.KindOf(target))
        {
            case InputFiles.Kind.Missing: return;
            case InputFiles.Kind.Directory: break;
            default: throw new OutputExistsException($"-o {target}: exists and is not a folder; choose another output folder");
        }
        if (!Directory.EnumerateFileSystemEntries(target).Any()) return;
        if (!force)
            throw new OutputExistsException($"-o {target}: exists and is not empty; pass --force to replace the Recur package there, or choose another folder");
        var strangers = NonPackageEntries(target);
        if (strangers.Count > 0)
            throw new OutputExistsException($"-o {target}: --force replaces only a Recur package holding nothing but package files, and would delete: {string.Join(", ", strangers.Take(10))}{(strangers.Count > 10 ? $", ... ({strangers.Count} in all)" : "")}");
    }

    /// <summary>What in <paramref name="folder"/> is not a file of the Recur package described by its recur.json (everything, if it is none).</summary>
    private static List<string> NonPackageEntries(string folder)
    {
        var entries = Directory.EnumerateFileSystemEntries(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        var allowed = new HashSet<string>(CompanionFiles.Append(PackageManifest.FileName).Append("genai_config.json"), StringComparer.Ordinal);
        try
        {
            foreach (var graph in PackageManifest.Read(folder).Graphs.Values)
            {
                allowed.Add(graph);
                allowed.Add(graph + ".data");
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or UnauthorizedAccessException)
        {
            return entries!; // not a readable package manifest: nothing there is known to be a package file
        }
        return entries.Where(name => !allowed.Contains(name!) || InputFiles.KindOf(Path.Combine(folder, name!)) != InputFiles.Kind.Regular).ToList()!;
    }

    /// <summary>
    /// A convert killed before it finished leaves its hidden `.NAME.converting-PID-GUID` folder behind; the next
    /// convert into the same parent removes those whose process is gone (a running convert's folder is left alone).
    /// One killed between its two renames leaves the previous package as `.NAME.converting-PID-GUID.old` and no
    /// NAME: that package is put back, not removed.
    /// </summary>
    private static void RemoveAbandoned(string parent)
    {
        if (!Directory.Exists(parent)) return;
        foreach (string dir in Directory.EnumerateDirectories(parent, ".*.converting-*"))
        {
            var match = AbandonedName().Match(Path.GetFileName(dir));
            if (!match.Success || IsRunning(int.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture))) continue;
            string name = Path.Combine(parent, match.Groups[1].Value);
            if (match.Groups[3].Success && !Path.Exists(name))
            {
                try { Directory.Move(dir, name); continue; }
                catch (IOException) { }
                catch (UnauthorizedAccessException) { }
            }
            TryDelete(dir);
        }
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^\.(.+)\.converting-(\d{1,9})-[0-9a-f]{32}(\.old)?$")]
    private static partial System.Text.RegularExpressions.Regex AbandonedName();

    private static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId) return true;
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    /// <summary>Moves the finished package into place; a previous package is swapped out in one step where the system
    /// allows it (else by two renames, which the next convert repairs if cut between), never half-replaced.</summary>
    internal static void Commit(string temp, string target)
    {
        if (!Directory.Exists(target))
        {
            Directory.Move(temp, target);
            return;
        }
        if (AtomicExchange.TrySwap(temp, target))
        {
            TryDelete(temp); // it now holds the previous package; if this is cut short, the next convert removes it
            return;
        }
        string old = temp + ".old";
        Directory.Move(target, old);
        try { Directory.Move(temp, target); }
        catch
        {
            Directory.Move(old, target);
            throw;
        }
        TryDelete(old);
    }

    internal static void TryDelete(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    internal static string Invariant(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
