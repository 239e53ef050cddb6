using System.Text.Json.Nodes;
using Recur.Export.Checkpoints;
using Recur.Package.Tensors;

namespace Recur.Tests.Support;

/// <summary>A writable copy of a golden checkpoint, for tests that break it on purpose.</summary>
public sealed class TempCheckpoint : IDisposable
{
    private TempCheckpoint(string path) => Path = path;

    public string Path { get; }

    public static TempCheckpoint CopyOf(string caseName)
    {
        string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"recur-ckpt-{caseName}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(path);
        foreach (var file in Directory.GetFiles(GoldenCases.Dir(caseName)))
            File.Copy(file, System.IO.Path.Combine(path, System.IO.Path.GetFileName(file)));
        return new TempCheckpoint(path);
    }

    public void EditConfig(Action<JsonObject> edit)
    {
        string file = System.IO.Path.Combine(Path, "config.json");
        // Python writes float('inf') as a bare Infinity (Mamba-2's time_step_limit), which JsonNode refuses; the
        // converter reads the quoted word the same.
        string text = System.Text.RegularExpressions.Regex.Replace(File.ReadAllText(file), @"(?<=[\[,:]\s*)(-?Infinity|NaN)\b", "\"$1\"");
        var config = JsonNode.Parse(text)!.AsObject();
        edit(config);
        File.WriteAllText(file, config.ToJsonString());
    }

    /// <summary>Rewrites model.safetensors without one tensor (float32 checkpoints).</summary>
    public void DropTensor(string name) => Rewrite(tensors => tensors.RemoveAll(t => t.Name == name));

    /// <summary>Rewrites model.safetensors with one more float32 tensor (float32 checkpoints).</summary>
    public void AddTensor(string name, float[] values, params long[] shape) =>
        Rewrite(tensors => tensors.Add(SafetensorsWriter.Tensor.Float32(name, shape, values)));

    private void Rewrite(Action<List<SafetensorsWriter.Tensor>> edit)
    {
        string file = System.IO.Path.Combine(Path, "model.safetensors");
        var tensors = new List<SafetensorsWriter.Tensor>();
        using (var source = SafetensorsFile.Open(file))
        {
            foreach (var n in source.Names)
            {
                source.TryGetEntry(n, out var entry);
                var bytes = new byte[entry.ElementCount * 4];
                source.ReadRaw(n, bytes);
                tensors.Add(new SafetensorsWriter.Tensor(n, "F32", entry.Shape, bytes));
            }
        }
        edit(tensors);
        SafetensorsWriter.Write(file, tensors);
    }

    /// <summary>Converts this checkpoint expecting an input error: exit 2, one line, no package written. Returns the line.</summary>
    public string ConvertFailsWithOneLine()
    {
        var result = CliRunner.Run("convert", Path, "-o", Path + "-out", "--quiet");
        Assert.True(result.Exit == 2, result.ToString());
        Assert.False(Directory.Exists(Path + "-out"));
        return Assert.Single(result.Err.Trim().Split('\n'));
    }

    public void Dispose()
    {
        foreach (var dir in new[] { Path, Path + "-out" })
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }
}
