using Recur.Graphs.Ir;
using Recur.Graphs.Weights;

namespace Recur.Graphs;

// The recurrences of the recurrent architectures, each over [batch, sequence, channels] with its
// state passed in and out, so one graph serves a whole prompt and a single decode step alike.
public sealed partial class GraphBuilder
{
    /// <summary>
    /// Token shift: each position sees the previous position's x; the first sees <paramref name="previous"/>
    /// (x's last position of the previous call, zeros at the start). Returns the shifted sequence and
    /// the new state (x at the last position).
    /// x: [B, T, C], previous: [B, C].
    /// </summary>
    public (Value Shifted, Value Last) TokenShift(Value x, Value previous)
    {
        using var _ = Scope("TokenShift");
        var shifted = Concat(1, Unsqueeze(previous, 1), Slice(x, [0], [-1], [1]));
        var last = Squeeze(Slice(x, [-1], [long.MaxValue], [1]), 1);
        return (shifted, last);
    }

    /// <summary>
    /// RWKV-4's WKV recurrence with the running-max trick (float32), as Hugging Face's CPU path:
    /// <code>
    /// out_t = (e^(p-q) num + e^(u+k_t-q) v_t) / (e^(p-q) den + e^(u+k_t-q)),  q = max(p, u + k_t)
    /// num' = e^(p+w-q') num + e^(k_t-q') v_t,  den' likewise,  p' = q' = max(p + w, k_t)
    /// </code>
    /// k, v: [B, T, A]; u (time_first) and w (= -exp(time_decay)): [A]; num, den, max: [B, A].
    /// Returns (out [B, T, A], num', den', max').
    /// </summary>
    public (Value Output, Value Num, Value Den, Value Max) WkvScan(Value k, Value v, Value u, Value w, Value num, Value den, Value max)
    {
        using var _ = Scope("Wkv");
        var results = ScanOrSingleStep([num, den, max], [k, v], [1, 1], WkvStep(u, w), scanOutputAxes: [1]);
        return (results[3], results[0], results[1], results[2]);
    }

    /// <summary>
    /// The same recurrence as <see cref="WkvScan"/>, for prompts in chunks of <paramref name="chunk"/> positions computed
    /// in parallel (one position still takes the single step). Unscaled, with N = num e^p (den likewise, v -> 1):
    /// <code>
    /// out_t = (e^(t w) N + sum_{i&lt;t} e^((t-1-i) w) e^(k_i) v_i + e^(u+k_t) v_t) / (same with v -> 1)    t, i within a chunk
    /// N_next = e^(L w) N + sum_{i&lt;L} e^((L-1-i) w + k_i) v_i                                            the chunk's state
    /// </code>
    /// The inner sum is a per-channel [L, L] matrix of decays e^((t-1-i) w) (constant) times e^(k_i - K) v_i, K the chunk's
    /// largest key: a batched MatMul. Each row is then shifted by m_t = max(K, t w + p, u + k_t), so no exp sees a positive
    /// argument and keys past float32's exp range stay exact. Weights flushed to 0 there (below e^-87 of K) are negligible
    /// while every row's own term u + k_t is within e^-<see cref="MaxKeySpread"/> of K; a prompt with a wider spread of keys
    /// within a chunk takes the Scan over positions instead, checked at run time.
    /// Chunk states pass in a Scan over the N = ceil(T / L) chunks; the sequence is padded to N L by repeating its last
    /// position (padding only follows the real positions, so nothing real sees it, and it widens no chunk's keys), and the
    /// final state is the max-shifted sum over the real positions, e^(T w) N + sum_{i&lt;T} e^((T-1-i) w + k_i) v_i.
    /// </summary>
    public (Value Output, Value Num, Value Den, Value Max) WkvChunked(Value k, Value v, Value u, Value w, Value num, Value den, Value max, int chunk)
    {
        if (chunk < 1) throw Error("Wkv", $"chunk length {chunk}, expected at least 1");
        if (k.Shape is not { Count: 3 } || !k.Shape[2].IsFixed) throw Error("Wkv", $"k {k} needs a fixed channel count");
        using var _ = Scope("Wkv");
        var step = WkvStep(u, w);
        var results = SingleStepOr([num, den, max], [k, v], [1, 1], step, [1],
            b => b.WkvChunks(k, v, u, w, num, den, max, chunk, k.Shape[2].Size!.Value, step));
        return (results[3], results[0], results[1], results[2]);
    }

