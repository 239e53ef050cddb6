using Recur.Graphs.Weights;

namespace Recur.Export.Checkpoints;

/// <summary>
/// A way Hugging Face stores weights in a folder: one file, or shards listed by an index with the
/// standard weight_map schema. A new format plugs in by adding an instance with an opener.
/// </summary>
internal sealed record CheckpointFormat(
    string Description,
    string SingleFile,
    string IndexFile,
    string[] OtherPatterns,
    Func<string, ITensorSource>? OpenFile)
{
    public static readonly CheckpointFormat Safetensors = new(
        "safetensors", "model.safetensors", "model.safetensors.index.json", [], SafetensorsFile.Open);

    /// <summary>torch.save's zip format, read by a restricted unpickler that loads tensors and nothing else.</summary>
    public static readonly CheckpointFormat PyTorchPickle = new(
        "PyTorch pickle", "pytorch_model.bin", "pytorch_model.bin.index.json", ["*.pth", "*.pt"], PyTorchFile.Open);

    /// <summary>In order of preference, as transformers prefers safetensors when both are present.</summary>
    public static IReadOnlyList<CheckpointFormat> All { get; } = [Safetensors, PyTorchPickle];

    public bool IsSupported => OpenFile is not null;
}
