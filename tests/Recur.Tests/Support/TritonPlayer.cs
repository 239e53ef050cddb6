using Microsoft.ML.OnnxRuntime.Tensors;

namespace Recur.Tests.Support;

/// <summary>
/// Plays Triton's part for one model of a repository, from its config.pbtxt and 1/model.onnx alone: the
/// sequence batcher's implicit state (each sequence starts from its <c>initial_state</c>, with every -1
/// dimension at 1 as Triton makes it; each run's output state becomes that sequence's next input state) and
/// batching of requests from different sequences along the batch dimension, up to max_batch_size, only when
/// their inputs and states have the same shapes.
/// </summary>
public sealed class TritonPlayer : IDisposable
{
    private readonly InferenceSession session;
    private readonly Dictionary<string, Dictionary<string, Tensor>> sequences = new(StringComparer.Ordinal);

    private sealed record StateDecl(string Input, string Output, Tensor Initial);

    /// <summary>A tensor with the batch dimension first: float[] or long[] data.</summary>
    public sealed record Tensor(Array Data, long[] Shape)
    {
        public float[] Floats => (float[])Data;
        public long RowLength => Shape.Skip(1).Aggregate(1L, (a, d) => a * d);
    }

    public sealed record Request(string Sequence, long[] Ids, IReadOnlyDictionary<string, Tensor>? Inputs = null);

    private TritonPlayer(string modelDir)
    {
        Config = Pbtxt.Parse(File.ReadAllText(Path.Combine(modelDir, "config.pbtxt")));
        Assert.Equal("onnxruntime", Config.Scalar("backend"));
        MaxBatchSize = (int)Config.Long("max_batch_size");
        Inputs = Config.Messages("input").Select(i => i.Scalar("name")).ToList();
        Outputs = Config.Messages("output").Select(o => o.Scalar("name")).ToList();
        States = Config.Has("sequence_batching")
            ? Config.Message("sequence_batching").Messages("state").Select(s => ReadState(s, modelDir)).ToList()
            : [];
        var options = new SessionOptions { IntraOpNumThreads = 1 };
        session = new InferenceSession(Path.Combine(modelDir, "1", "model.onnx"), options);
        CheckAsTritonLoads();
    }

    /// <summary>
    /// What Triton's ONNX Runtime backend checks when it loads the model: the graph's inputs (those backed by
    /// an initializer aside) are exactly the config's inputs and states, with the config's data types.
    /// </summary>
    private void CheckAsTritonLoads()
    {
        var declared = Config.Messages("input").Select(i => (Name: i.Scalar("name"), Type: i.Scalar("data_type")))
            .Concat(Config.Has("sequence_batching")
                ? Config.Message("sequence_batching").Messages("state").Select(st => (Name: st.Scalar("input_name"), Type: st.Scalar("data_type")))
                : []).ToList();
        Assert.Equal(declared.Select(d => d.Name).Order(), session.InputMetadata.Keys.Order());
        foreach (var (name, type) in declared) Assert.Equal(type, TritonType(session.InputMetadata[name].ElementDataType));
        foreach (var output in Config.Messages("output"))
            Assert.Equal(output.Scalar("data_type"), TritonType(session.OutputMetadata[output.Scalar("name")].ElementDataType));
        foreach (var state in States) Assert.True(session.OutputMetadata.ContainsKey(state.Output), state.Output);
    }

    private static string TritonType(TensorElementType type) => type switch
    {
        TensorElementType.Float => "TYPE_FP32",
        TensorElementType.Int64 => "TYPE_INT64",
        var t => throw new NotSupportedException(t.ToString()),
    };

    public Pbtxt Config { get; }
    public int MaxBatchSize { get; }
    public IReadOnlyList<string> Inputs { get; }
    public IReadOnlyList<string> Outputs { get; }
    private IReadOnlyList<StateDecl> States { get; }
    public int StateCount => States.Count;
    /// <summary>Runs that held requests of more than one sequence.</summary>
    public int BatchedRuns { get; private set; }

    public static TritonPlayer Open(string modelDir) => new(modelDir);

