using Recur.Graphs.Ir;

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
        var results = ScanOrSingleStep([num, den, max], [k, v], [1, 1], (b, state, x) =>
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
        }, scanOutputAxes: [1]);
        return (results[3], results[0], results[1], results[2]);
    }
}
