using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Recur.Graphs.Config;

namespace Recur.Export.Packages;

/// <summary>
/// genai_config.json for packages whose state fits onnxruntime-genai's "decoder" model: every layer holds either
/// exactly one convolution window and one recurrent tensor (Mamba, Mamba-2, Falcon-Mamba) or a key/value cache
/// (attention layers, with an attention_mask input), named by templates with %d. GenAI then feeds each present.*
/// back as the next past_key_values.*; a hybrid (Jamba) mixes the two kinds by layer. Gemma writes its own (type
/// gemma/gemma2); any other state layout gets none.
/// </summary>
internal static class GenAiConfig
{
    public const string FileName = "genai_config.json";
    private const string Conv = "conv_state", Recurrent = "ssm_state", Key = "key", Value = "value";

    /// <summary>The config text, or null when some layer's state is neither conv + recurrent nor key + value.</summary>
    public static string? ForStates(PackageManifest manifest, ModelConfig config)
    {
        if (manifest.Graphs.Count != 1 || manifest.State.Count == 0) return null;
        // A cache written in place (convert --kv-cache-length) is not GenAI's contract: its caches grow by Concat.
        if (manifest.State.Any(s => s.InPlaceAxis is not null)) return null;
        var byLayer = new SortedDictionary<int, List<PackageManifest.StateEntry>>();
        foreach (var s in manifest.State)
        {
            var parts = s.Input.Split('.');
            if (parts.Length != 3 || $"{parts[0]}." != Contract.PastPrefix || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int layer)) return null;
            (byLayer.TryGetValue(layer, out var list) ? list : byLayer[layer] = []).Add(s);
        }
        string Kinds(List<PackageManifest.StateEntry> l) => string.Join(",", l.Select(s => s.Input.Split('.')[2]).Order(StringComparer.Ordinal));
        var kinds = byLayer.Values.Select(Kinds).ToList();
        bool recurrent = kinds.Contains($"{Conv},{Recurrent}"), attention = kinds.Contains($"{Key},{Value}");
        if (kinds.Any(k => k != $"{Conv},{Recurrent}" && k != $"{Key},{Value}")) return null;

        var inputs = new JsonObject { ["input_ids"] = Contract.InputIds };
        var outputs = new JsonObject { ["logits"] = Contract.Logits };
        var decoder = new JsonObject
        {
            ["session_options"] = new JsonObject { ["log_id"] = "onnxruntime-genai", ["provider_options"] = new JsonArray() },
            ["filename"] = manifest.Graphs["decoder"],
            ["num_hidden_layers"] = byLayer.Keys.Max() + 1,
        };
        if (attention)
        {
            // past key: [batch, kv_heads, past_sequence, head_dim]
            var key = manifest.State.First(s => s.Input.EndsWith($".{Key}", StringComparison.Ordinal));
            if (key.Shape is not [_, long kvHeads, _, long headDim]) return null;
            decoder["num_key_value_heads"] = kvHeads;
            decoder["head_size"] = headDim;
            decoder["num_attention_heads"] = config.Positive("num_attention_heads", (int)kvHeads);
            if (config.Has("hidden_size")) decoder["hidden_size"] = config.Positive("hidden_size");
            inputs["attention_mask"] = Contract.AttentionMask;
            inputs["past_key_names"] = $"{Contract.PastPrefix}%d.{Key}";
            inputs["past_value_names"] = $"{Contract.PastPrefix}%d.{Value}";
            outputs["present_key_names"] = $"{Contract.PresentPrefix}%d.{Key}";
            outputs["present_value_names"] = $"{Contract.PresentPrefix}%d.{Value}";
        }
        if (recurrent)
        {
            inputs["past_conv_names"] = $"{Contract.PastPrefix}%d.{Conv}";
            inputs["past_recurrent_names"] = $"{Contract.PastPrefix}%d.{Recurrent}";
            outputs["present_conv_names"] = $"{Contract.PresentPrefix}%d.{Conv}";
            outputs["present_recurrent_names"] = $"{Contract.PresentPrefix}%d.{Recurrent}";
        }
        decoder["inputs"] = inputs;
        decoder["outputs"] = outputs;
        // Recurrent state does not grow; a KV cache grows with the text, up to the model's positions if it has any.
        int context = config.Has("max_position_embeddings") ? config.Positive("max_position_embeddings") : 1 << 20;
        var generation = manifest.Generation;
        var model = new JsonObject
        {
            ["type"] = "decoder",
            ["context_length"] = context,
            ["vocab_size"] = config.Positive("vocab_size"),
            ["decoder"] = decoder,
        };
        if (generation.BosTokenId is long bos) model["bos_token_id"] = bos;
        if (generation.EosTokenIds.Count > 0) model["eos_token_id"] = generation.EosTokenIds.Count == 1 ? generation.EosTokenIds[0] : new JsonArray([.. generation.EosTokenIds.Select(e => (JsonNode)e)]);
        if (generation.PadTokenId is long pad) model["pad_token_id"] = pad;
        var search = new JsonObject
        {
            ["do_sample"] = false, ["max_length"] = context, ["min_length"] = 0, ["num_beams"] = 1, ["num_return_sequences"] = 1,
            // Past and present stay separate buffers: the graphs append to a cache and write state that aliasing would break.
            ["past_present_share_buffer"] = false, ["repetition_penalty"] = 1.0, ["temperature"] = 1.0, ["top_k"] = 1, ["top_p"] = 1.0,
        };
        return new JsonObject { ["model"] = model, ["search"] = search }.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }
}
