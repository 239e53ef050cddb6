using Recur.Graphs.Ir;
using Recur.Graphs.Weights;
using Recur.Package;

namespace Recur.Graphs;

public sealed partial class GraphBuilder
{
    /// <summary>
    /// The residual stack the Mamba family shares (MambaModel, Mamba2Model: weights under "backbone."), around
    /// each architecture's own mixer:
    /// <code>
    /// x = embeddings(input_ids)                                  [B, T, hidden]
    /// per layer i:  x = x + mixer(i, rms_norm(x))                 layers.{i}.norm, residual in float32
    /// logits = lm_head(rms_norm_f(x))                             lm_head tied to the embeddings or its own
    /// </code>
    /// </summary>
    public void MambaBackbone(long vocab, long hidden, int layers, float epsilon, bool tied, Func<int, Value, Value> mixer)
    {
        var ids = Input(Contract.InputIds, TensorDType.Int64, "batch", "sequence");
        // The models' load hooks rename the original checkpoints' "embedding." to "embeddings.".
        string embeddings = !HasWeight("backbone.embeddings.weight") && HasWeight("backbone.embedding.weight")
            ? "backbone.embedding.weight" : "backbone.embeddings.weight";
        // Tying points lm_head at the embedding after loading, so a stored copy is never read.
        if (tied) RequireWeights().Ignore("lm_head.weight");
        var tables = Embeddings(embeddings, vocab, hidden, tied, "lm_head.weight");
        var x = Embed(tables, ids);
        for (int i = 0; i < layers; i++)
        {
            using var _ = Scope($"layers.{i}");
            x = Add(x, mixer(i, RmsNorm(x, $"backbone.layers.{i}.norm.weight", hidden, epsilon)));
        }
        x = RmsNorm(x, "backbone.norm_f.weight", hidden, epsilon);
        LogitsOutput(LmHead(tables, x));
    }
}
