using Google.Protobuf;
using Recur.Graphs.Onnx;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Recur.Runtime.Ort;
using DataType = Recur.Graphs.Onnx.TensorProto.Types.DataType;

namespace Recur.Tests.Ort;

/// <summary>Small hand-built ONNX models (IR 8, opset 17) for the runtime binding tests.</summary>
internal static class OnnxModels
{
    internal const long IrVersion = 8;
    internal const long Opset = 17;

    /// <summary>A tensor input/output; each dim is a long (fixed), a string (named) or null (unknown).</summary>
    internal static ValueInfoProto Tensor(string name, DataType type, params object?[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var dim in dims)
        {
            var d = new TensorShapeProto.Types.Dimension();
            switch (dim)
            {
                case string param:
                    d.DimParam = param;
                    break;
                case null:
                    break;
                default:
                    d.DimValue = Convert.ToInt64(dim, System.Globalization.CultureInfo.InvariantCulture);
                    break;
            }
            shape.Dim.Add(d);
        }
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }

    internal static NodeProto Node(string opType, string[] inputs, string[] outputs, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = opType, Name = $"{opType}_{string.Join("_", outputs)}" };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        node.Attribute.AddRange(attributes);
        return node;
    }

    internal static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    internal static AttributeProto Graph(string name, GraphProto value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Graph, G = value };

    internal static TensorProto FloatTensor(string name, float[] values, params long[] dims)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)DataType.Float };
        tensor.Dims.AddRange(dims);
        tensor.FloatData.AddRange(values);
        return tensor;
    }

    internal static GraphProto Graph(
        string name, IEnumerable<NodeProto> nodes, IEnumerable<ValueInfoProto> inputs, IEnumerable<ValueInfoProto> outputs,
        IEnumerable<TensorProto>? initializers = null)
    {
        var graph = new GraphProto { Name = name };
        graph.Node.AddRange(nodes);
        graph.Input.AddRange(inputs);
        graph.Output.AddRange(outputs);
        if (initializers is not null)
        {
            graph.Initializer.AddRange(initializers);
        }
        return graph;
    }

    internal static ModelProto Model(GraphProto graph, params (string Key, string Value)[] metadata)
    {
        var model = new ModelProto { IrVersion = IrVersion, ProducerName = "recur-tests", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        foreach (var (key, value) in metadata)
        {
            model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        }
        return model;
    }

    internal static InferenceSession Session(ModelProto model, SessionConfig? config = null) =>
        InferenceSession.FromBytes(model.ToByteArray(), config);

    /// <summary>One node mapping input "x" to output "y".</summary>
    internal static ModelProto Unary(
        string opType, DataType inputType, DataType outputType, object?[] dims, params AttributeProto[] attributes) =>
        Model(Graph(
            opType.ToLowerInvariant(),
            [Node(opType, ["x"], ["y"], attributes)],
            [Tensor("x", inputType, dims)],
            [Tensor("y", outputType, dims)]));

    /// <summary>y = x + x over float tensors of the given dims.</summary>
    internal static ModelProto Doubler(params object?[] dims) =>
        Model(Graph(
            "doubler",
            [Node("Add", ["x", "x"], ["y"])],
            [Tensor("x", DataType.Float, dims)],
            [Tensor("y", DataType.Float, dims)]));
}
