using Recur.Graphs.Ir;
using Recur.Graphs.Weights;

namespace Recur.Graphs;

public sealed partial class GraphBuilder
{
    /// <summary>
    /// Integer matrix weights (int8 or int4, block-wise), or null for float weights in <see cref="MatrixWeightType"/>.
    /// Applies to every nn.Linear and the lm_head; embedding gathers, norms, convolutions, the scans' parameters
    /// (RG-LRU's block-diagonal gates included) and Switch's router stay float32: they are pulled as plain weights.
    /// </summary>
    public WeightQuantization? Quantization { get; init; }

    /// <summary>
    /// com.microsoft MatMulNBits: a [.., K] float32 times the dequantised W^T of a block-quantised W [N, K]
    /// (codes uint8 [N, blocks, blob], scales float32 [N, blocks], optional packed zero points).
    /// </summary>
    public Value MatMulNBits(Value a, Value codes, Value scales, Value? zeroPoints, long k, long n, int bits, int blockSize, int accuracyLevel = 0)
    {
        RequireType(a, TensorDType.Float32, "MatMulNBits");
        RequireType(codes, TensorDType.UInt8, "MatMulNBits");
        RequireType(scales, TensorDType.Float32, "MatMulNBits");
        if (!a[-1].CompatibleWith(k)) throw Error("MatMulNBits", $"{a} does not end in K = {k}");
        long blocks = (k + blockSize - 1) / blockSize;
        long[] expected = [n, blocks, blockSize * bits / 8];
        if (codes.Shape is { } cs && (cs.Count != 3 || cs.Zip(expected).Any(p => !p.First.CompatibleWith(p.Second))))
            throw Error("MatMulNBits", $"codes are {codes} but N = {n}, K = {k}, {bits} bits in blocks of {blockSize} need [{n}, {blocks}, {blockSize * bits / 8}]");
        var shape = a.Shape is null ? null : a.Shape.Take(a.Rank - 1).Append(n).ToList();
        return Emit1("MatMulNBits", [a, codes, scales, zeroPoints], TensorDType.Float32, shape,
            [Attr("K", k), Attr("N", n), Attr("bits", (long)bits), Attr("block_size", (long)blockSize), Attr("accuracy_level", (long)accuracyLevel)],
            domain: MicrosoftDomain);
    }

    /// <summary>
    /// x W^T for a [out, in] checkpoint matrix quantised at conversion by <see cref="Quantization"/>
    /// (<paramref name="scale"/> folded into W first). W keeps Hugging Face's [out, in] layout, which is MatMulNBits' [N, K].
    /// </summary>
    /// <param name="policy">The quantisation if not the graph's (e.g. the lm_head's).</param>
    public Value QuantizedMatMul(Value x, string weightName, long inFeatures, long outFeatures, float scale = 1f, WeightQuantization? policy = null)
    {
        var q = policy ?? Quantization ?? throw Error("MatMulNBits", "the graph has no weight quantisation");
        var puller = RequireWeights();
        puller.Entry(weightName, [outFeatures, inFeatures]);
        long blocks = q.Blocks(inFeatures);
        // The codes, scales and zero points are written one after another; quantise once for all three.
        var once = new QuantizedOnce(() =>
        {
            var w = puller.Read(weightName);
            if (scale != 1f)
                for (int i = 0; i < w.Length; i++) w[i] *= scale;
            return q.Quantize(w, outFeatures, inFeatures);
        }, q.Symmetric ? 2 : 3);
        var codes = Initializer($"{weightName}.q{q.Bits}", TensorDType.UInt8, [outFeatures, blocks, q.BlobSize], () => once.Take().Codes);
        var scales = Initializer($"{weightName}.scales", TensorDType.Float32, [outFeatures, blocks],
            () => TensorBytes.FromFloat32(once.Take().Scales, TensorDType.Float32));
        var zeros = q.Symmetric ? null
            : Initializer($"{weightName}.zero_points", TensorDType.UInt8, [outFeatures, q.ZeroPointBytes(inFeatures)], () => once.Take().ZeroPoints!);
        return MatMulNBits(x, codes, scales, zeros, inFeatures, outFeatures, q.Bits, q.BlockSize, q.AccuracyLevel);
    }

    /// <summary>Computes a value on first use and forgets it after <c>uses</c> takes, so a conversion holds one matrix at a time.</summary>
    private sealed class QuantizedOnce(Func<QuantizedMatrix> compute, int uses)
    {
        private QuantizedMatrix? value;
        private int left;

        public QuantizedMatrix Take()
        {
            if (value is null)
            {
                value = compute();
                left = uses;
            }
            var result = value;
            if (--left == 0) value = null;
            return result;
        }
    }
}
