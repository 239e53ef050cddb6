using System.Globalization;
using System.Text.Json;
using Recur.Cli.Common;
using Recur.Cli.Golden;
using Recur.Export.Checkpoints;
using Recur.Runtime.Execution;
using Recur.Runtime.Generation;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Recur.Runtime.Ort;

namespace Recur.Cli.Commands.Validate;

internal static class ValidateExecution
{
    public sealed record Comparison(string Tensor, double MaxAbsDiff, int Top1Agree, int Positions)
    {
        public double Top1 => Positions == 0 ? 1 : (double)Top1Agree / Positions;
    }

    public static int Run(string packagePath, string expectedPath, double? atol, int? split, bool json, SessionConfig config, CliContext context)
    {
        // NaN would compare false both ways and pass or fail nothing for a reason.
        if (atol is double a && !(a >= 0 && double.IsFinite(a))) throw new UsageException($"--atol {a}: expected a finite number >= 0");
        using var runner = ModelRunner.Open(packagePath, config);
        RuntimeOptions.ReportWarnings(runner.Warnings, context);
        double tolerance = atol ?? ModelsCatalog.Load().Tolerance(runner.Package.ModelType, runner.Package.DType);
        var sets = GoldenInputs.Read(expectedPath, runner.Package.IsEncoderDecoder);
        var comparisons = new List<Comparison>();
        using (var expected = SafetensorsFile.Open(expectedPath))
        {
            foreach (var set in sets)
            {
                if (!expected.TryGetEntry(set.LogitsName, out var entry))
                    throw new InvalidDataException($"{expectedPath}: has inputs for '{set.LogitsName}' but no such reference tensor");
                var logits = GoldenInputs.Run(runner, set, split);
                long[] shape = [logits.Batch, logits.Length, logits.Vocab];
                if (!entry.Shape.SequenceEqual(shape))
                    throw new InvalidDataException($"{expectedPath}: '{set.LogitsName}' is [{string.Join(", ", entry.Shape)}] but the package gives [{string.Join(", ", shape)}]");
                comparisons.Add(Compare(set.LogitsName, logits, expected.ReadFloat32(set.LogitsName)));
            }
        }
        double worst = comparisons.Max(c => c.MaxAbsDiff);
        double top1 = (double)comparisons.Sum(c => c.Top1Agree) / comparisons.Sum(c => c.Positions);
        bool pass = worst <= tolerance;
        if (json)
        {
            context.Out.WriteLine(JsonSerializer.Serialize(new
            {
                package = packagePath, expected = expectedPath, split, atol = tolerance, pass, max_abs_diff = worst, top1,
                onnxruntime = new { version = OrtLibrary.Version, library = OrtLibrary.LibraryPath, provider = runner.ExecutionProvider },
                tensors = comparisons.Select(c => new { name = c.Tensor, max_abs_diff = c.MaxAbsDiff, top1 = c.Top1, positions = c.Positions }),
            }, new JsonSerializerOptions { WriteIndented = true }));
        }
        else
        {
            foreach (var c in comparisons)
                context.Out.WriteLine($"{c.Tensor}: max_abs_diff={Format(c.MaxAbsDiff)} top1={c.Top1.ToString("0.####", CultureInfo.InvariantCulture)} ({c.Positions} positions)");
            context.Out.WriteLine($"{(pass ? "PASS" : "FAIL")} atol={Format(tolerance)}{(split is null ? "" : $" split={split}")}");
            context.Out.WriteLine($"max_abs_diff={Format(worst)} top1={top1.ToString("0.####", CultureInfo.InvariantCulture)}");
        }
        return pass ? ExitCodes.Ok : ExitCodes.Failed;
    }

    public static Comparison Compare(string name, Runtime.Execution.Logits actual, float[] expected)
    {
        double max = 0;
        int agree = 0, positions = actual.Batch * actual.Length;
        for (int p = 0; p < positions; p++)
        {
            var a = actual.Data.AsSpan(p * actual.Vocab, actual.Vocab);
            var e = expected.AsSpan(p * actual.Vocab, actual.Vocab);
            for (int i = 0; i < a.Length; i++)
            {
                double d = Math.Abs((double)a[i] - e[i]);
                if (double.IsNaN(d)) d = double.PositiveInfinity; // a NaN never passes
                if (d > max) max = d;
            }
            if (Sampler.ArgMax(a) == Sampler.ArgMax(e)) agree++;
        }
        return new Comparison(name, max, agree, positions);
    }

    private static string Format(double v) => v.ToString("0.###e+0", CultureInfo.InvariantCulture);
}
