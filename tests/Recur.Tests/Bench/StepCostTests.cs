using Recur.Cli.Commands.Bench;
using Recur.Graphs.Onnx;
using Recur.Runtime.Packages;
using Recur.Tests.Support;

namespace Recur.Tests.Bench;

/// <summary>
/// The bytes a decode step reads, as bench counts them, against sums over the package's initializers by their
/// Hugging Face names: an untied embedding costs one row per token, a tied table all of it, a top-1 expert layer
/// of E experts 1/E of its experts' weights for one token.
/// </summary>
public sealed class StepCostTests
{
    private static (long Total, Dictionary<string, long> Bytes, Dictionary<string, long[]> Dims) Initializers(string package)
    {
        var graph = ModelProto.Parser.ParseFrom(File.ReadAllBytes(ModelPackage.Open(package).GraphPath("decoder"))).Graph;
        var bytes = graph.Initializer.ToDictionary(t => t.Name, t => t.Dims.Aggregate(1L, (n, d) => n * d) * (t.DataType == 7 ? 8 : t.DataType == 1 ? 4 : t.DataType == 10 ? 2 : 1));
        return (bytes.Values.Sum(), bytes, graph.Initializer.ToDictionary(t => t.Name, t => t.Dims.ToArray()));
    }

    [Fact]
    public void An_untied_embedding_costs_one_row_per_token()
    {
        string package = ConvertedPackages.Get("rwkv");
        var (total, bytes, dims) = Initializers(package);
        const string table = "rwkv.embeddings.weight";
        long rows = dims[table][0];
        var cost = StepCost.Read(ModelPackage.Open(package));
        Assert.Equal(total - bytes[table] + bytes[table] / rows, cost.WeightBytes(1), 6);
        Assert.Equal(total - bytes[table] + 3 * bytes[table] / rows, cost.WeightBytes(3), 6);
    }

    [Fact]
    public void A_tied_table_is_read_whole_as_the_head()
    {
        string package = ConvertedPackages.Get("gemma");
        var (total, _, _) = Initializers(package);
        var cost = StepCost.Read(ModelPackage.Open(package));
        Assert.Equal(total, cost.WeightBytes(1), 6);
        // The head (the tied table, vocab 384 x hidden 80 in tests/golden/gemma/config.json) runs after logits_to_keep:
        // its 2 x vocab x hidden FLOPs are per kept position, not per token.
        Assert.Equal(2.0 * 384 * 80, cost.KeptPositionFlops);
    }

    [Fact]
    public void A_token_reads_one_expert_of_each_sparse_layer()
    {
        string package = ConvertedPackages.Get("switch");
        var (total, bytes, _) = Initializers(package);
        const int experts = 4; // tests/golden/switch/config.json num_experts
        long expertBytes = bytes.Where(kv => kv.Key.Contains(".experts.", StringComparison.Ordinal)).Sum(kv => kv.Value);
        Assert.True(expertBytes > 0);
        var cost = StepCost.Read(ModelPackage.Open(package));
        // One token reaches 1 of 4 experts; two tokens reach 4 (1 - (3/4)^2) = 1.75 of them on average. Constants that
        // only an expert's nodes read (an int64 shape or axis, a few bytes) count with that expert too.
        Assert.InRange(cost.WeightBytes(1) - (total - expertBytes + expertBytes / (double)experts), -32, 0);
        Assert.InRange(cost.WeightBytes(2) - (total - expertBytes + expertBytes * 1.75 / experts), -32, 0);
    }

    [Fact]
    public void A_token_reads_k_experts_of_each_top_k_layer()
    {
        string package = ConvertedPackages.Get("jamba");
        var (total, bytes, _) = Initializers(package);
        // tests/golden/jamba/config.json: 4 experts, 2 per token, experts on layers 1 and 3 (period 2, offset 1).
        const int experts = 4, perToken = 2;
        var routing = ModelPackage.Open(package).Manifest.Routing!;
        Assert.Equal(2, routing.Count);
        Assert.All(routing, r => Assert.Equal((experts, perToken), (r.ExpertScopes.Count, r.ExpertsPerToken)));
        long expertBytes = bytes.Where(kv => kv.Key.Contains(".experts.", StringComparison.Ordinal)).Sum(kv => kv.Value);
        Assert.True(expertBytes > 0);
        var cost = StepCost.Read(ModelPackage.Open(package));
        // Its embedding is untied (vocab 336 x hidden 64): one row per token, as in the RWKV case above.
        const string table = "model.embed_tokens.weight";
        long embedding = bytes[table] - bytes[table] / 336;
        // One token reaches 2 of 4 experts: half of their weights (constants read only inside an expert count with it).
        Assert.InRange(cost.WeightBytes(1) - (total - embedding - expertBytes + expertBytes * perToken / (double)experts), -64, 0);
    }
}
