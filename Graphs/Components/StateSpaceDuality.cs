using Recur.Graphs.Ir;

namespace Recur.Graphs;

public sealed partial class GraphBuilder
{
    /// <summary>
    /// Mamba-2's scalar-decay state-space scan (SSD), in float32, as the chunked algorithm of "Transformers are
    /// SSMs" (Dao and Gu, 2024) and mamba_ssm's ssd_combined:
    /// <code>
    /// x [B, T, H, P]   dt [B, T, H] (after softplus and clamp)   A, D [H] (A = -exp(A_log) &lt; 0)
    /// Bm, Cm [B, T, G, N]: head h reads group h / (H / G)     state h [B, H, P, N] (zeros at the start)
    /// h_t = exp(dt_t A) h_{t-1} + dt_t x_t (outer) Bm_t        y_t = h_t . Cm_t + D x_t
    /// </code>
    /// A prompt runs in ceil(T / chunk) chunks of one length L &lt;= chunk, as even as they come (300 positions
    /// with chunk 256 run as 2 x 150, not 256 + a padded 256); the last is padded with dt = 0, which neither
    /// decays nor feeds the state:
    /// <code>
    /// a = dt A, cum = cumsum_l(a)                                   per chunk and head
    /// seg[t, s] = a_{s+1} + ... + a_t (t >= s), -inf above           a cumsum of masked a, never cum_t - cum_s
    /// y_diag = ((Cm Bm^T) * exp(seg)) @ (dt x)                      within the chunk, as matrix products
    /// S_c = sum_s exp(seg[L-1, s]) (dt x)_s (outer) Bm_s            what chunk c adds to the state
    /// h_{c+1} = exp(cum_{L-1}) h_c + S_c                            a Scan over the chunks (a step for one)
    /// y_off = exp(cum_t) Cm_t . h_c                                 the state entering the chunk, read out
    /// </code>
    /// A decode step (T = 1) takes the recurrence itself instead (<see cref="IfSinglePosition"/>).
    /// Returns (y [B, T, H, P], h after the last position).
    /// </summary>
    public (Value Output, Value State) StateSpaceDuality(Value x, Value dt, Value a, Value bm, Value cm, Value d, Value state, long chunkSize)
    {
        using var _ = Scope("ssd");
        if (chunkSize < 1) throw Error("StateSpaceDuality", $"chunk size {chunkSize}; need at least 1");
        long heads = FixedDim(x, 2), headDim = FixedDim(x, 3), groups = FixedDim(bm, 2), stateSize = FixedDim(bm, 3);
        if (heads % groups != 0) throw Error("StateSpaceDuality", $"{heads} heads do not split into {groups} groups");
        var shape = new SsdShape(heads, groups, headDim, stateSize);
        var results = IfSinglePosition(x, 1,
            step => step.SsdStep(shape, x, dt, a, bm, cm, state),
            chunks => chunks.SsdChunks(shape, x, dt, a, bm, cm, state, chunkSize));
        var y = Add(results[0], Mul(x, Reshape(d, heads, 1)));                       // + D x, D per head
        return (y, results[1]);
    }

    private sealed record SsdShape(long Heads, long Groups, long HeadDim, long StateSize)
    {
        public long HeadsPerGroup => Heads / Groups;
    }

    /// <summary>One position: h = exp(dt A) h + dt x (outer) B, y = h . C, per group of heads.</summary>
    private Value[] SsdStep(SsdShape s, Value x, Value dt, Value a, Value bm, Value cm, Value state)
    {
        long g = s.Groups, hg = s.HeadsPerGroup;
        var dtT = Squeeze(dt, 1);                                                       // [B, H]
        var decay = Reshape(Exp(Mul(dtT, a)), 0, g, hg, 1, 1);                          // [B, G, Hg, 1, 1]
        var dx = Reshape(Mul(Squeeze(x, 1), Unsqueeze(dtT, -1)), 0, g, hg, s.HeadDim, 1); // [B, G, Hg, P, 1]
        var bT = Reshape(bm, 0, g, 1, 1, s.StateSize);                                  // [B, G, 1, 1, N]
        var cT = Reshape(cm, 0, g, 1, s.StateSize, 1);                                  // [B, G, 1, N, 1]
        var h = Add(Mul(decay, Reshape(state, 0, g, hg, s.HeadDim, s.StateSize)), Mul(dx, bT)); // [B, G, Hg, P, N]
        var y = Reshape(MatMul(h, cT), 0, 1, s.Heads, s.HeadDim);                       // [B, 1, H, P]
        return [y, Reshape(h, 0, s.Heads, s.HeadDim, s.StateSize)];
    }

