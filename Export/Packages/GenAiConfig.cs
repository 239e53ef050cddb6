using System.Text.Json;
using System.Text.Json.Nodes;
using Recur.Package;

namespace Recur.Export.Packages;

/// <summary>
/// genai_config.json for packages whose state fits onnxruntime-genai's recurrent-state model: every layer holds
/// exactly one convolution window and one recurrent tensor (Mamba, and any architecture with the same contract),
/// named by templates with %d. GenAI's "decoder" type then feeds each present.* back as the next past_key_values.*.
/// Attention packages write their own (Gemma's, with its KV-cache fields); other state layouts get none.
/// </summary>
internal static class GenAiConfig
{
    public const string FileName = "genai_config.json";
    private const string Conv = "conv_state", Recurrent = "ssm_state";

    /// <summary>The config text, or null when the state is not one conv and one recurrent tensor per layer.</summary>
    public static string? ForRecurrentState(PackageManifest manifest, long vocab)
    {
        int layers = manifest.State.Count / 2;
        if (manifest.Graphs.Count != 1 || layers < 1 || manifest.State.Count != 2 * layers) return null;
        for (int layer = 0; layer < layers; layer++)
        {
            var kinds = manifest.State.Where(s => s.Input.StartsWith($"{Contract.PastPrefix}{layer}.", StringComparison.Ordinal))
                .Select(s => s.Input[(Contract.PastPrefix.Length + layer.ToString(System.Globalization.CultureInfo.InvariantCulture).Length + 1)..])
                .Order(StringComparer.Ordinal).ToList();
            if (kinds is not [Conv, Recurrent]) return null;
        }
        var generation = manifest.Generation;
        var model = new JsonObject
        {
            ["type"] = "decoder",
            // No positional limit: the state does not grow. GenAI sizes nothing by it for recurrent state.
            ["context_length"] = 1 << 20,
            ["vocab_size"] = vocab,
            ["decoder"] = new JsonObject
            {
                ["session_options"] = new JsonObject { ["log_id"] = "onnxruntime-genai", ["provider_options"] = new JsonArray() },
                ["filename"] = manifest.Graphs["decoder"],
                ["num_hidden_layers"] = layers,
                ["inputs"] = new JsonObject
                {
                    ["input_ids"] = Contract.InputIds,
                    ["past_conv_names"] = $"{Contract.PastPrefix}%d.{Conv}",
                    ["past_recurrent_names"] = $"{Contract.PastPrefix}%d.{Recurrent}",
                },
                ["outputs"] = new JsonObject
                {
                    ["logits"] = Contract.Logits,
                    ["present_conv_names"] = $"{Contract.PresentPrefix}%d.{Conv}",
                    ["present_recurrent_names"] = $"{Contract.PresentPrefix}%d.{Recurrent}",
                },
            },
        };
        if (generation.BosTokenId is long bos) model["bos_token_id"] = bos;
        if (generation.EosTokenIds.Count > 0) model["eos_token_id"] = generation.EosTokenIds.Count == 1 ? generation.EosTokenIds[0] : new JsonArray([.. generation.EosTokenIds.Select(e => (JsonNode)e)]);
        if (generation.PadTokenId is long pad) model["pad_token_id"] = pad;
        var search = new JsonObject
        {
            ["do_sample"] = false, ["max_length"] = 1 << 20, ["min_length"] = 0, ["num_beams"] = 1, ["num_return_sequences"] = 1,
            ["past_present_share_buffer"] = false, ["repetition_penalty"] = 1.0, ["temperature"] = 1.0, ["top_k"] = 1, ["top_p"] = 1.0,
        };
        return new JsonObject { ["model"] = model, ["search"] = search }.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }
}
