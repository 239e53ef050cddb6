using Recur.Graphs;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Recur.Runtime.Ort;

namespace Recur.Tests.Support;

/// <summary>A tensor as a test feeds it to a graph or reads it back: a flat array in row-major order and its shape.</summary>
public sealed record HostTensor(Array Data, long[] Shape)
{
    public static HostTensor Of(float[] data, params long[] shape) => new(data, shape);
    public static HostTensor Of(long[] data, params long[] shape) => new(data, shape);
    public static HostTensor Of(bool[] data, params long[] shape) => new(data, shape);

    public float[] Floats => Data as float[] ?? throw new InvalidCastException($"tensor holds {Data.GetType().Name}, not float[]");
    public long[] Longs => Data as long[] ?? throw new InvalidCastException($"tensor holds {Data.GetType().Name}, not long[]");

    internal OrtValue ToOrtValue() => Data switch
    {
        float[] f => OrtValue.FromArray(f, Shape),
        long[] l => OrtValue.FromArray(l, Shape),
        bool[] b => OrtValue.FromArray(b, Shape),
        _ => throw new NotSupportedException($"cannot feed {Data.GetType().Name}"),
    };

    internal static HostTensor FromOrtValue(OrtValue value) => value.ElementType switch
    {
        TensorElementType.Float => new(value.AsSpan<float>().ToArray(), value.Shape),
        TensorElementType.Int64 => new(value.AsSpan<long>().ToArray(), value.Shape),
        TensorElementType.Bool => new(value.AsSpan<bool>().ToArray(), value.Shape),
        var t => throw new NotSupportedException($"cannot read a {t} output"),
    };
}

/// <summary>
/// A hand-built graph written out by <see cref="ModelWriter"/> and loaded in ONNX Runtime, so a test can run
/// the very bytes a conversion would produce and compare them with a reference loop.
/// </summary>
public sealed class GraphRun : IDisposable
{
    private readonly InferenceSession session;
    private readonly IReadOnlyList<string> outputs;

    private GraphRun(InferenceSession session, IReadOnlyList<string> outputs)
    {
        this.session = session;
        this.outputs = outputs;
    }

    public static GraphRun Open(GraphBuilder builder)
    {
        string path = Path.Combine(Path.GetTempPath(), $"recur-graph-{Guid.NewGuid():N}.onnx");
        try
        {
            ModelWriter.Write(builder, path, new ModelWriteOptions { ExternalData = ExternalDataMode.Never });
            OrtLibrary.Initialize();
            // One thread: the tests run in parallel and the numbers must not depend on how the work is split.
            return new GraphRun(InferenceSession.FromBytes(File.ReadAllBytes(path), new SessionConfig { IntraOpThreads = 1 }), builder.OutputNames);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Runs the graph on the named feeds and returns every graph output by name.</summary>
    public IReadOnlyDictionary<string, HostTensor> Run(params (string Name, HostTensor Value)[] feeds)
    {
        var values = feeds.Select(f => f.Value.ToOrtValue()).ToArray();
        OrtValue[]? results = null;
        try
        {
            results = session.Run(feeds.Select(f => f.Name).ToArray(), values, outputs.ToArray());
            return outputs.Zip(results).ToDictionary(p => p.First, p => HostTensor.FromOrtValue(p.Second), StringComparer.Ordinal);
        }
        finally
        {
            foreach (var v in values) v.Dispose();
            if (results is not null) foreach (var r in results) r.Dispose();
        }
    }

    public void Dispose() => session.Dispose();
}