    /// <summary>The chunked form over a whole prompt (see <see cref="StateSpaceDuality"/>).</summary>
    private Value[] SsdChunks(SsdShape s, Value x, Value dt, Value a, Value bm, Value cm, Value state, long chunkSize)
    {
        long g = s.Groups, hg = s.HeadsPerGroup, p = s.HeadDim, n = s.StateSize;
        var length = DimOf(x, 1);                                                       // [1] T
        var count = Div(Add(length, Ints(chunkSize - 1)), Ints(chunkSize));             // ceil(T / chunk_size) chunks
        var chunk = Div(Sub(Add(length, count), Ints(1)), count);                       // L = ceil(T / count) <= chunk_size
        var pad = Sub(Mul(count, chunk), length);                                       // fewer than count positions

        // [B, T, ...] -> [B, nc, G, (Hg,) L, ...]: chunks, then heads grouped by the B/C group they read.
        Value Chunked(Value v, params long[] rest) =>
            Reshape(Pad(v, Concat(0, Ints(new long[v.Rank + 1]), pad, Ints(new long[v.Rank - 2]))), Concat(0, Ints(0, -1), chunk, Ints(rest)));
        var xc = Reshape(Transpose(Chunked(x, s.Heads, p), 0, 1, 3, 2, 4), 0, 0, g, hg, -1, p);        // [B, nc, G, Hg, L, P]
        var dtc = Reshape(Transpose(Chunked(dt, s.Heads), 0, 1, 3, 2), 0, 0, g, hg, -1);              // [B, nc, G, Hg, L]
        var bc = Unsqueeze(Transpose(Chunked(bm, g, n), 0, 1, 3, 2, 4), 3);                           // [B, nc, G, 1, L, N]
        var cc = Unsqueeze(Transpose(Chunked(cm, g, n), 0, 1, 3, 2, 4), 3);                           // [B, nc, G, 1, L, N]

        var logDecay = Mul(dtc, Reshape(a, g, hg, 1));                                  // dt A [B, nc, G, Hg, L]
        var cum = CumSum(logDecay, -1);
        // seg[t, s] = sum of a over s < k <= t: a cumsum over t of a_t kept where t > s; exp(-inf) = 0 above the diagonal.
        var position = Range(Constant(0L), Squeeze(chunk, 0), Constant(1L));            // [L]
        Value row = Unsqueeze(position, 1), column = Unsqueeze(position, 0);
        var seg = CumSum(Where(Greater(row, column), Unsqueeze(logDecay, -1), Constant(0f)), -2);  // [B, nc, G, Hg, L, L]
        var decayMatrix = Exp(Where(GreaterOrEqual(row, column), seg, Constant(float.NegativeInfinity)));

        var dx = Mul(xc, Unsqueeze(dtc, -1));                                           // dt x [B, nc, G, Hg, L, P]
        var scores = MatMul(cc, Transpose(bc, 0, 1, 2, 3, 5, 4));                       // C B^T [B, nc, G, 1, L, L]
        var yDiag = MatMul(Mul(scores, decayMatrix), dx);                               // [B, nc, G, Hg, L, P]

        var toEnd = Exp(Slice(seg, [-1], [long.MaxValue], [-2]));                       // exp(seg[L-1, s]) [B, nc, G, Hg, 1, L]
        var chunkStates = MatMul(Mul(Transpose(dx, 0, 1, 2, 3, 5, 4), toEnd), bc);      // [B, nc, G, Hg, P, N]
        var chunkDecay = Unsqueeze(Exp(Slice(cum, [-1], [long.MaxValue], [-1])), -1);   // [B, nc, G, Hg, 1, 1]

        var passed = ScanOrSingleStep([Reshape(state, 0, g, hg, p, n)], [chunkDecay, chunkStates], [1, 1], (b, h, c) =>
            new ScanStep([b.Add(b.Mul(c[0], h[0]), c[1])], [b.Identity(h[0])]), scanOutputAxes: [1]);
        var entering = passed[1];                                                       // the state before each chunk [B, nc, G, Hg, P, N]
        var yOff = Mul(MatMul(cc, Transpose(entering, 0, 1, 2, 3, 5, 4)), Unsqueeze(Exp(cum), -1)); // [B, nc, G, Hg, L, P]

        var y = Transpose(Reshape(Add(yDiag, yOff), 0, 0, s.Heads, -1, p), 0, 1, 3, 2, 4); // [B, nc, L, H, P]
        y = Slice(Reshape(y, 0, -1, s.Heads, p), Ints(0), length, [1]);                 // [B, T, H, P]
        return [y, Reshape(passed[0], 0, s.Heads, p, n)];
    }

    private long FixedDim(Value v, int axis) =>
        v[axis].Size ?? throw Error("StateSpaceDuality", $"dim {axis} of {v} must be known while building");
}
