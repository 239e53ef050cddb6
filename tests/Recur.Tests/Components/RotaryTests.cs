using Recur.Graphs;
using Recur.Graphs.Weights;
using Recur.Tests.Support;

namespace Recur.Tests.Components;

/// <summary>Rotate-half RoPE against a double loop: pairs (i, i + half) of the rotary channels turn by position * theta^(-2i/rotaryDim).</summary>
public sealed class RotaryTests
{
    private const int B = 2, H = 3;
    // The graph takes angles in float32 (as Hugging Face does); at positions below 64 the angle's rounding is under
    // 64 * 2^-24 ~ 4e-6 rad, and |x| <= 1, so 1e-5 covers it and the trig functions' ulps.
    private const double Atol = 1e-5;

    [Theory]
    [InlineData(6, 6, 1, 10000.0)]    // full rotary, one new position
    [InlineData(6, 6, 4, 10000.0)]
    [InlineData(7, 4, 3, 10000.0)]    // partial rotary on an odd head dim: 3 channels pass through
    [InlineData(8, 2, 2, 500.0)]
    public void Matches_the_rotation(int headDim, int rotaryDim, int t, double theta)
    {
        var random = new Random(headDim * 10 + t);
        var x = Numerics.Uniform(random, B * H * t * headDim);
        // Positions that do not start at 0 (a decode step or a left-padded row), different per row.
        var positions = new long[B * t];
        for (int p = 0; p < t; p++)
        {
            positions[p] = 5 + p;
            positions[t + p] = 40 + 3 * p;
        }

        var b = new GraphBuilder("rope");
        b.Output(b.Rotary(b.Input("x", TensorDType.Float32, B, H, "sequence", headDim), b.Input("positions", TensorDType.Int64, B, "sequence"), theta, rotaryDim), "y");
        using var graph = GraphRun.Open(b);
        var y = graph.Run(("x", HostTensor.Of(x, B, H, t, headDim)), ("positions", HostTensor.Of(positions, B, t)))["y"];

        int half = rotaryDim / 2;
        var expected = new double[x.Length];
        for (int bi = 0; bi < B; bi++)
            for (int h = 0; h < H; h++)
                for (int p = 0; p < t; p++)
                {
                    int row = ((bi * H + h) * t + p) * headDim;
                    for (int i = 0; i < headDim; i++) expected[row + i] = x[row + i];
                    for (int i = 0; i < half; i++)
                    {
                        double angle = positions[bi * t + p] * Math.Pow(theta, -2.0 * i / rotaryDim);
                        double lo = x[row + i], hi = x[row + i + half];
                        expected[row + i] = lo * Math.Cos(angle) - hi * Math.Sin(angle);
                        expected[row + i + half] = hi * Math.Cos(angle) + lo * Math.Sin(angle);
                    }
                }
        Assert.Equal(new long[] { B, H, t, headDim }, y.Shape);
        Numerics.AssertClose(expected, y.Floats, Atol, what: "y");
    }
}
