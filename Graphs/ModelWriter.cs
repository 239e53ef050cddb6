using Google.Protobuf;
using Recur.Graphs.Onnx;

namespace Recur.Graphs;

public enum ExternalDataMode { Auto, Always, Never }

public sealed record ModelWriteOptions
{
    public ExternalDataMode ExternalData { get; init; } = ExternalDataMode.Auto;
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();
    public string ProducerVersion { get; init; } = "0.1";
    /// <summary>Called after each initializer with the bytes of weights written so far by this call.</summary>
    public Action<long>? Progress { get; init; }
}

/// <summary>Writes a built graph as an ONNX model, with weights inline or in a `.data` file beside it.</summary>
public static class ModelWriter
{
    /// <summary>Protobuf refuses messages over 2 GiB; stay well under it once the graph itself is added.</summary>
    public const long InlineLimitBytes = 1L << 30;
    private const int ExternalAlignment = 4096; // page-aligned offsets let ONNX Runtime map weights instead of copying them

    /// <summary>Writes <paramref name="path"/> (and <c>path.data</c> when weights go external); returns the files written.</summary>
    public static IReadOnlyList<string> Write(GraphBuilder graph, string path, ModelWriteOptions? options = null)
    {
        options ??= new ModelWriteOptions();
        long total = graph.Initializers.Sum(i => i.ByteSize);
        bool external = options.ExternalData switch
        {
            ExternalDataMode.Always => true,
            ExternalDataMode.Never => total <= InlineLimitBytes ? false
                : throw new InvalidOperationException($"weights of {total} bytes exceed the protobuf limit; they must go to external data"),
            _ => total > InlineLimitBytes,
        };

        var model = new ModelProto
        {
            IrVersion = IrVersionFor(graph.Opset),
            ProducerName = "recur",
            ProducerVersion = options.ProducerVersion,
            Graph = graph.ToProto(),
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = graph.Opset });
        foreach (var domain in graph.Domains.Order(StringComparer.Ordinal))
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = domain, Version = 1 });
        foreach (var (key, value) in options.Metadata)
            model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });

        var written = new List<string> { path };
        string dataName = Path.GetFileName(path) + ".data";
        using (var data = external ? new FileStream(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, dataName), FileMode.Create, FileAccess.Write) : null)
        {
            long done = 0;
            foreach (var init in graph.Initializers)
            {
                var tensor = new TensorProto { Name = init.Name, DataType = (int)init.Type };
                tensor.Dims.AddRange(init.Shape);
                byte[] bytes = init.Materialize();
                if (bytes.LongLength != init.ByteSize)
                    throw new InvalidOperationException($"initializer '{init.Name}' produced {bytes.LongLength} bytes, expected {init.ByteSize}");
                if (data is not null && bytes.Length >= 64)
                {
                    long pad = (ExternalAlignment - data.Position % ExternalAlignment) % ExternalAlignment;
                    if (pad > 0) data.Write(new byte[pad]);
                    long offset = data.Position;
                    data.Write(bytes);
                    tensor.DataLocation = TensorProto.Types.DataLocation.External;
                    tensor.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = dataName });
                    tensor.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(System.Globalization.CultureInfo.InvariantCulture) });
                    tensor.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = bytes.LongLength.ToString(System.Globalization.CultureInfo.InvariantCulture) });
                }
                else tensor.RawData = ByteString.CopyFrom(bytes);
                model.Graph.Initializer.Add(tensor);
                done += bytes.LongLength;
                options.Progress?.Invoke(done);
            }
            if (data is not null) written.Add(data.Name);
        }
        using (var file = new FileStream(path, FileMode.Create, FileAccess.Write))
            model.WriteTo(file);
        return written;
    }

    /// <summary>The IR version that goes with an opset (ONNX's release table); ONNX Runtime 1.30 reads up to 13.</summary>
    public static long IrVersionFor(int opset) => opset switch
    {
        <= 18 => 8,
        <= 20 => 9,
        <= 22 => 10,
        23 => 11,
        <= 25 => 12,
        _ => 13,
    };
}
