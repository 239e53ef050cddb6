using System.Globalization;
using System.Text.Json;
using Recur.Export.Checkpoints;
using Recur.Export.Packages;
using Recur.Package;
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
    public ExternalDataMode ExternalData { get; init; } = ExternalDataMode.Auto;
    /// <summary>Replace an existing folder that is not a Recur package.</summary>
    public bool Force { get; init; }
    /// <summary>Attention caches of this many positions written in place (see <see cref="ExportOptions.KvCacheLength"/>).</summary>
    public int? KvCacheLength { get; init; }
}

/// <summary>The output folder is taken by something that is not a package.</summary>
public sealed class OutputExistsException(string message) : IOException(message);

public sealed record ConvertResult(string OutputDir, PackageManifest Manifest, IReadOnlyList<string> Files, long ParameterCount, long WeightBytes);

/// <summary>
/// checkpoint folder -> architecture -> graphs -> package, written into a temporary folder beside
/// the target and renamed into place only after it has been verified.
/// </summary>
public static class Converter
{
    /// <summary>Files copied from the checkpoint so a package carries its tokenizer and generation defaults.</summary>
    private static readonly string[] CompanionFiles =
    [
        "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
        "tokenizer.model", "spiece.model", "vocab.json", "merges.txt", "added_tokens.json",
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
        string target = Path.GetFullPath(options.OutputDir);
        CheckTarget(target, source, options.Force);

        var config = LoadConfig(source);
        var architecture = Registry.Find(config.ModelType, config.Path);
        using var checkpoint = Checkpoint.Open(source);
        var weights = new WeightPuller(Renamed(checkpoint, config, source), source);
        progress?.Invoke($"building {architecture.HfClass} graph from {source}");
        var model = architecture.Build(config, weights, new ExportOptions
        {
            Opset = options.Opset, MatrixWeightType = options.MatrixWeightType, Quantization = options.Quantization,
            KvCacheLength = options.KvCacheLength,
        });
        if (options.KvCacheLength is not null && !model.Graphs.Any(g => g.Graph.States.Any(s => s.InPlaceAxis is not null)))
            throw new NotSupportedException($"--kv-cache-length: {config.ModelType} packages have no attention cache that takes it (gemma, gemma2 do)");
        RefuseUnused(weights, source);

        string temp = Path.Combine(Path.GetDirectoryName(target)!, $".{Path.GetFileName(target)}.converting-{Environment.ProcessId}-{Guid.NewGuid():N}");
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
                        Metadata = meta,
                        Progress = bytesWritten is null ? null : done => bytesWritten(offset + done, total),
                    }));
                before += graph.Graph.Initializers.Sum(i => i.ByteSize);
            }
            File.WriteAllText(Path.Combine(temp, PackageManifest.FileName), manifestJson);
            foreach (var (name, text) in model.ExtraFiles) File.WriteAllText(Path.Combine(temp, name), text);
            if (!model.ExtraFiles.ContainsKey(GenAiConfig.FileName)
                && GenAiConfig.ForRecurrentState(manifest, config.Positive("vocab_size")) is { } genai)
                File.WriteAllText(Path.Combine(temp, GenAiConfig.FileName), genai);
            foreach (var name in CompanionFiles)
            {
                string from = Path.Combine(source, name);
                if (File.Exists(from)) File.Copy(from, Path.Combine(temp, name));
            }
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

    /// <summary>config.json; an original RWKV-4 .pth has none, so the message offers one derived from its shapes.</summary>
    private static ModelConfig LoadConfig(string source)
    {
        string path = Path.Combine(source, "config.json");
        if (!File.Exists(path) && Directory.EnumerateFiles(source, "*.pth").Any())
        {
            string? suggestion = null;
            try
            {
                using var checkpoint = Checkpoint.Open(source);
                if (RwkvOriginalNames.Matches(checkpoint)) suggestion = RwkvOriginalNames.SuggestConfig(checkpoint);
            }
            catch (Exception e) when (e is InvalidDataException or NotSupportedException or IOException)
            {
                // The checkpoint's own problem is reported once a config.json is there; the missing config comes first.
            }
            if (suggestion is not null)
                throw new FileNotFoundException(
                    $"{path}: not found; an original RWKV-4 checkpoint needs a config.json beside it (hyper-parameters such as rescale_every and the token ids are not in the weights). From its shapes and RwkvConfig's defaults: {suggestion}",
                    path);
        }
        return ModelConfig.Load(path);
    }

    /// <summary>The checkpoint under the names the architecture pulls: BlinkDL's original RWKV-4 names are mapped to Hugging Face's.</summary>
    private static ITensorSource Renamed(Checkpoint checkpoint, ModelConfig config, string source)
    {
        if (!RwkvOriginalNames.Matches(checkpoint)) return checkpoint;
        if (config.ModelType != "rwkv")
            throw new InvalidDataException($"{source}: the checkpoint has original RWKV-4 tensor names (emb.weight, blocks.0.att.key.weight), but config.json says model_type '{config.ModelType}'");
        return new RwkvOriginalNames(checkpoint);
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
            State = decoder.States.Select(s => new PackageManifest.StateEntry(s.Input, s.Output, DTypeName(s.DType),
                s.Shape.Select(d => d.IsFixed ? (object)d.Size!.Value : d.Symbol ?? "?").ToList(), s.Init, s.InPlaceAxis)).ToList(),
            EncoderFeeds = model.Feeds.Select(f => new PackageManifest.FeedEntry(f.EncoderOutput, f.DecoderInput)).ToList(),
            DType = options.Quantization?.Name ?? DTypeName(options.MatrixWeightType),
            Opset = options.Opset,
            Generation = ReadGeneration(config, source),
            Tokenizer = File.Exists(Path.Combine(source, "tokenizer.json")) ? "tokenizer.json" : null,
            Source = new PackageManifest.SourceEntry(source, checkpoint.ContentHash, "recur"),
            Config = config.Scalars(),
            Routing = decoder.Routing.Count == 0 ? null
                : decoder.Routing.Select(r => new PackageManifest.RoutingEntry(r.ExpertScopes, r.ExpertsPerToken)).ToList(),
        };
    }

    /// <summary>Token ids for generation: generation_config.json where present, else config.json.</summary>
    private static PackageManifest.GenerationEntry ReadGeneration(ModelConfig config, string source)
    {
        JsonElement? gen = null;
        string genPath = Path.Combine(source, "generation_config.json");
        if (File.Exists(genPath))
        {
            try { gen = JsonDocument.Parse(File.ReadAllText(genPath)).RootElement.Clone(); }
            catch (JsonException e) { throw new InvalidDataException($"{genPath}: not valid JSON ({e.Message})"); }
        }
        long? Id(string key)
        {
            if (gen is { } g && g.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number) return v.GetInt64();
            return config.Has(key) && config.OptionalInt(key) is int i ? i : null;
        }
        var eos = new List<long>();
        JsonElement? eosElement = gen is { } ge && ge.TryGetProperty("eos_token_id", out var e1) ? e1 : null;
        if (eosElement is { ValueKind: JsonValueKind.Array } arr) eos.AddRange(arr.EnumerateArray().Select(x => x.GetInt64()));
        else if (Id("eos_token_id") is long single) eos.Add(single);
        return new PackageManifest.GenerationEntry(Id("bos_token_id"), eos, Id("pad_token_id"), Id("decoder_start_token_id"));
    }

    private static void RefuseUnused(WeightPuller weights, string source)
    {
        var unused = weights.Unused();
        if (unused.Count == 0) return;
        string list = string.Join(", ", unused.Take(8).Select(e => $"{e.Name} [{string.Join(", ", e.Shape)}]"));
        throw new InvalidDataException(
            $"{source}: {unused.Count} checkpoint tensor(s) are not used by the graph, so the checkpoint does not match its config: {list}{(unused.Count > 8 ? ", ..." : "")}");
    }

    private static void CheckTarget(string target, string source, bool force)
    {
        if (string.Equals(target.TrimEnd('/'), source.TrimEnd('/'), StringComparison.Ordinal))
            throw new ArgumentException($"{target}: the output folder cannot be the checkpoint folder");
        if (File.Exists(target)) throw new OutputExistsException($"{target}: exists and is a file; choose another output folder");
        if (Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any()
            && !File.Exists(Path.Combine(target, PackageManifest.FileName)) && !force)
            throw new OutputExistsException($"{target}: exists and is not a Recur package; pass --force to replace it or choose another folder");
    }

    /// <summary>Moves the finished package into place; a previous package is swapped out, never half-replaced.</summary>
    private static void Commit(string temp, string target)
    {
        if (!Directory.Exists(target))
        {
            Directory.Move(temp, target);
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

    private static void TryDelete(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    internal static string Invariant(double v) => v.ToString("R", CultureInfo.InvariantCulture);
}