    /// <summary>
    /// How far below a chunk's largest key a row's own exponent u + k_t may lie for the chunked form: what float32 flushes
    /// to 0 (below e^-87 of K) then weighs less than e^-27 of the row, under float32's precision.
    /// </summary>
    public const float MaxKeySpread = 60;

    /// <summary>One position of the WKV recurrence (the Scan's body and the single-step path).</summary>
    private static Func<GraphBuilder, IReadOnlyList<Value>, IReadOnlyList<Value>, ScanStep> WkvStep(Value u, Value w) => (b, state, x) =>
    {
        Value numS = state[0], denS = state[1], maxS = state[2], kT = x[0], vT = x[1];
        var uk = b.Add(kT, u);
        var q = b.Max(maxS, uk);
        var e1 = b.Exp(b.Sub(maxS, q));
        var e2 = b.Exp(b.Sub(uk, q));
        var output = b.Div(b.Add(b.Mul(e1, numS), b.Mul(e2, vT)), b.Add(b.Mul(e1, denS), e2));
        var decayed = b.Add(maxS, w);
        var q2 = b.Max(decayed, kT);
        var f1 = b.Exp(b.Sub(decayed, q2));
        var f2 = b.Exp(b.Sub(kT, q2));
        var numNext = b.Add(b.Mul(f1, numS), b.Mul(f2, vT));
        var denNext = b.Add(b.Mul(f1, denS), f2);
        return new ScanStep([numNext, denNext, q2], [output]);
    };

    /// <summary>WkvChunked's several-position branch: (num', den', max', out), in chunks when the keys allow it, else the Scan.
    /// Chunks are laid out [B, A, N, L] so every sum over positions runs along the last, contiguous axis.</summary>
    private Value[] WkvChunks(Value k, Value v, Value u, Value w, Value num, Value den, Value max, int chunk, long channels,
        Func<GraphBuilder, IReadOnlyList<Value>, IReadOnlyList<Value>, ScanStep> step)
    {
        var length = DimOf(k, 1);                                                     // [1]: T
        var padded = Mul(Div(Add(length, Constant((long)chunk - 1)), Constant((long)chunk)), Constant((long)chunk));
        Value Chunks(Value x) => Reshape(Transpose(chunk == 1 ? x                     // [B, T, A] -> [B, A, N, L]
            : Slice(Pad(x, [0, 0, 0, 0, chunk - 1, 0], mode: "edge"), Constant([0L], [1]), padded, [1]), 0, 2, 1), 0, channels, -1, chunk);
        var kc = Chunks(k);
        var keyMax = ReduceMax(kc, [3], keepDims: false);                                             // [B, A, N]: K
        var spread = Sub(keyMax, ReduceMin(Add(kc, PerChannel(u, 3)), [3], keepDims: false));
        var inRange = LessOrEqual(ReduceMax(spread, [0, 1, 2], keepDims: false), Constant(MaxKeySpread));
        return If(inRange,
            chunked => chunked.WkvInChunks(k, v, u, w, num, den, max, chunk, channels, length, kc, keyMax, Chunks(v)),
            exact => exact.Scan([num, den, max], [k, v], [1, 1], step, scanOutputAxes: [1]));
    }

