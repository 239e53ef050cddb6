using System.CommandLine;
using System.Diagnostics;
using Recur.Cli.Common;
using Recur.Export;
using Recur.Graphs;
using Recur.Graphs.Weights;
using Recur.Runtime.Execution;

namespace Recur.Cli.Commands.Convert;

internal static class ConvertExecution
{
    public static int Run(ConvertRequest request, RuntimeOptions runtime, ParseResult parsed, CliContext context)
    {
        if (request.Opset < GraphBuilder.MinOpset || request.Opset > GraphBuilder.MaxOpset)
            throw new UsageException($"--opset {request.Opset} is out of range ({GraphBuilder.MinOpset}-{GraphBuilder.MaxOpset})");
        var quantization = Quantization(request);
        if (request.KvCacheLength is < 1) throw new UsageException($"--kv-cache-length {request.KvCacheLength}: must be at least 1");
        var session = request.Verify ? runtime.Resolve(parsed, context) : null;
        var options = new ConvertOptions
        {
            CheckpointDir = request.Checkpoint,
            Revision = request.Revision,
            OutputDir = request.Output,
            MatrixWeightType = request.DType switch { "fp16" => TensorDType.Float16, "bf16" => TensorDType.BFloat16, _ => TensorDType.Float32 },
            Quantization = quantization,
            Opset = request.Opset,
            WkvChunk = request.WkvChunk,
            ExternalData = request.ExternalData switch { "always" => ExternalDataMode.Always, "never" => ExternalDataMode.Never, _ => ExternalDataMode.Auto },
            Force = request.Force,
            AllowNonFinite = request.AllowNonFinite,
            KvCacheLength = request.KvCacheLength,
            KvCacheType = request.KvDType switch
            {
                "fp32" => TensorDType.Float32,
                "fp16" => TensorDType.Float16,
                _ => throw new UsageException($"--kv-dtype {request.KvDType}: expected fp32 or fp16"),
            },
        };
        var clock = Stopwatch.StartNew();
        Action<string>? progress = request.Quiet ? null : line => context.Err.WriteLine(line);
        var bar = request.Quiet ? null : new ByteProgress(context, "writing weights");
        var result = Converter.Convert(options, verify: session is null ? null : folder =>
        {
            progress?.Invoke("verifying: loading the package in ONNX Runtime and running one token");
            SelfCheck.Run(folder, session, context);
        }, progress, bar is null ? null : bar.Report);
        if (!request.Quiet)
        {
            context.Out.WriteLine($"converted {result.Manifest.ModelType} ({result.Manifest.HfClass}) -> {result.OutputDir}");
            context.Out.WriteLine($"  {result.ParameterCount:N0} parameters, {result.WeightBytes / 1048576.0:F1} MiB of weights ({result.Manifest.DType}), {result.Manifest.State.Count} state tensors, {clock.Elapsed.TotalSeconds:F1} s");
            context.Out.WriteLine($"  files: {string.Join(", ", result.Files)}");
        }
        return ExitCodes.Ok;
    }

    private static WeightQuantization? Quantization(ConvertRequest request)
    {
        int bits = request.DType switch { "int8" => 8, "int4" => 4, _ => 0 };
        if (bits == 0) return null;
        try
        {
            return new WeightQuantization(bits, request.BlockSize, symmetric: !request.ZeroPoints, request.AccuracyLevel, request.HeadBits);
        }
        catch (ArgumentOutOfRangeException e)
        {
            throw new UsageException($"--dtype {request.DType}: {e.Message.Split(" (Parameter")[0]}");
        }
    }
}

/// <summary>Loads a freshly written package and runs one token, so a broken package never replaces a good one.</summary>
internal static class SelfCheck
{
    public static void Run(string folder, Runtime.Ort.SessionConfig config, CliContext context)
    {
        using var runner = ModelRunner.Open(folder, config);
        RuntimeOptions.ReportWarnings(runner.Warnings, context);
        using var state = runner.CreateState(1);
        long start = runner.Package.Generation.DecoderStartTokenId ?? runner.Package.Generation.BosTokenId ?? 0;
        if (runner.Package.IsEncoderDecoder) runner.Encode(state, [start], 1);
        var logits = runner.Forward(state, [start], 1);
        foreach (float v in logits.Data)
            if (!float.IsFinite(v)) throw new InvalidOperationException($"{folder}: the converted model produced a non-finite logit on its first token");
    }
}
