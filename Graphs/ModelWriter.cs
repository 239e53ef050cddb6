using Google.Protobuf;
using Recur.Graphs.Ir;
using Recur.Graphs.Onnx;
using Recur.Graphs.Weights;

namespace Recur.Graphs;

public enum ExternalDataMode { Auto, Always, Never }

public sealed record ModelWriteOptions
{
    public ExternalDataMode ExternalData { get; init; } = ExternalDataMode.Auto;
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();
    public string ProducerVersion { get; init; } = "0.1";
    /// <summary>Called after each initializer with the bytes of weights written so far by this call.</summary>
    public Action<long>? Progress { get; init; }
    /// <summary>Write NaN and infinite weights as they are instead of refusing them.</summary>
    public bool AllowNonFinite { get; init; }
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

        // Streamed: the model's own fields, then the graph field written by hand. Its length is known before
        // any weight is produced (each tensor's header and byte size are), so each initializer is materialized,
        // written and dropped in turn; inline weights never sit in a ModelProto all at once. Protobuf readers
        // accept fields in any order and append repeated ones, so the graph's nodes come first and its
        // initializers after.
        string dataName = Path.GetFileName(path) + ".data";
        var tensors = new List<(Initializer Init, TensorProto Header, bool Inline, long Offset)>();
        long dataLength = 0;
        foreach (var init in graph.Initializers)
        {
            var header = new TensorProto { Name = init.Name, DataType = (int)init.Type };
            header.Dims.AddRange(init.Shape);
            bool inline = !external || init.ByteSize < 64;
            long offset = -1;
            if (!inline)
            {
                offset = (dataLength + ExternalAlignment - 1) / ExternalAlignment * ExternalAlignment;
                dataLength = offset + init.ByteSize;
                header.DataLocation = TensorProto.Types.DataLocation.External;
                header.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = dataName });
                header.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(System.Globalization.CultureInfo.InvariantCulture) });
                header.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = init.ByteSize.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            }
            tensors.Add((init, header, inline, offset));
        }
        long TensorSize((Initializer Init, TensorProto Header, bool Inline, long Offset) t) => t.Header.CalculateSize()
            + (t.Inline ? CodedOutputStream.ComputeTagSize(TensorProto.RawDataFieldNumber) + LengthDelimitedSize(t.Init.ByteSize) : 0);
        var graphHead = model.Graph;
        model.Graph = null;
        long graphLength = graphHead.CalculateSize()
            + tensors.Sum(t => CodedOutputStream.ComputeTagSize(GraphProto.InitializerFieldNumber) + LengthDelimitedSize(TensorSize(t)));
        if (graphLength > int.MaxValue)
            throw new InvalidOperationException($"the graph takes {graphLength} bytes inline, over protobuf's 2 GiB; its weights must go to external data");

        var written = new List<string> { path };
        using (var data = external ? new FileStream(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, dataName), FileMode.Create, FileAccess.Write) : null)
        using (var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            using var output = new CodedOutputStream(file, leaveOpen: true);
            model.WriteTo(output);
            output.WriteTag(ModelProto.GraphFieldNumber, WireFormat.WireType.LengthDelimited);
            output.WriteLength((int)graphLength);
            graphHead.WriteTo(output);
            long done = 0;
            foreach (var t in tensors)
            {
                output.WriteTag(GraphProto.InitializerFieldNumber, WireFormat.WireType.LengthDelimited);
                output.WriteLength((int)TensorSize(t));
                t.Header.WriteTo(output);
                byte[] bytes = t.Init.Materialize();
                if (bytes.LongLength != t.Init.ByteSize)
                    throw new InvalidOperationException($"initializer '{t.Init.Name}' produced {bytes.LongLength} bytes, expected {t.Init.ByteSize}");
                // NaN weights would convert "fine" and then give NaN logits; checked as each tensor is produced (the
                // graph's own constants, such as a -inf mask, are not data).
                if (!options.AllowNonFinite && !t.Init.IsGraphConstant && Package.NonFinite.FirstIndex((int)t.Init.Type, bytes) is var at and >= 0)
                    throw new InvalidDataException(
                        $"tensor '{t.Init.Name}' [{string.Join(", ", t.Init.Shape)}] holds {Package.NonFinite.Describe((int)t.Init.Type, bytes, at)} at element {at}; fix the checkpoint, or pass --allow-nonfinite to convert it as it is");
                if (t.Inline)
                {
                    output.WriteTag(TensorProto.RawDataFieldNumber, WireFormat.WireType.LengthDelimited);
                    output.WriteBytes(UnsafeByteOperations.UnsafeWrap(bytes)); // length, then the bytes, without a copy
                }
                else
                {
                    if (data!.Position < t.Offset) data.Write(new byte[t.Offset - data.Position]);
                    data.Write(bytes);
                }
                done += bytes.LongLength;
                options.Progress?.Invoke(done);
            }
            output.Flush();
            file.Flush(flushToDisk: true); // the package folder is renamed into place next; its files must be on disk first
            data?.Flush(flushToDisk: true);
            if (data is not null) written.Add(data.Name);
        }
        return written;
    }

    /// <summary>Bytes of a length-delimited field's length prefix and payload.</summary>
    private static long LengthDelimitedSize(long length) => CodedOutputStream.ComputeLengthSize(checked((int)length)) + length;

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