    private Value[] WkvInChunks(Value k, Value v, Value u, Value w, Value num, Value den, Value max, int chunk, long channels,
        Value length, Value kc, Value keyMax, Value vc)
    {
        // What each chunk adds to the state, max-shifted: (L-1-i) w + k_i.
        var toEnd = Add(Mul(Constant(Ramp(chunk, i => chunk - 1 - i), [chunk]), PerChannel(w, 3)), kc);   // [B, A, N, L]
        var chunkMax = ReduceMax(toEnd, [3], keepDims: false);                                          // [B, A, N]
        var weights = Exp(Sub(toEnd, Unsqueeze(chunkMax, 3)));
        var chunkNum = ReduceSum(Mul(weights, vc), [3], keepDims: false);
        var chunkDen = ReduceSum(weights, [3], keepDims: false);

        // The state before each chunk: a Scan over chunks, not positions.
        var chunkDecay = Mul(w, chunk);
        var pass = Scan([num, den, max], [chunkMax, chunkNum, chunkDen], [2, 2, 2], (b, state, x) =>
        {
            Value numS = state[0], denS = state[1], maxS = state[2];
            var decayed = b.Add(maxS, chunkDecay);
            var q = b.Max(decayed, x[0]);
            var f1 = b.Exp(b.Sub(decayed, q));
            var f2 = b.Exp(b.Sub(x[0], q));
            return new ScanStep([b.Add(b.Mul(f1, numS), b.Mul(f2, x[1])), b.Add(b.Mul(f1, denS), b.Mul(f2, x[2])), q],
                [b.Identity(numS), b.Identity(denS), b.Identity(maxS)]);
        }, scanOutputAxes: [2, 2, 2]);
        Value startNum = pass[3], startDen = pass[4], startMax = pass[5];                             // [B, A, N]

        // Earlier positions of the chunk: decays[a, i, t] = e^((t-1-i) w_a) for i < t, else 0 (-1e38 before the exp).
        var lag = new float[chunk * chunk];
        var later = new float[chunk * chunk];
        for (int i = 0; i < chunk; i++)
            for (int t = 0; t < chunk; t++)
            {
                lag[i * chunk + t] = i < t ? t - 1 - i : 0;
                later[i * chunk + t] = i < t ? 0 : -1e38f;
            }
        var decays = Exp(Add(Mul(Constant(lag, [chunk, chunk]), PerChannel(w, 4)), Constant(later, [chunk, chunk])));  // [A, 1, L, L]
        var alpha = Exp(Sub(kc, Unsqueeze(keyMax, 3)));                                               // e^(k_i - K) <= 1
        var sums = MatMul(Concat(2, Unsqueeze(Mul(alpha, vc), 2), Unsqueeze(alpha, 2)), decays);      // [B, A, 2, N, L]
        var earlierNum = Squeeze(Slice(sums, [0], [1], [2]), 2);
        var earlierDen = Squeeze(Slice(sums, [1], [2], [2]), 2);

        // Each row shifted by its largest exponent among the state's, the earlier keys' bound K and its own.
        var fromState = Add(Mul(Constant(Ramp(chunk, t => t), [chunk]), PerChannel(w, 3)), Unsqueeze(startMax, 3));  // t w + p
        var own = Add(kc, PerChannel(u, 3));                                                          // u + k_t
        var keys = Unsqueeze(keyMax, 3);
        var shift = Max(Max(fromState, own), keys);
        Value eState = Exp(Sub(fromState, shift)), eKeys = Exp(Sub(keys, shift)), eOwn = Exp(Sub(own, shift));
        var numerator = Add(Add(Mul(eState, Unsqueeze(startNum, 3)), Mul(eKeys, earlierNum)), Mul(eOwn, vc));
        var denominator = Add(Add(Mul(eState, Unsqueeze(startDen, 3)), Mul(eKeys, earlierDen)), eOwn);
        var output = Reshape(Div(numerator, denominator), 0, channels, -1);                          // [B, A, N L]
        if (chunk > 1) output = Slice(output, Constant([0L], [1]), length, [2]);
        output = Transpose(output, 0, 2, 1);                                                          // [B, T, A]

        // The final state straight from the real positions: (T-1-i) w + k_i, and T w + p for the state.
        var last = Squeeze(Sub(length, Constant(1L)), 0);
        var toLast = Unsqueeze(Cast(Range(last, Constant(-1L), Constant(-1L)), TensorDType.Float32), 1);  // [T, 1]: T-1-i
        var finalExponents = Add(Mul(toLast, w), k);                                                 // [B, T, A]
        var stateExponent = Add(Mul(Cast(length, TensorDType.Float32), w), max);                     // [B, A]
        var finalMax = Max(ReduceMax(finalExponents, [1], keepDims: false), stateExponent);
        var f = Exp(Sub(finalExponents, Unsqueeze(finalMax, 1)));
        var fState = Exp(Sub(stateExponent, finalMax));
        var finalNum = Add(ReduceSum(Mul(f, v), [1], keepDims: false), Mul(fState, num));
        var finalDen = Add(ReduceSum(f, [1], keepDims: false), Mul(fState, den));
        return [finalNum, finalDen, finalMax, output];
    }

    /// <summary>A per-channel [A] vector as [A, 1, ...] of the given rank, to broadcast against [B, A, N, L] layouts.</summary>
    private Value PerChannel(Value x, int rank) => Reshape(x, [x.Shape![0].Size!.Value, .. Enumerable.Repeat(1L, rank - 1)]);

    private static float[] Ramp(int n, Func<int, int> f) => Enumerable.Range(0, n).Select(i => (float)f(i)).ToArray();
}
