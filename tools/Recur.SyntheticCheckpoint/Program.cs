// Writes a random-weight checkpoint in Hugging Face layout (config.json + model.safetensors, or shards with
// model.safetensors.index.json) at the shapes DESIGN.md's performance targets name, so benchmarks run on
// realistic sizes without downloads. The values are random, so the logits mean nothing: only speed does.
//
//   synthetic-checkpoint <preset> <output folder> [--shard-mb N] [--seed S] [--untie]
//   --untie: a model whose lm_head is tied to its embedding gets its own lm_head.weight instead (to time one
//   shared [hidden, vocab] table against two copies)
//   presets: rwkv-169m, mamba-130m, mamba2-130m, falcon-mamba-130m, gemma-46m, recurrent-gemma-35m, jamba-tiny-306m, switch-105m
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Recur.SyntheticCheckpoint;

if (args.Length < 2 || !Presets.All.TryGetValue(args[0], out var preset))
{
    Console.Error.WriteLine($"usage: synthetic-checkpoint <{string.Join('|', Presets.All.Keys)}> <output folder> [--shard-mb N] [--seed S]");
    return 2;
}
string output = args[1];
long shardBytes = long.MaxValue;
int seed = 1;
bool untie = false;
for (int a = 2; a < args.Length; a += 2)
{
    if (args[a] == "--untie") { untie = true; a--; continue; }
    if (a + 1 >= args.Length) { Console.Error.WriteLine($"{args[a]} needs a value"); return 2; }
    switch (args[a])
    {
        case "--shard-mb": shardBytes = long.Parse(args[a + 1], CultureInfo.InvariantCulture) << 20; break;
        case "--seed": seed = int.Parse(args[a + 1], CultureInfo.InvariantCulture); break;
        default: Console.Error.WriteLine($"unknown option {args[a]}"); return 2;
    }
}

var (config, tensors) = preset();
if (untie)
{
    var table = tensors.FirstOrDefault(t => t.Name.EndsWith("embeddings.weight", StringComparison.Ordinal) || t.Name == "model.embed_tokens.weight");
    if (table is null || config["tie_word_embeddings"]?.GetValue<bool>() == false) { Console.Error.WriteLine($"{args[0]} has no tied lm_head"); return 2; }
    config["tie_word_embeddings"] = false;
    tensors.Add(table with { Name = "lm_head.weight" });
}
Directory.CreateDirectory(output);
File.WriteAllText(Path.Combine(output, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
foreach (var stale in Directory.GetFiles(output, "model*.safetensors*")) File.Delete(stale);

// Greedy sharding in declaration order, as HF's save_pretrained does by size.
var shards = new List<List<TensorSpec>> { new() };
long current = 0;
foreach (var t in tensors)
{
    if (current > 0 && current + t.Bytes > shardBytes) { shards.Add([]); current = 0; }
    shards[^1].Add(t);
    current += t.Bytes;
}
var random = new Normal(seed);
var weightMap = new JsonObject();
for (int s = 0; s < shards.Count; s++)
{
    string file = shards.Count == 1 ? "model.safetensors" : $"model-{s + 1:D5}-of-{shards.Count:D5}.safetensors";
    Safetensors.Write(Path.Combine(output, file), shards[s], random);
    foreach (var t in shards[s]) weightMap[t.Name] = file;
}
if (shards.Count > 1)
{
    var index = new JsonObject
    {
        ["metadata"] = new JsonObject { ["total_size"] = tensors.Sum(t => t.Bytes) },
        ["weight_map"] = weightMap,
    };
    File.WriteAllText(Path.Combine(output, "model.safetensors.index.json"), index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
}
long parameters = tensors.Sum(t => t.Elements);
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"{args[0]}: {parameters / 1e6:F1}M parameters, {tensors.Count} tensors, {shards.Count} file(s) -> {output}"));
return 0;

namespace Recur.SyntheticCheckpoint
{
    /// <summary>How a tensor's values are drawn.</summary>
    internal delegate float Init(Normal random, long index);

    internal sealed record TensorSpec(string Name, long[] Shape, Init Init)
    {
        public long Elements => Shape.Aggregate(1L, (a, d) => a * d);
        public long Bytes => Elements * 4;
    }

    /// <summary>Standard normals from a xorshift generator (Box-Muller); fast enough for 10^8 values.</summary>
    internal sealed class Normal(int seed)
    {
        private ulong state = 0x9E3779B97F4A7C15UL ^ (ulong)seed;
        private float spare = float.NaN;

        public double Uniform()
        {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            return ((state >> 11) + 0.5) * (1.0 / (1UL << 53));
        }

        public float Next()
        {
            if (!float.IsNaN(spare)) { float s = spare; spare = float.NaN; return s; }
            double r = Math.Sqrt(-2 * Math.Log(Uniform())), angle = 2 * Math.PI * Uniform();
            spare = (float)(r * Math.Sin(angle));
            return (float)(r * Math.Cos(angle));
        }
    }

    internal static class Safetensors
    {
        /// <summary>A float32 safetensors file: 8-byte header length, JSON header, then the tensors back to back.</summary>
        public static void Write(string path, IReadOnlyList<TensorSpec> tensors, Normal random)
        {
            var header = new JsonObject { ["__metadata__"] = new JsonObject { ["format"] = "pt" } };
            long offset = 0;
            foreach (var t in tensors)
            {
                header[t.Name] = new JsonObject
                {
                    ["dtype"] = "F32",
                    ["shape"] = new JsonArray(t.Shape.Select(d => (JsonNode)d).ToArray()),
                    ["data_offsets"] = new JsonArray(offset, offset + t.Bytes),
                };
                offset += t.Bytes;
            }
            var json = Encoding.UTF8.GetBytes(header.ToJsonString());
            int padded = (json.Length + 7) / 8 * 8; // the format allows trailing spaces; 8-byte alignment helps readers
            using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
            file.Write(BitConverter.GetBytes((ulong)padded));
            file.Write(json);
            for (int i = json.Length; i < padded; i++) file.WriteByte((byte)' ');
            var buffer = new float[1 << 16];
            foreach (var t in tensors)
            {
                for (long start = 0; start < t.Elements; start += buffer.Length)
                {
                    int n = (int)Math.Min(buffer.Length, t.Elements - start);
                    for (int i = 0; i < n; i++) buffer[i] = t.Init(random, start + i);
                    file.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(buffer.AsSpan(0, n)));
                }
            }
        }
    }
}
