namespace Recur.Graphs.Weights;

/// <summary>
/// Block-wise integer matrix weights, as com.microsoft MatMulNBits reads them. A matrix W [N, K] (Hugging Face's
/// nn.Linear layout: N outputs, K inputs) is cut along K into blocks of <see cref="BlockSize"/>; each block of each
/// row has one float32 scale (and, asymmetric, one zero point):
/// <code>
/// w[n, k] ~ (code[n, k] - zero[n, k / block]) * scale[n, k / block]       code in [0, 2^bits - 1]
/// symmetric:  zero = 2^(bits-1); scale = m / -2^(bits-1), m the block's value of largest magnitude (sign kept),
///             so m itself is exact (code 0) and all 2^bits codes are used, as llama.cpp's Q4_0
/// asymmetric: range [min(0, lo), max(0, hi)] over 2^bits - 1 steps; zero = round(-min / scale), so 0 stays exact
/// </code>
/// K that is not a multiple of the block size is padded with zeros in the last block (code = zero point).
/// </summary>
public sealed record WeightQuantization
{
    public WeightQuantization(int bits, int blockSize = 32, bool symmetric = true, int accuracyLevel = 4, int? headBits = null)
    {
        if (headBits is int hb && hb is not (4 or 8)) throw new ArgumentOutOfRangeException(nameof(headBits), hb, "the lm_head is quantised to 4 or 8 bits");
        if (bits is not (4 or 8)) throw new ArgumentOutOfRangeException(nameof(bits), bits, "weights are quantised to 4 or 8 bits");
        // MatMulNBits: a power of two, at least 16.
        if (blockSize < 16 || (blockSize & (blockSize - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, "the block size must be a power of two >= 16");
        if (accuracyLevel is < 0 or > 4) throw new ArgumentOutOfRangeException(nameof(accuracyLevel), accuracyLevel, "accuracy_level is 0 to 4");
        Bits = bits;
        BlockSize = blockSize;
        Symmetric = symmetric;
        AccuracyLevel = accuracyLevel;
        HeadBits = headBits ?? bits;
    }

    public int Bits { get; }
    public int BlockSize { get; }
    public bool Symmetric { get; }
    /// <summary>
    /// MatMulNBits' accuracy_level: 0 multiplies in float32, 4 lets the CPU quantise activations to int8 per block.
    /// 4 by default: on a 768-wide RWKV with 2 threads it decoded int4 1.8x faster than 0, and ONNX Runtime 1.30's
    /// CPU kernel for 8 bits at level 0 took ~0.5 s per token (a slow fallback) against ~12 ms at level 4.
    /// </summary>
    public int AccuracyLevel { get; }
    /// <summary>Bits of the lm_head (output projection), which may be kept wider than the other matrices.</summary>
    public int HeadBits { get; }

    /// <summary>The policy for the lm_head: <see cref="HeadBits"/> bits, the rest alike.</summary>
    public WeightQuantization ForHead() => HeadBits == Bits ? this : new(HeadBits, BlockSize, Symmetric, AccuracyLevel);

    /// <summary>"int4" or "int8", as recur.json and models.json name the dtype.</summary>
    public string Name => $"int{Bits}";
    public long Blocks(long k) => (k + BlockSize - 1) / BlockSize;
    /// <summary>Bytes of one block's codes.</summary>
    public int BlobSize => BlockSize * Bits / 8;
    /// <summary>Bytes of one row's packed zero points (codes of <see cref="Bits"/> bits, low bits first).</summary>
    public long ZeroPointBytes(long k) => (Blocks(k) * Bits + 7) / 8;
    private int MaxCode => (1 << Bits) - 1;
    private int MidCode => 1 << (Bits - 1);

    /// <summary>Quantises a row-major [n, k] float32 matrix.</summary>
    public QuantizedMatrix Quantize(ReadOnlySpan<float> w, long n, long k)
    {
        if (w.Length != n * k) throw new ArgumentException($"{w.Length} values for a [{n}, {k}] matrix", nameof(w));
        long blocks = Blocks(k);
        var codes = new byte[n * blocks * BlobSize];
        var scales = new float[n * blocks];
        var zeros = Symmetric ? null : new byte[n * ZeroPointBytes(k)];
        var block = new int[BlockSize];
        for (long row = 0; row < n; row++)
            for (long b = 0; b < blocks; b++)
            {
                long start = b * BlockSize, count = Math.Min(BlockSize, k - start);
                var values = w.Slice((int)(row * k + start), (int)count);
                var (scale, zero) = Symmetric ? SymmetricRange(values) : AsymmetricRange(values);
                for (int i = 0; i < BlockSize; i++)
                    block[i] = i < count && scale != 0 ? Math.Clamp((int)MathF.Round(values[i] / scale) + zero, 0, MaxCode) : zero;
                Pack(block, codes.AsSpan((int)((row * blocks + b) * BlobSize), BlobSize));
                scales[row * blocks + b] = scale;
                if (zeros is not null) PutCode(zeros.AsSpan((int)(row * ZeroPointBytes(k))), (int)b, zero);
            }
        return new QuantizedMatrix(codes, scales, zeros);
    }

    private (float Scale, int Zero) SymmetricRange(ReadOnlySpan<float> values)
    {
        float extreme = 0;
        foreach (float v in values)
            if (MathF.Abs(v) > MathF.Abs(extreme)) extreme = v;
        return (extreme / -MidCode, MidCode);
    }

    private (float Scale, int Zero) AsymmetricRange(ReadOnlySpan<float> values)
    {
        float lo = 0, hi = 0;
        foreach (float v in values)
        {
            lo = MathF.Min(lo, v);
            hi = MathF.Max(hi, v);
        }
        float scale = (hi - lo) / MaxCode;
        return (scale, scale == 0 ? 0 : Math.Clamp((int)MathF.Round(-lo / scale), 0, MaxCode));
    }

    private void Pack(ReadOnlySpan<int> block, Span<byte> blob)
    {
        for (int i = 0; i < block.Length; i++) PutCode(blob, i, block[i]);
    }

    /// <summary>Writes code number <paramref name="index"/> of <see cref="Bits"/> bits, low bits of a byte first.</summary>
    private void PutCode(Span<byte> bytes, int index, int code)
    {
        if (Bits == 8) { bytes[index] = (byte)code; return; }
        int shift = index % 2 * 4;
        bytes[index / 2] = (byte)(bytes[index / 2] & ~(0xF << shift) | code << shift);
    }

    private int GetCode(ReadOnlySpan<byte> bytes, int index) =>
        Bits == 8 ? bytes[index] : bytes[index / 2] >> (index % 2 * 4) & 0xF;

    /// <summary>The float32 matrix [n, k] that a quantised one stands for: (code - zero) * scale, padding dropped.</summary>
    public float[] Dequantize(QuantizedMatrix m, long n, long k)
    {
        long blocks = Blocks(k);
        var w = new float[n * k];
        for (long row = 0; row < n; row++)
            for (long col = 0; col < k; col++)
            {
                long b = col / BlockSize;
                int zero = m.ZeroPoints is null ? MidCode : GetCode(m.ZeroPoints.AsSpan((int)(row * ZeroPointBytes(k))), (int)b);
                int code = GetCode(m.Codes.AsSpan((int)((row * blocks + b) * BlobSize), BlobSize), (int)(col % BlockSize));
                w[row * k + col] = (code - zero) * m.Scales[row * blocks + b];
            }
        return w;
    }
}

/// <summary>
/// A quantised [N, K] matrix in MatMulNBits' layout: codes uint8 [N, blocks, blob], scales float32 [N, blocks],
/// zero points (asymmetric only) uint8 [N, ceil(blocks * bits / 8)], packed like the codes.
/// </summary>
public sealed record QuantizedMatrix(byte[] Codes, float[] Scales, byte[]? ZeroPoints);
