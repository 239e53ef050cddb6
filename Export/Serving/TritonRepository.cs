using System.Text.Json;
using Google.Protobuf;
using System.Text.RegularExpressions;
using Recur.Graphs.Ir;
using Recur.Graphs.Onnx;
using Recur.Graphs.Weights;
using Recur.Package;

namespace Recur.Export.Serving;

public enum TritonStrategy { Oldest, Direct }

public sealed record TritonExportOptions
{
    public required string PackageDir { get; init; }
    public required string OutputDir { get; init; }
    /// <summary>The model's name in the repository (default: the package folder's name).</summary>
    public string? Name { get; init; }
    /// <summary>Default: 8 for fixed-size state, 1 (the only value allowed) for growing caches.</summary>
    public int? MaxBatchSize { get; init; }
    public int Instances { get; init; } = 1;
    public TritonStrategy Strategy { get; init; } = TritonStrategy.Oldest;
    /// <summary>Instances on GPUs (KIND_GPU) instead of CPUs.</summary>
    public bool Gpu { get; init; }
    /// <summary>Sequences each instance holds at once (the oldest strategy's max_candidate_sequences).</summary>
    public int MaxSequences { get; init; } = 64;
    /// <summary>Replace an existing repository written by Recur.</summary>
    public bool Force { get; init; }
}

/// <summary>A model written into the repository and the state Triton keeps for each of its sequences.</summary>
public sealed record TritonModel(string Name, int MaxBatchSize, bool Sequence, int StateTensors, long FixedStateBytes, long StateBytesPerToken);

public sealed record TritonExportResult(string OutputDir, IReadOnlyList<TritonModel> Models);

/// <summary>
/// A Recur package as a Triton Inference Server model repository (ONNX Runtime backend, sequence batcher
/// with implicit state): recur.json's state list becomes config.pbtxt's <c>sequence_batching.state</c>,
/// so Triton feeds each present.* back as the next request's past_key_values.* and a client sends
/// input_ids only. Growing caches get a served graph (<see cref="CacheSlot"/>); an encoder-decoder
/// package gets a second, stateless model for its encoder. Written into a temporary folder beside the
/// target and renamed into place.
/// </summary>
public static partial class TritonRepository
{
    /// <summary>Marks a repository as written by Recur: --force replaces nothing else.</summary>
    public const string MarkerFile = "recur-triton.json";
    public const string ModelFile = "model.onnx";
    /// <summary>Triton reads initial state data files from this folder of the model directory.</summary>
    public const string InitialStateFolder = "initial_state";
    /// <summary>Triton's default (1 s) would end a conversation while its user reads the answer.</summary>
    private const long IdleMicroseconds = 600_000_000;
    private const int EncoderMaxBatchSize = 8;
    /// <summary>A request waits at most 0.1 ms for requests of other sequences to share its run: batching, not latency.</summary>
    private const long QueueDelayMicroseconds = 100;

    public static TritonExportResult Write(TritonExportOptions options)
    {
        string package = Path.GetFullPath(options.PackageDir);
        string target = Path.GetFullPath(options.OutputDir);
        var manifest = ReadManifest(package);
        string name = options.Name ?? Path.GetFileName(package.TrimEnd('/'));
        if (!ModelName().IsMatch(name))
            throw new ArgumentException($"--name '{name}': a model name takes letters, digits, '_', '-' and '.', starting with a letter or digit");
        if (options.Instances < 1) throw new ArgumentException($"--instances {options.Instances}: must be at least 1");
        if (options.MaxSequences < 1) throw new ArgumentException($"--max-sequences {options.MaxSequences}: must be at least 1");
        var states = manifest.State.Select(s => ServedState.From(s, package)).ToList();
        var growing = states.FirstOrDefault(s => s.GrowingAxis is not null);
        int maxBatch = options.MaxBatchSize ?? (growing is null ? 8 : 1);
        if (maxBatch < 1) throw new ArgumentException($"--max-batch-size {maxBatch}: must be at least 1");
        if (growing is not null && maxBatch > 1)
            throw new ArgumentException(
                $"--max-batch-size {maxBatch}: {manifest.ModelType}'s cache grows with each sequence ({growing.Input} is [{string.Join(", ", growing.Shape)}]) and Triton batches only requests whose state has the same shape; use 1 (sequences still run side by side, one per run)");
        CheckTarget(target, package, options.Force);

        string temp = Path.Combine(Path.GetDirectoryName(target)!, $".{Path.GetFileName(target)}.exporting-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            var models = new List<TritonModel>();
            if (manifest.Graphs.TryGetValue("encoder", out var encoderFile))
                models.Add(WriteEncoder(package, encoderFile, temp, name + "_encoder", options));
            models.Add(WriteDecoder(package, manifest, states, temp, name, maxBatch, options));
            File.WriteAllText(Path.Combine(temp, MarkerFile), JsonSerializer.Serialize(new
            {
                format = "recur-triton/1",
                package,
                model_type = manifest.ModelType,
                models = models.Select(m => m.Name).ToList(),
            }, PackageManifest.JsonOptions));
            Converter.Commit(temp, target);
            return new TritonExportResult(target, models);
        }
        catch
        {
            Converter.TryDelete(temp);
            throw;
        }
    }

