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
    /// out_t = (e^(t w) N + sum_{i&lt;t} e^((t-1-i) w + k_i) v_i + e^(u+k_t) v_t) / (same with v -> 1)    t, i within a chunk
    /// N_next = e^(L w) N + sum_{i&lt;L} e^((L-1-i) w + k_i) v_i                                          the chunk's state
    /// </code>
    /// Every such sum is taken as max-shifted exponents (x_j - m with m the largest of the sum's x_j, the state's
    /// t w + p among them), so no exp sees a positive argument and keys past float32's exp range stay exact.
    /// Per channel the weights form a [L, L] lower-triangular matrix: [B, N, L, L, A] tensors reduced over i.
    /// Chunk states pass in a Scan over the N = ceil(T / L) chunks; the sequence is padded with zeros to N L
    /// (padding only follows the real positions, so nothing real sees it) and the final state is the
    /// max-shifted sum over the real positions, e^(T w) N + sum_{i&lt;T} e^((T-1-i) w + k_i) v_i.
    /// </summary>
    public (Value Output, Value Num, Value Den, Value Max) WkvChunked(Value k, Value v, Value u, Value w, Value num, Value den, Value max, int chunk)
    {
        if (chunk < 1) throw Error("Wkv", $"chunk length {chunk}, expected at least 1");
        if (k.Shape is not { Count: 3 } || !k.Shape[2].IsFixed) throw Error("Wkv", $"k {k} needs a fixed channel count");
        using var _ = Scope("Wkv");
        var results = SingleStepOr([num, den, max], [k, v], [1, 1], WkvStep(u, w), [1],
            b => b.WkvChunks(k, v, u, w, num, den, max, chunk, k.Shape[2].Size!.Value));
        return (results[3], results[0], results[1], results[2]);
    }

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

    /// <summary>WkvChunked's several-position branch: (num', den', max', out).</summary>
    private Value[] WkvChunks(Value k, Value v, Value u, Value w, Value num, Value den, Value max, int chunk, long channels)
    {
        var length = DimOf(k, 1);                                                     // [1]: T
        var padded = Mul(Div(Add(length, Constant((long)chunk - 1)), Constant((long)chunk)), Constant((long)chunk));
        Value Chunks(Value x) => Reshape(chunk == 1 ? x                               // [B, T, A] -> [B, N, L, A]
            : Slice(Pad(x, [0, 0, 0, 0, chunk - 1, 0]), Constant([0L], [1]), padded, [1]), 0, -1, chunk, channels);
        var kc = Chunks(k);
        var vc = Chunks(v);

        // What each chunk adds to the state, max-shifted: (L-1-i) w + k_i.
        var toEnd = Add(Mul(Constant(Ramp(chunk, i => chunk - 1 - i), [chunk, 1]), w), kc);          // [B, N, L, A]
        var chunkMax = ReduceMax(toEnd, [2], keepDims: false);                                        // [B, N, A]
        var weights = Exp(Sub(toEnd, Unsqueeze(chunkMax, 2)));
        var chunkNum = ReduceSum(Mul(weights, vc), [2], keepDims: false);
        var chunkDen = ReduceSum(weights, [2], keepDims: false);

        // The state before each chunk: a Scan over chunks, not positions.
        var chunkDecay = Mul(w, chunk);
        var pass = Scan([num, den, max], [chunkMax, chunkNum, chunkDen], [1, 1, 1], (b, state, x) =>
        {
            Value numS = state[0], denS = state[1], maxS = state[2];
            var decayed = b.Add(maxS, chunkDecay);
            var q = b.Max(decayed, x[0]);
            var f1 = b.Exp(b.Sub(decayed, q));
            var f2 = b.Exp(b.Sub(x[0], q));
            return new ScanStep([b.Add(b.Mul(f1, numS), b.Mul(f2, x[1])), b.Add(b.Mul(f1, denS), b.Mul(f2, x[2])), q],
                [b.Identity(numS), b.Identity(denS), b.Identity(maxS)]);
        }, scanOutputAxes: [1, 1, 1]);
        Value startNum = Unsqueeze(pass[3], 2), startDen = Unsqueeze(pass[4], 2);                      // [B, N, 1, A]

        // Within a chunk: row t weighs position i < t by (t-1-i) w + k_i, itself by u + k_t, later ones by nothing (-1e38,
        // which stays finite through the shift and is 0 after exp); the state enters with t w + p.
        var lag = new float[chunk * chunk];
        var diagonal = new float[chunk * chunk];
        var later = new float[chunk * chunk];
        for (int t = 0; t < chunk; t++)
            for (int i = 0; i < chunk; i++)
            {
                lag[t * chunk + i] = i < t ? t - 1 - i : 0;
                diagonal[t * chunk + i] = i == t ? 1 : 0;
                later[t * chunk + i] = i > t ? -1e38f : 0;
            }
        var bias = Add(Add(Mul(Constant(lag, [chunk, chunk, 1]), w), Mul(Constant(diagonal, [chunk, chunk, 1]), u)),
            Constant(later, [chunk, chunk, 1]));                                                       // [L, L, A]
        var exponents = Add(bias, Unsqueeze(kc, 2));                                                  // [B, N, L, L, A]
        var fromState = Add(Mul(Constant(Ramp(chunk, t => t), [chunk, 1]), w), Unsqueeze(pass[5], 2)); // [B, N, L, A]
        var shift = Max(ReduceMax(exponents, [3], keepDims: false), fromState);
        var e = Exp(Sub(exponents, Unsqueeze(shift, 3)));
        var eState = Exp(Sub(fromState, shift));
        var numerator = Add(ReduceSum(Mul(e, Unsqueeze(vc, 2)), [3], keepDims: false), Mul(eState, startNum));
        var denominator = Add(ReduceSum(e, [3], keepDims: false), Mul(eState, startDen));
        var output = Reshape(Div(numerator, denominator), 0, -1, channels);
        if (chunk > 1) output = Slice(output, Constant([0L], [1]), length, [1]);                    // [B, T, A]

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

    private static float[] Ramp(int n, Func<int, int> f) => Enumerable.Range(0, n).Select(i => (float)f(i)).ToArray();
}
