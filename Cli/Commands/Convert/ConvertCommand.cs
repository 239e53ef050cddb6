using System.CommandLine;
using Recur.Cli.Common;
using Recur.Graphs;

namespace Recur.Cli.Commands.Convert;

/// <summary>`recur convert`: its options; the work is in <see cref="ConvertExecution"/>.</summary>
internal static class ConvertCommand
{
    public static Command Create(CliContext context)
    {
        var checkpoint = new Argument<string>("checkpoint") { Description = "Hugging Face checkpoint folder (config.json + safetensors or PyTorch weights), or a model id ORG/NAME in the local Hugging Face cache" };
        var revision = new Option<string?>("--revision") { Description = "Branch, tag or commit of a model id in the Hugging Face cache (default: main)" };
        var output = new Option<string>("--output", "-o") { Description = "Package folder to write: new or empty, or with --force a Recur package to replace atomically", Required = true };
        var dtype = new Option<string>("--dtype") { Description = "Matrix weight type: fp32, fp16, bf16, or int8 / int4 (block-wise, MatMulNBits); norms, softmax, exp, soft caps and embedding gathers stay fp32", DefaultValueFactory = _ => "fp32" };
        dtype.AcceptOnlyFromAmong("fp32", "fp16", "bf16", "int8", "int4");
        var blockSize = new Option<int>("--block-size") { Description = "int8 / int4: weights per quantisation block along the input dimension (a power of two >= 16)", DefaultValueFactory = _ => 32 };
        var zeroPoints = new Option<bool>("--zero-points") { Description = "int8 / int4: asymmetric blocks (a zero point per block) instead of symmetric ones" };
        var headBits = new Option<int?>("--head-bits") { Description = "int8 / int4: bits of the lm_head (4 or 8; default: as --dtype)" };
        var accuracy = new Option<int>("--accuracy-level") { Description = "int8 / int4: MatMulNBits accuracy_level (0 float32 activations, 4 int8 activations: the fast CPU kernels)", DefaultValueFactory = _ => 4 };
        var opset = new Option<int>("--opset") { Description = $"ONNX opset ({GraphBuilder.MinOpset}-{GraphBuilder.MaxOpset})", DefaultValueFactory = _ => GraphBuilder.DefaultOpset };
        var external = new Option<string>("--external-data") { Description = "Weights in model.onnx.data: auto (past 1 GiB), always, never", DefaultValueFactory = _ => "auto" };
        external.AcceptOnlyFromAmong("auto", "always", "never");
        var wkvChunk = new Option<int?>("--wkv-chunk") { Description = $"RWKV-4: positions per chunk of the parallel WKV for prompts, 0 for the Scan over positions (default {Graphs.Architectures.Rwkv.DefaultWkvChunk})" };
        var force = new Option<bool>("--force") { Description = "Replace the Recur package in the output folder (refused if the folder holds anything but package files)" };
        var allowNonFinite = new Option<bool>("--allow-nonfinite") { Description = "Convert weights holding NaN or infinity as they are (refused by default, naming the tensor)" };
        var noVerify = new Option<bool>("--no-verify") { Description = "Skip loading the package in ONNX Runtime after writing it" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Print nothing but errors" };
        var kvDType = new Option<string>("--kv-dtype")
        {
            Description = "Storage of growing attention caches: fp32 (default) or fp16 (half the memory and copies; gemma, gemma2, jamba)",
            DefaultValueFactory = _ => "fp32",
        };
        var kvCache = new Option<int?>("--kv-cache-length")
        {
            Description = "Gemma / Gemma 2: key/value caches as buffers of this many positions written in place (no copy of the cache per step; no genai_config.json). Default: caches that grow by Concat",
        };
        var runtime = new RuntimeOptions();

        var command = new Command("convert", "Convert a Hugging Face checkpoint folder into a Recur package (ONNX graph with explicit state + recur.json)")
        {
            checkpoint, output, revision, dtype, blockSize, zeroPoints, headBits, accuracy, opset, external, wkvChunk, kvCache, kvDType, force, allowNonFinite, noVerify, quiet,
        };
        runtime.AddTo(command);
        command.SetAction(result => Verbs.Guard(context, () => ConvertExecution.Run(new ConvertRequest(
            result.GetValue(checkpoint)!, result.GetValue(output)!, result.GetValue(dtype)!, result.GetValue(opset),
            result.GetValue(external)!, result.GetValue(force), !result.GetValue(noVerify), result.GetValue(quiet), result.GetValue(revision))
            {
                BlockSize = result.GetValue(blockSize), ZeroPoints = result.GetValue(zeroPoints), AccuracyLevel = result.GetValue(accuracy), HeadBits = result.GetValue(headBits), AllowNonFinite = result.GetValue(allowNonFinite),
                WkvChunk = result.GetValue(wkvChunk), KvCacheLength = result.GetValue(kvCache), KvDType = result.GetValue(kvDType) ?? "fp32",
            }, runtime, result, context)));
        return command;
    }
}

internal sealed record ConvertRequest(string Checkpoint, string Output, string DType, int Opset, string ExternalData, bool Force, bool Verify, bool Quiet, string? Revision = null)
{
    public int BlockSize { get; init; } = 32;
    public bool ZeroPoints { get; init; }
    public int AccuracyLevel { get; init; } = 4;
    public int? HeadBits { get; init; }
    public int? WkvChunk { get; init; }
    public bool AllowNonFinite { get; init; }
    public int? KvCacheLength { get; init; }
    public string KvDType { get; init; } = "fp32";
}
