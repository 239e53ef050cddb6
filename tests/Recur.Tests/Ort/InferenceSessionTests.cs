using Google.Protobuf;
using Recur.Graphs.Onnx;
using Recur.Runtime.Ort;
using static Recur.Tests.Ort.OnnxModels;
using DataType = Recur.Graphs.Onnx.TensorProto.Types.DataType;

namespace Recur.Tests.Ort;

public sealed class InferenceSessionTests
{
    public InferenceSessionTests() => OrtTestLibrary.EnsureInitialized();

    [Fact]
    public void MatMulAddSoftmax_MatchesPlainLoop()
    {
        // logits = x[2,3] @ w[3,4] + b[4]; probs = softmax(logits, axis -1)
        float[] w = [0.5f, -1.0f, 0.25f, 2.0f, 1.5f, 0.75f, -0.5f, 0.1f, -2.0f, 0.3f, 1.0f, -0.7f];
        float[] b = [0.1f, -0.2f, 0.3f, 0.0f];
        float[] x = [1.0f, 2.0f, 3.0f, -0.5f, 0.25f, 4.0f];
        var model = Model(Graph(
            "mlp",
            [
                Node("MatMul", ["x", "w"], ["xw"]),
                Node("Add", ["xw", "b"], ["logits"]),
                Node("Softmax", ["logits"], ["probs"], Int("axis", -1)),
            ],
            [Tensor("x", DataType.Float, 2, 3)],
            [Tensor("logits", DataType.Float, 2, 4), Tensor("probs", DataType.Float, 2, 4)],
            [FloatTensor("w", w, 3, 4), FloatTensor("b", b, 4)]));

        var expectedLogits = new double[8];
        var expectedProbs = new double[8];
        for (int r = 0; r < 2; r++)
        {
            for (int c = 0; c < 4; c++)
            {
                double sum = b[c];
                for (int k = 0; k < 3; k++)
                {
                    sum += (double)x[r * 3 + k] * w[k * 4 + c];
                }
                expectedLogits[r * 4 + c] = sum;
            }
            double max = expectedLogits.Skip(r * 4).Take(4).Max();
            double total = 0;
            for (int c = 0; c < 4; c++)
            {
                total += Math.Exp(expectedLogits[r * 4 + c] - max);
            }
            for (int c = 0; c < 4; c++)
            {
                expectedProbs[r * 4 + c] = Math.Exp(expectedLogits[r * 4 + c] - max) / total;
            }
        }

        using var session = Session(model);
        using var input = OrtValue.FromArray(x, [2, 3]);
        var outputs = session.Run(["x"], [input], ["logits", "probs"]);
        try
        {
            Assert.Equal([2L, 4L], outputs[0].Shape);
            Assert.Equal([2L, 4L], outputs[1].Shape);
            AssertClose(expectedLogits, outputs[0].AsSpan<float>(), 1e-6);
            AssertClose(expectedProbs, outputs[1].AsSpan<float>(), 1e-6);
        }
        finally
        {
            foreach (var output in outputs)
            {
                output.Dispose();
            }
        }
    }

    [Fact]
    public void Scan_RunningSum_GivesCumulativeSumsAndTotal()
    {
        // Scan over axis 0 of x[5,2], carrying sum[2]: sum_t = sum_{t-1} + x_t, emitting every sum_t.
        var body = Graph(
            "running_sum",
            [Node("Add", ["sum_in", "x_t"], ["sum_out"]), Node("Identity", ["sum_out"], ["sum_t"])],
            [Tensor("sum_in", DataType.Float, 2), Tensor("x_t", DataType.Float, 2)],
            [Tensor("sum_out", DataType.Float, 2), Tensor("sum_t", DataType.Float, 2)]);
        var model = Model(Graph(
            "scan",
            [Node("Scan", ["initial", "x"], ["total", "sums"], Graph("body", body), Int("num_scan_inputs", 1))],
            [Tensor("initial", DataType.Float, 2), Tensor("x", DataType.Float, 5, 2)],
            [Tensor("total", DataType.Float, 2), Tensor("sums", DataType.Float, 5, 2)]));

        float[] x = [1, 10, 2, 20, 3, 30, 4, 40, 5, 50];
        float[] initial = [100, -100];
        using var session = Session(model);
        using var initialValue = OrtValue.FromArray(initial, [2]);
        using var xValue = OrtValue.FromArray(x, [5, 2]);
        var outputs = session.Run(["initial", "x"], [initialValue, xValue], ["total", "sums"]);
        using var total = outputs[0];
        using var sums = outputs[1];

        var expected = new float[10];
        float a = initial[0], c = initial[1];
        for (int t = 0; t < 5; t++)
        {
            a += x[t * 2];
            c += x[t * 2 + 1];
            expected[t * 2] = a;
            expected[t * 2 + 1] = c;
        }
        Assert.Equal([5L, 2L], sums.Shape);
        Assert.Equal(expected, sums.AsSpan<float>().ToArray());
        Assert.Equal([115f, 50f], total.AsSpan<float>().ToArray());
        Assert.Equal(expected[8..], total.AsSpan<float>().ToArray());
    }