    private static TritonModel WriteDecoder(string package, PackageManifest manifest, IReadOnlyList<ServedState> states, string repository,
        string name, int maxBatch, TritonExportOptions options)
    {
        string dir = Path.Combine(repository, name);
        string file = manifest.Graphs["decoder"];
        var model = ReadModel(package, file);
        var growing = states.Where(s => s.GrowingAxis is not null).Select(s => (s.Input, s.Output, s.GrowingAxis!.Value)).ToList();
        CopyExternalData(package, model, Path.Combine(dir, "1"));
        if (growing.Count > 0)
        {
            CacheSlot.Wrap(model, growing);
            using var stream = File.Create(Path.Combine(dir, "1", ModelFile));
            model.WriteTo(stream);
        }
        else File.Copy(Path.Combine(package, file), Path.Combine(dir, "1", ModelFile));

        var stateNames = states.SelectMany(s => new[] { s.Input, s.Output }).ToHashSet(StringComparer.Ordinal);
        var config = Header(name, maxBatch, model, stateNames);
        config.Message("sequence_batching", sb =>
        {
            sb.Number("max_sequence_idle_microseconds", IdleMicroseconds);
            if (options.Strategy == TritonStrategy.Oldest)
                sb.Message("oldest", o => o.Number("max_candidate_sequences", options.MaxSequences).Number("max_queue_delay_microseconds", QueueDelayMicroseconds));
            else
                sb.Message("direct", d => d.Number("max_queue_delay_microseconds", QueueDelayMicroseconds));
            foreach (var s in states)
            {
                sb.Message("state", st =>
                {
                    st.String("input_name", s.Input).String("output_name", s.Output).Enum("data_type", TritonType(s.DType))
                        .Numbers("dims", s.ConfigDims);
                    st.Message("initial_state", init =>
                    {
                        init.Enum("data_type", TritonType(s.DType)).Numbers("dims", s.InitialDims);
                        if (s.Init == 0) init.Bool("zero_data", true);
                        else
                        {
                            Directory.CreateDirectory(Path.Combine(dir, InitialStateFolder));
                            File.WriteAllBytes(Path.Combine(dir, InitialStateFolder, s.Input), s.InitialBytes());
                            init.String("data_file", s.Input);
                        }
                        init.String("name", s.Input);
                    });
                });
            }
        });
        Instances(config, options);
        File.WriteAllText(Path.Combine(dir, "config.pbtxt"), config.ToString());
        return new TritonModel(name, maxBatch, true, states.Count,
            states.Where(s => s.GrowingAxis is null).Sum(s => s.InitialDims.Aggregate(1L, (a, d) => a * d) * s.ElementSize),
            states.Where(s => s.GrowingAxis is not null).Sum(s => s.InitialDims.Aggregate(1L, (a, d) => a * d) * s.ElementSize));
    }

