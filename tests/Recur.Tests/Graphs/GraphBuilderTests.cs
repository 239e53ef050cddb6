using Recur.Graphs;
using Recur.Graphs.Ir;
using Recur.Graphs.Weights;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Recur.Runtime.Ort;

namespace Recur.Tests.Graphs;

public sealed class GraphBuilderTests
{
    [Fact]
    public void MatMul_with_mismatched_inner_dims_names_the_layer()
    {
        var b = new GraphBuilder("g");
        var x = b.Input("x", TensorDType.Float32, "batch", 8);
        var w = b.Constant(new float[12], [4, 3]);
        using var _ = b.Scope("layers.3");
        using var __ = b.Scope("attention");
        var e = Assert.Throws<GraphBuildException>(() => b.MatMul(x, w));
        Assert.StartsWith("layers.3/attention/MatMul in graph 'g': inner dimensions differ", e.Message);
    }

    [Fact]
    public void Broadcast_mismatch_and_dtype_mismatch_are_caught()
    {
        var b = new GraphBuilder("g");
        var x = b.Input("x", TensorDType.Float32, "batch", 8);
        var y = b.Input("y", TensorDType.Float32, "batch", 5);
        var ids = b.Input("ids", TensorDType.Int64, "batch", 8);
        Assert.Contains("do not broadcast", Assert.Throws<GraphBuildException>(() => b.Add(x, y)).Message);
        Assert.Contains("dtypes differ", Assert.Throws<GraphBuildException>(() => b.Mul(x, ids)).Message);
        Assert.Contains("cannot reshape", Assert.Throws<GraphBuildException>(() => b.Reshape(b.Constant(new float[6], [2, 3]), 4, 2)).Message);
    }

    [Fact]
    public void Shapes_are_inferred_through_common_ops()
    {
        var b = new GraphBuilder("g");
        var x = b.Input("x", TensorDType.Float32, "batch", "sequence", 8);
        var w = b.Constant(new float[8 * 6], [8, 6]);
        var y = b.MatMul(x, w);
        Assert.Equal(new Dim[] { "batch", "sequence", 6 }, y.Shape);
        var heads = b.Transpose(b.Reshape(y, 0, 0, 2, 3), 0, 2, 1, 3);
        Assert.Equal(new Dim[] { "batch", 2, "sequence", 3 }, heads.Shape);
        Assert.Equal(new Dim[] { "batch", "sequence", 1 }, b.ReduceMean(y, [-1]).Shape);
        Assert.Equal(new Dim[] { "batch", Dim.Unknown, 8 }, b.Slice(x, [0], [-1], [1]).Shape);
        Assert.Equal(new Dim[] { 2, 8 }, b.Squeeze(b.Constant(new float[16], [2, 1, 8]), 1).Shape);
    }

    [Fact]
    public void MatMul_add_softmax_built_here_runs_in_onnx_runtime_with_the_expected_numbers()
    {
        var b = new GraphBuilder("g");
        var x = b.Input("x", TensorDType.Float32, "batch", 3);
        float[] w = [0.5f, -1f, 2f, 0.25f, 1.5f, -0.5f];
        float[] bias = [0.1f, -0.2f];
        b.Output(b.Softmax(b.Add(b.MatMul(x, b.Constant(w, [3, 2])), b.Constant(bias, [2]))), "y");
        using var session = Build(b);
        float[] input = [1f, 2f, 3f, -1f, 0f, 1f];
        using var xv = OrtValue.FromArray(input, [2, 3]);
        var outputs = session.Run(["x"], [xv], ["y"]);
        using var y = outputs[0];
        var result = y.AsSpan<float>().ToArray();
        for (int r = 0; r < 2; r++)
        {
            var logits = new double[2];
            for (int c = 0; c < 2; c++)
            {
                logits[c] = bias[c];
                for (int k = 0; k < 3; k++) logits[c] += input[r * 3 + k] * w[k * 2 + c];
            }
            double m = logits.Max(), z = logits.Sum(l => Math.Exp(l - m));
            for (int c = 0; c < 2; c++) Assert.Equal(Math.Exp(logits[c] - m) / z, result[r * 2 + c], 1e-6);
        }
    }

    [Fact]
    public void Scan_running_sum_over_the_sequence_axis_gives_prefix_sums_and_the_total()
    {
        var b = new GraphBuilder("g");
        var x = b.Input("x", TensorDType.Float32, "batch", "sequence", 4);
        var init = b.Input("init", TensorDType.Float32, "batch", 4);
        var results = b.Scan([init], [x], [1], (s, state, step) =>
        {
            var next = s.Add(state[0], step[0]);
            return new GraphBuilder.ScanStep([next], [next]);
        }, scanOutputAxes: [1]);
        Assert.Equal(new Dim[] { "batch", "sequence", 4 }, results[1].Shape);
        b.Output(results[0], "total");
        b.Output(results[1], "prefix");
        using var session = Build(b);
        var data = Enumerable.Range(0, 2 * 5 * 4).Select(i => (float)(i % 7) - 3f).ToArray();
        var start = new float[] { 1, 2, 3, 4, 0, 0, 0, 0 };
        using var xv = OrtValue.FromArray(data, [2, 5, 4]);
        using var iv = OrtValue.FromArray(start, [2, 4]);
        var outputs = session.Run(["x", "init"], [xv, iv], ["total", "prefix"]);
        try
        {
            var total = outputs[0].AsSpan<float>();
            var prefix = outputs[1].AsSpan<float>();
            for (int r = 0; r < 2; r++)
                for (int c = 0; c < 4; c++)
                {
                    float running = start[r * 4 + c];
                    for (int t = 0; t < 5; t++)
                    {
                        running += data[(r * 5 + t) * 4 + c];
                        Assert.Equal(running, prefix[(r * 5 + t) * 4 + c], 5);
                    }
                    Assert.Equal(running, total[r * 4 + c], 5);
                }
        }
        finally
        {
            foreach (var o in outputs) o.Dispose();
        }
    }

    private static InferenceSession Build(GraphBuilder b)
    {
        string path = Path.Combine(Path.GetTempPath(), $"recur-graph-{Guid.NewGuid():N}.onnx");
        try
        {
            ModelWriter.Write(b, path);
            OrtLibrary.Initialize();
            return InferenceSession.FromBytes(File.ReadAllBytes(path));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