    [Fact]
    public void SymbolicDims_AreReported_AndRunWithDifferentShapes()
    {
        using var session = Session(Doubler("batch", "sequence", null, 4));

        var input = Assert.Single(session.Inputs);
        Assert.Equal("x", input.Name);
        Assert.Equal(TensorElementType.Float, input.ElementType);
        Assert.Equal([-1L, -1L, -1L, 4L], input.Dims);
        Assert.Equal(["batch", "sequence", null, null], input.SymbolicDims);
        var output = Assert.Single(session.Outputs);
        Assert.Equal("y", output.Name);
        Assert.Equal(["batch", "sequence", null, null], output.SymbolicDims);

        foreach (long[] shape in new[] { new long[] { 1, 3, 1, 4 }, [2, 5, 3, 4] })
        {
            int count = (int)shape.Aggregate(1L, (p, d) => p * d);
            var data = Enumerable.Range(0, count).Select(i => i * 0.5f - 3f).ToArray();
            using var x = OrtValue.FromArray(data, shape);
            var outputs = session.Run(["x"], [x], ["y"]);
            using var y = outputs[0];
            Assert.Equal(shape, y.Shape);
            Assert.Equal(count, y.ElementCount);
            Assert.Equal(data.Select(v => v * 2).ToArray(), y.AsSpan<float>().ToArray());
        }
    }

    [Fact]
    public void Metadata_ExposesMetadataProps()
    {
        var model = Doubler(2);
        model.MetadataProps.Add(new StringStringEntryProto { Key = "recur.architecture", Value = "mamba" });
        model.MetadataProps.Add(new StringStringEntryProto { Key = "recur.states", Value = "{\"conv\": [1, 4]}" });
        model.MetadataProps.Add(new StringStringEntryProto { Key = "empty", Value = "" });
        using var session = Session(model);

        Assert.Equal(3, session.Metadata.Count);
        Assert.Equal("mamba", session.Metadata["recur.architecture"]);
        Assert.Equal("{\"conv\": [1, 4]}", session.Metadata["recur.states"]);
        Assert.Equal("", session.Metadata["empty"]);
    }

    [Fact]
    public void Metadata_IsEmptyWithoutMetadataProps()
    {
        using var session = Session(Doubler(2));
        Assert.Empty(session.Metadata);
    }

    [Fact]
    public void FromFile_LoadsExternalDataNextToTheModel()
    {
        // The initializer's bytes live in weights.bin beside model.onnx; the working directory is elsewhere.
        var dir = Directory.CreateTempSubdirectory("recur-ort-");
        try
        {
            float[] weights = [0.5f, 1.5f, -2f, 4f];
            File.WriteAllBytes(Path.Combine(dir.FullName, "weights.bin"), [0, 0, 0, 0, .. System.Runtime.InteropServices.MemoryMarshal.AsBytes(weights.AsSpan()).ToArray()]);
            var w = new TensorProto { Name = "w", DataType = (int)DataType.Float, DataLocation = TensorProto.Types.DataLocation.External };
            w.Dims.Add(4);
            w.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = "weights.bin" });
            w.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = "4" });
            w.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = "16" });
            var model = Model(Graph(
                "external",
                [Node("Mul", ["x", "w"], ["y"])],
                [Tensor("x", DataType.Float, 4)],
                [Tensor("y", DataType.Float, 4)],
                [w]));
            var modelPath = Path.Combine(dir.FullName, "model.onnx");
            File.WriteAllBytes(modelPath, model.ToByteArray());
            Assert.NotEqual(dir.FullName, Directory.GetCurrentDirectory());

            using var session = InferenceSession.FromFile(modelPath);
            using var x = OrtValue.FromArray(new float[] { 1, 2, 3, 4 }, [4]);
            var outputs = session.Run(["x"], [x], ["y"]);
            using var y = outputs[0];
            Assert.Equal([0.5f, 3f, -6f, 16f], y.AsSpan<float>().ToArray());
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Theory]
    [InlineData(1, 1, GraphOptimization.Disabled)]
    [InlineData(2, 1, GraphOptimization.Basic)]
    [InlineData(0, 0, GraphOptimization.Extended)]
    public void SessionConfig_ThreadsAndOptimization_StillCompute(int intra, int inter, GraphOptimization optimization)
    {
        var config = new SessionConfig { IntraOpThreads = intra, InterOpThreads = inter, Optimization = optimization };
        using var session = Session(Doubler(3), config);
        Assert.Equal("cpu", session.ExecutionProvider);
        Assert.Empty(session.Warnings);
        using var x = OrtValue.FromArray(new float[] { 1, -2, 3.5f }, [3]);
        using var y = session.Run(["x"], [x], ["y"])[0];
        Assert.Equal([2f, -4f, 7f], y.AsSpan<float>().ToArray());
    }

    [Fact]
    public void SessionConfig_NegativeThreads_Throws()
    {
        var config = new SessionConfig { IntraOpThreads = -1 };
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Session(Doubler(3), config));
        Assert.Contains("IntraOpThreads", e.Message);
    }

    [Fact]
    public void Run_ConcurrentlyOnOneSession_GivesEachCallersResult()
    {
        using var session = Session(Doubler("n"));
        Parallel.For(0, 16, i =>
        {
            var data = Enumerable.Range(0, 100 + i).Select(v => (float)(v * i)).ToArray();
            using var x = OrtValue.FromArray(data, [data.Length]);
            using var y = session.Run(["x"], [x], ["y"])[0];
            Assert.Equal(data.Select(v => v * 2).ToArray(), y.AsSpan<float>().ToArray());
        });
    }

    internal static void AssertClose(double[] expected, ReadOnlySpan<float> actual, double tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.True(
                Math.Abs(expected[i] - actual[i]) <= tolerance,
                $"element {i}: expected {expected[i]:R}, got {actual[i]:R} (tolerance {tolerance})");
        }
    }
}