    /// <summary>The encoder of an encoder-decoder package: stateless, run once per sequence; its outputs are the decoder's inputs.</summary>
    private static TritonModel WriteEncoder(string package, string file, string repository, string name, TritonExportOptions options)
    {
        string dir = Path.Combine(repository, name);
        var model = ReadModel(package, file);
        CopyExternalData(package, model, Path.Combine(dir, "1"));
        File.Copy(Path.Combine(package, file), Path.Combine(dir, "1", ModelFile));
        var config = Header(name, EncoderMaxBatchSize, model, new HashSet<string>());
        config.Message("dynamic_batching", _ => { });
        Instances(config, options);
        File.WriteAllText(Path.Combine(dir, "config.pbtxt"), config.ToString());
        return new TritonModel(name, EncoderMaxBatchSize, false, 0, 0, 0);
    }

    /// <summary>name, backend, batch size, and the graph's inputs and outputs other than state (batch dimension left out).</summary>
    private static PbtxtWriter Header(string name, int maxBatch, ModelProto model, IReadOnlySet<string> state)
    {
        var config = new PbtxtWriter().String("name", name).String("backend", "onnxruntime").Number("max_batch_size", maxBatch);
        var initializers = model.Graph.Initializer.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        // Inputs backed by an initializer (logits_to_keep) keep their default: Triton's ONNX Runtime backend
        // does not count them, and an optional input is refused for a batching model.
        foreach (var input in model.Graph.Input.Where(i => !state.Contains(i.Name) && !initializers.Contains(i.Name)))
            config.Message("input", io => Tensor(io, input));
        foreach (var output in model.Graph.Output.Where(o => !state.Contains(o.Name)))
            config.Message("output", io => Tensor(io, output));
        return config;
    }

    private static void Tensor(PbtxtWriter io, ValueInfoProto info)
    {
        var dims = info.Type.TensorType.Shape.Dim.Skip(1)
            .Select(d => d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue ? d.DimValue : -1L).ToList();
        io.String("name", info.Name).Enum("data_type", TritonType((TensorDType)info.Type.TensorType.ElemType)).Numbers("dims", dims);
    }

    private static void Instances(PbtxtWriter config, TritonExportOptions options) =>
        config.Message("instance_group", g => g.Number("count", options.Instances).Enum("kind", options.Gpu ? "KIND_GPU" : "KIND_CPU"));

    public static string TritonType(TensorDType type) => type switch
    {
        TensorDType.Float32 => "TYPE_FP32",
        TensorDType.Float16 => "TYPE_FP16",
        TensorDType.BFloat16 => "TYPE_BF16",
        TensorDType.Float64 => "TYPE_FP64",
        TensorDType.Int64 => "TYPE_INT64",
        TensorDType.Int32 => "TYPE_INT32",
        TensorDType.Int8 => "TYPE_INT8",
        TensorDType.UInt8 => "TYPE_UINT8",
        TensorDType.Bool => "TYPE_BOOL",
        _ => throw new NotSupportedException($"tensor type {type} has no Triton data type"),
    };

    private static PackageManifest ReadManifest(string package) => PackageManifest.Read(package);

    private static ModelProto ReadModel(string package, string file)
    {
        string path = Path.Combine(package, file);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: the graph recur.json names is missing", path);
        using var stream = File.OpenRead(path);
        try { return ModelProto.Parser.ParseFrom(stream); }
        catch (Google.Protobuf.InvalidProtocolBufferException e) { throw new InvalidDataException($"{path}: not an ONNX model ({e.Message})"); }
    }

    /// <summary>Weights in external files go beside the model under their own names, which the model refers to.</summary>
    private static void CopyExternalData(string package, ModelProto model, string versionDir)
    {
        Directory.CreateDirectory(versionDir);
        var locations = model.Graph.Initializer.Where(t => t.DataLocation == TensorProto.Types.DataLocation.External)
            .SelectMany(t => t.ExternalData.Where(e => e.Key == "location").Select(e => e.Value)).Distinct(StringComparer.Ordinal);
        foreach (var location in locations)
        {
            if (location != Path.GetFileName(location))
                throw new InvalidDataException($"{package}: external data '{location}' is not a file beside the model");
            string from = Path.Combine(package, location);
            if (!File.Exists(from)) throw new FileNotFoundException($"{from}: the model's external data is missing", from);
            File.Copy(from, Path.Combine(versionDir, location));
        }
    }

