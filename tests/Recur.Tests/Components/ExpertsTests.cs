using Recur.Graphs;
using Recur.Graphs.Weights;
using Recur.Tests.Support;

namespace Recur.Tests.Components;

/// <summary>
/// Switch's top-1 routing with capacity, and Jamba's top-k routing, against loops. Top-1: each row's tokens, in sequence order, fill their expert's
/// capacity; the rest are dropped and come out as max_prob * x.
/// </summary>
public sealed class ExpertsTests
{
    private const int B = 2, T = 7, Dm = 5, E = 4, Capacity = 2;
    // float32: a softmax over E logits, then a D-term matmul and a tanh per expert; a few ulps of O(1) values.
    private const double Atol = 1e-5;

    [Fact]
    public void Routes_with_capacity_in_sequence_order_per_row_and_drops_the_rest()
    {
        var random = new Random(41);
        var x = Numerics.Uniform(random, B * T * Dm, -2, 2);
        var router = Numerics.Uniform(random, E * Dm);
        // Expert 0 is favoured so rows overflow its capacity; expert 3 is never chosen, so it routes an empty set.
        float[] routerBias = [2.5f, 0f, 0.5f, -30f];
        var weights = new MemoryTensors()
            .Add("router.classifier.weight", router, E, Dm)
            .Add("router.classifier.bias", routerBias, E);
        var expertWeights = new float[E][];
        for (int e = 0; e < E; e++)
        {
            expertWeights[e] = Numerics.Uniform(random, Dm * Dm);
            weights.Add($"experts.expert_{e}.wi.weight", expertWeights[e], Dm, Dm);
        }

        var b = new GraphBuilder("moe", weights: weights.Puller());
        var routing = b.Top1Experts(b.Input("x", TensorDType.Float32, B, "sequence", Dm), "router.classifier.weight", "router.classifier.bias", Dm, E, Capacity,
            (tokens, e) => b.Tanh(b.Linear(tokens, $"experts.expert_{e}.wi.weight", Dm, Dm)));
        b.Output(routing.Output, "y");
        b.Output(routing.RouterLogits, "logits");
        b.Output(routing.Expert, "expert");
        using var graph = GraphRun.Open(b);
        var result = graph.Run(("x", HostTensor.Of(x, B, T, Dm)));

        var expected = new double[B * T * Dm];
        var expectedLogits = new double[B * T * E];
        var expectedExpert = new long[B * T];
        int dropped = 0;
        for (int r = 0; r < B; r++)
        {
            var used = new int[E];
            for (int t = 0; t < T; t++)
            {
                int row = r * T + t;
                var logits = new double[E];
                for (int e = 0; e < E; e++)
                {
                    logits[e] = routerBias[e];
                    for (int i = 0; i < Dm; i++) logits[e] += x[row * Dm + i] * router[e * Dm + i];
                    expectedLogits[row * E + e] = logits[e];
                }
                int chosen = Array.IndexOf(logits, logits.Max());
                double maxLogit = logits[chosen], prob = 1 / logits.Sum(l => Math.Exp(l - maxLogit));
                expectedExpert[row] = chosen;
                bool kept = ++used[chosen] <= Capacity;
                if (!kept) dropped++;
                for (int o = 0; o < Dm; o++)
                {
                    double value = x[row * Dm + o];
                    if (kept)
                    {
                        double sum = 0;
                        for (int i = 0; i < Dm; i++) sum += x[row * Dm + i] * expertWeights[chosen][o * Dm + i]; // nn.Linear: W [out, in]
                        value = Math.Tanh(sum);
                    }
                    expected[row * Dm + o] = prob * value;
                }
            }
        }
        Assert.True(dropped > 0, "the inputs should overflow a capacity");
        Assert.DoesNotContain(3L, expectedExpert);
        Assert.Equal(expectedExpert, result["expert"].Longs);
        Numerics.AssertClose(expectedLogits, result["logits"].Floats, Atol, what: "router logits");
        Numerics.AssertClose(expected, result["y"].Floats, Atol, what: "y");
    }

    [Fact]
    public void Top_k_sums_the_chosen_experts_weighted_by_their_unrenormalised_probabilities()
    {
        const int K = 2;
        var random = new Random(43);
        var x = Numerics.Uniform(random, B * T * Dm, -2, 2);
        var router = Numerics.Uniform(random, E * Dm);
        var weights = new MemoryTensors().Add("router.weight", router, E, Dm);
        var expertWeights = new float[E][];
        for (int e = 0; e < E; e++)
        {
            expertWeights[e] = Numerics.Uniform(random, Dm * Dm);
            weights.Add($"experts.{e}.weight", expertWeights[e], Dm, Dm);
        }

        var b = new GraphBuilder("moe", weights: weights.Puller());
        var routing = b.TopKExperts(b.Input("x", TensorDType.Float32, B, "sequence", Dm), "router.weight", null, Dm, E, K,
            (tokens, e) => b.Tanh(b.Linear(tokens, $"experts.{e}.weight", Dm, Dm)));
        b.Output(routing.Output, "y");
        b.Output(routing.RouterLogits, "logits");
        b.Output(routing.Experts, "experts");
        using var graph = GraphRun.Open(b);
        var result = graph.Run(("x", HostTensor.Of(x, B, T, Dm)));

        var expected = new double[B * T * Dm];
        var expectedExperts = new long[B * T * K];
        var used = new int[E];
        for (int row = 0; row < B * T; row++)
        {
            var logits = new double[E];
            for (int e = 0; e < E; e++)
                for (int i = 0; i < Dm; i++) logits[e] += x[row * Dm + i] * router[e * Dm + i];
            double max = logits.Max(), total = logits.Sum(l => Math.Exp(l - max));
            var order = Enumerable.Range(0, E).OrderByDescending(e => logits[e]).ToArray();
            for (int j = 0; j < K; j++)
            {
                int e = order[j];
                used[e]++;
                expectedExperts[row * K + j] = e;
                double prob = Math.Exp(logits[e] - max) / total;   // softmax over all experts, not over the chosen K
                for (int o = 0; o < Dm; o++)
                {
                    double sum = 0;
                    for (int i = 0; i < Dm; i++) sum += x[row * Dm + i] * expertWeights[e][o * Dm + i];
                    expected[row * Dm + o] += prob * Math.Tanh(sum);
                }
            }
        }
        Assert.All(used, n => Assert.True(n > 0, "every expert should receive tokens"));
        Assert.Equal(expectedExperts, result["experts"].Longs);
        Numerics.AssertClose(expected, result["y"].Floats, Atol, what: "y");
    }
}
