using System.Text.Json;
using Microsoft.ML.OnnxRuntime.Tensors;
using Recur.Package.Files;
using Recur.Runtime.Ort;

namespace Recur.Runtime.Packages;

/// <summary>
/// A state tensor of the package's contract, read from recur.json. <see cref="InPlaceAxis"/> set: a buffer of fixed
/// capacity along that axis that the graph updates in place, so its output is bound to the input's own buffer.
/// </summary>
public sealed record StateTensor(string Input, string Output, TensorElementType DType, IReadOnlyList<object> Shape, double Init, int? InPlaceAxis = null)
{
    /// <summary>Positions an in-place buffer holds (null for other states).</summary>
    public long? Capacity => InPlaceAxis is int axis && Shape[axis] is long n ? n : null;

    /// <summary>The initial shape: "batch" is the batch size, "past_sequence" (and any other symbol) 0.</summary>
    public long[] InitialShape(int batch) => Shape.Select(d => d switch
    {
        long n => n,
        "batch" => batch,
        _ => 0L,
    }).ToArray();

    /// <summary>Whether the state keeps its size from call to call (recurrent state, bounded windows).</summary>
    public bool IsFixedSize => Shape.All(d => d is long || Equals(d, "batch"));
}

public sealed record GenerationDefaults(long? BosTokenId, IReadOnlyList<long> EosTokenIds, long? PadTokenId, long? DecoderStartTokenId);

/// <summary>
/// A converted model on disk, described by its recur.json (<see cref="PackageManifest"/>, the one reader of that file):
/// which graphs, which state tensors and how they start, which encoder outputs feed the decoder. The runtime needs
/// nothing else.
/// </summary>
public sealed class ModelPackage
{
    private ModelPackage(string directory, PackageManifest manifest, string json)
    {
        Directory = directory;
        Manifest = manifest;
        ManifestJson = json;
        // ONNX and ONNX Runtime number element types alike, so the package's type converts by value.
        State = manifest.State.Select(s => new StateTensor(s.Input, s.Output,
            TensorDTypes.TryParse(s.DType, out var t) ? (TensorElementType)(int)t : throw new InvalidDataException($"state dtype '{s.DType}'"),
            s.Shape, s.Init, s.InPlaceAxis)).ToList();
        EncoderFeeds = manifest.EncoderFeeds.Select(f => (f.EncoderOutput, f.DecoderInput)).ToList();
        var g = manifest.Generation;
        Generation = new GenerationDefaults(g.BosTokenId, g.EosTokenIds, g.PadTokenId, g.DecoderStartTokenId);
    }

    public string Directory { get; }
    public PackageManifest Manifest { get; }
    public string ModelType => Manifest.ModelType;
    public IReadOnlyDictionary<string, string> Graphs => Manifest.Graphs;
    public IReadOnlyList<StateTensor> State { get; }
    // Made once: the decode loop reads them on every step.
    public IReadOnlyList<(string EncoderOutput, string DecoderInput)> EncoderFeeds { get; }
    public GenerationDefaults Generation { get; }
    public string DType => Manifest.DType;
    public string? Tokenizer => Manifest.Tokenizer;
    public string ManifestJson { get; }

    public bool IsEncoderDecoder => Graphs.ContainsKey("encoder");
    public string GraphPath(string role) => Path.Combine(Directory, Graphs[role]);

    /// <summary>Opens a package folder (or the folder of a model.onnx inside one).</summary>
    public static ModelPackage Open(string path)
    {
        string dir = File.Exists(path) ? Path.GetDirectoryName(Path.GetFullPath(path))! : Path.GetFullPath(path);
        if (!System.IO.Directory.Exists(dir)) throw new DirectoryNotFoundException($"{path}: no such package folder");
        if (InputFiles.KindOf(Path.Combine(dir, PackageManifest.FileName)) == InputFiles.Kind.Missing)
            throw new FileNotFoundException($"{path}: not a Recur package (no {PackageManifest.FileName}); create one with `recur convert CHECKPOINT -o {path}`",
                Path.Combine(dir, PackageManifest.FileName));
        var manifest = PackageManifest.Read(dir);
        string manifestPath = Path.Combine(dir, PackageManifest.FileName);
        foreach (var (role, file) in manifest.Graphs)
        {
            InputFiles.RequireRegular(Path.Combine(dir, file), $"{manifestPath}: {role} graph");
            // ONNX Runtime would block on a pipe in place of the weights as it would on the graph.
            string data = Path.Combine(dir, file + ".data");
            if (InputFiles.KindOf(data) != InputFiles.Kind.Missing) InputFiles.RequireRegular(data, $"{manifestPath}: {role} graph's external data");
        }
        return new ModelPackage(dir, manifest, File.ReadAllText(manifestPath));
    }

    /// <summary>Checks a manifest's text (recur.json, or the copy in a model's metadata) as <see cref="Open"/> would, without its files.</summary>
    public static void Check(ReadOnlyMemory<byte> json, string source) => PackageManifest.Parse(json, source);
}