    private static StateDecl ReadState(Pbtxt state, string modelDir)
    {
        long[] dims = state.Longs("dims");
        var init = state.Messages("initial_state").Single();
        Assert.Equal(state.Scalar("data_type"), init.Scalar("data_type"));
        Assert.False(string.IsNullOrEmpty(init.Scalar("name")));
        long[] initDims = init.Longs("dims");
        Assert.Equal(dims.Length, initDims.Length);
        Assert.DoesNotContain(-1L, initDims);
        for (int i = 0; i < dims.Length; i++) if (dims[i] != -1) Assert.Equal(dims[i], initDims[i]);
        // Triton gives the first request the state dims with -1 as 1, filled from the initial state's bytes.
        long[] shape = [1, .. dims.Select(d => d == -1 ? 1 : d)];
        Assert.Equal(shape.Skip(1).Aggregate(1L, (a, d) => a * d), initDims.Aggregate(1L, (a, d) => a * d));
        long count = initDims.Aggregate(1L, (a, d) => a * d);
        byte[] bytes;
        string type = state.Scalar("data_type");
        int size = type switch { "TYPE_FP32" => 4, "TYPE_INT64" => 8, _ => throw new NotSupportedException(type) };
        if (init.Has("zero_data"))
        {
            Assert.Equal("true", init.Scalar("zero_data"));
            bytes = new byte[count * size];
        }
        else
        {
            bytes = File.ReadAllBytes(Path.Combine(modelDir, "initial_state", init.Scalar("data_file")));
            Assert.Equal(count * size, bytes.LongLength);
        }
        Array data = type == "TYPE_FP32" ? new float[count] : new long[count];
        Buffer.BlockCopy(bytes, 0, data, 0, bytes.Length);
        return new StateDecl(state.Scalar("input_name"), state.Scalar("output_name"), new Tensor(data, shape));
    }

    /// <summary>A new sequence (Triton's START): its state is the initial state.</summary>
    public void Start(string sequence) =>
        sequences[sequence] = States.ToDictionary(s => s.Input, s => s.Initial, StringComparer.Ordinal);

    /// <summary>Ends a sequence (Triton's END): its state is dropped.</summary>
    public void End(string sequence) => Assert.True(sequences.Remove(sequence));

    /// <summary>One model run for requests of distinct sequences; returns each request's outputs.</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, Tensor>> Run(IReadOnlyList<Request> requests)
    {
        Assert.InRange(requests.Count, 1, Math.Max(1, MaxBatchSize));
        Assert.Equal(requests.Count, requests.Select(r => r.Sequence).Distinct().Count());
        if (requests.Count > 1) BatchedRuns++;
        var names = new List<string>();
        var values = new List<OrtValue>();
        try
        {
            foreach (string input in Inputs)
            {
                var parts = requests.Select(r => input == "input_ids" ? new Tensor(r.Ids, [1, r.Ids.Length]) : r.Inputs![input]).ToList();
                names.Add(input);
                values.Add(Batch(parts));
            }
            foreach (var state in States)
            {
                names.Add(state.Input);
                values.Add(Batch(requests.Select(r => sequences[r.Sequence][state.Input]).ToList()));
            }
            var outputNames = Outputs.Concat(States.Select(s => s.Output)).ToList();
            using var results = session.Run(new RunOptions(), names, values, outputNames);
            var split = outputNames.Zip(results).ToDictionary(p => p.First, p => Split(p.Second, requests.Count), StringComparer.Ordinal);
            for (int row = 0; row < requests.Count; row++)
                foreach (var state in States)
                    sequences[requests[row].Sequence][state.Input] = split[state.Output][row];
            return Enumerable.Range(0, requests.Count)
                .Select(row => (IReadOnlyDictionary<string, Tensor>)Outputs.ToDictionary(o => o, o => split[o][row], StringComparer.Ordinal)).ToList();
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    /// <summary>Concatenates requests along the batch dimension; Triton batches only tensors of one shape.</summary>
    private static OrtValue Batch(IReadOnlyList<Tensor> parts)
    {
        foreach (var p in parts) Assert.Equal(parts[0].Shape.Skip(1), p.Shape.Skip(1));
        long[] shape = [parts.Sum(p => p.Shape[0]), .. parts[0].Shape.Skip(1)];
        return parts[0].Data switch
        {
            float[] => OrtValue.CreateTensorValueFromMemory(parts.SelectMany(p => (float[])p.Data).ToArray(), shape),
            long[] => OrtValue.CreateTensorValueFromMemory(parts.SelectMany(p => (long[])p.Data).ToArray(), shape),
            _ => throw new NotSupportedException(parts[0].Data.GetType().Name),
        };
    }

    private static List<Tensor> Split(OrtValue value, int rows)
    {
        long[] shape = value.GetTensorTypeAndShape().Shape;
        Assert.Equal(rows, shape[0]);
        long[] rowShape = [1, .. shape.Skip(1)];
        long n = rowShape.Aggregate(1L, (a, d) => a * d);
        return value.GetTensorTypeAndShape().ElementDataType switch
        {
            TensorElementType.Float => Chunks(value.GetTensorDataAsSpan<float>().ToArray()),
            TensorElementType.Int64 => Chunks(value.GetTensorDataAsSpan<long>().ToArray()),
            var t => throw new NotSupportedException(t.ToString()),
        };

        List<Tensor> Chunks<T>(T[] all) =>
            Enumerable.Range(0, rows).Select(r => new Tensor(all.AsSpan((int)(r * n), (int)n).ToArray(), rowShape)).ToList();
    }

    public void Dispose() => session.Dispose();
}