    private static void CheckTarget(string target, string package, bool force)
    {
        string t = target.TrimEnd('/'), p = package.TrimEnd('/');
        if (t == p || p.StartsWith(t + "/", StringComparison.Ordinal))
            throw new ArgumentException($"{target}: the repository cannot be the package folder or contain it");
        if (File.Exists(target)) throw new OutputExistsException($"{target}: exists and is a file; choose another output folder");
        if (!Directory.Exists(target) || !Directory.EnumerateFileSystemEntries(target).Any()) return;
        if (!File.Exists(Path.Combine(target, MarkerFile)))
            throw new OutputExistsException($"{target}: exists and is not a Triton repository written by Recur (no {MarkerFile}); choose another folder");
        if (!force)
            throw new OutputExistsException($"{target}: holds a Triton repository; pass --force to replace it");
    }

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    private static partial Regex ModelName();

    /// <summary>A state tensor as Triton keeps it: its dims without the batch, and where it grows.</summary>
    private sealed record ServedState(string Input, string Output, TensorDType DType, IReadOnlyList<object> Shape, double Init, int? GrowingAxis)
    {
        public int ElementSize => TensorDTypes.SizeOf(DType);
        /// <summary>config.pbtxt's dims: the batch left out, -1 where the state grows.</summary>
        public IReadOnlyList<long> ConfigDims => Shape.Skip(1).Select(d => d is long n ? n : -1L).ToList();
        /// <summary>The first request's shape as Triton makes it: a growing dimension starts at 1 (the unused slot).</summary>
        public IReadOnlyList<long> InitialDims => Shape.Skip(1).Select(d => d is long n ? n : 1L).ToList();

        public byte[] InitialBytes()
        {
            long count = InitialDims.Aggregate(1L, (a, d) => a * d);
            if (TensorBytes.IsFloat(DType)) return TensorBytes.FromFloat32(Enumerable.Repeat((float)Init, checked((int)count)).ToArray(), DType);
            var bytes = new byte[count * ElementSize];
            for (long i = 0; i < count; i++)
            {
                switch (DType)
                {
                    case TensorDType.Int64: BitConverter.TryWriteBytes(bytes.AsSpan((int)(i * 8)), (long)Init); break;
                    case TensorDType.Int32: BitConverter.TryWriteBytes(bytes.AsSpan((int)(i * 4)), (int)Init); break;
                    default: throw new NotSupportedException($"state {Input}: initial value {Init} for {DType} is not supported");
                }
            }
            return bytes;
        }

        public static ServedState From(PackageManifest.StateEntry entry, string package)
        {
            var shape = entry.Shape.Select(d => d switch
            {
                JsonElement { ValueKind: JsonValueKind.Number } n => (object)n.GetInt64(),
                JsonElement { ValueKind: JsonValueKind.String } s => s.GetString()!,
                long n => n,
                int n => (long)n,
                string s => s,
                _ => throw new InvalidDataException($"{package}: state {entry.Input} has a malformed dimension '{d}'"),
            }).ToList();
            if (shape.Count == 0 || !Equals(shape[0], "batch"))
                throw new NotSupportedException($"{package}: state {entry.Input} is [{string.Join(", ", shape)}]; Triton's implicit state needs the batch dimension first");
            var symbols = shape.Select((d, i) => (d, i)).Skip(1).Where(p => p.d is string).ToList();
            if (symbols.Count > 1)
                throw new NotSupportedException($"{package}: state {entry.Input} grows along {symbols.Count} dimensions; one is supported");
            // The names the converter writes (and older packages' fp32/fp16/bf16), read back through the same table.
            if (!TensorDTypes.TryParse(entry.DType, out var dtype))
                throw new InvalidDataException($"{package}: state {entry.Input} has dtype '{entry.DType}', which recur does not write");
            return new ServedState(entry.Input, entry.Output, dtype, shape, entry.Init, symbols.Count == 1 ? symbols[0].i : null);
        }
    }
}
