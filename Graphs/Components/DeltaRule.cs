using Recur.Graphs.Ir;

namespace Recur.Graphs;

public sealed partial class GraphBuilder
{
    /// <summary>
    /// The generalised delta rule of RWKV-7 (BlinkDL's x070 time mixing; fla's rwkv7 kernels), per head, in float32:
    /// <code>
    /// S_t = S_{t-1} diag(w_t) + (S_{t-1} a_t) b_t^T + v_t k_t^T        S [N value, N key]
    /// y_t = S_t r_t
    /// </code>
    /// RWKV-7 feeds a = -kk and b = kk * a_rate (kk the normalised key, a_rate the in-context learning rate).
    /// r, w, k, v, a, b: [B, T, H * N]; state: [B, H, N, N] indexed [batch, head, value i, key j].
    /// Returns (y [B, T, H * N], the state after the last position).
    /// The vectors are laid out once as rows [.., 1, N] or columns [.., N, 1] outside the step, so the
    /// step is two MatMuls over [N, N] and three broadcast products.
    /// </summary>
    public (Value Output, Value State) DeltaRuleScan(Value r, Value w, Value k, Value v, Value a, Value b, Value state, long heads, long headSize)
    {
        using var _ = Scope("delta_rule");
        Value Row(Value x) => Reshape(x, 0, 0, heads, 1, headSize);       // [B, T, H, 1, N]
        Value Column(Value x) => Reshape(x, 0, 0, heads, headSize, 1);    // [B, T, H, N, 1]
        var results = ScanOrSingleStep([state], [Column(r), Row(w), Row(k), Column(v), Column(a), Row(b)], [1, 1, 1, 1, 1, 1],
            (s, st, x) =>
            {
                Value rT = x[0], wT = x[1], kT = x[2], vT = x[3], aT = x[4], bT = x[5];
                var sa = s.MatMul(st[0], aT);                                                    // [B, H, N, 1]
                var next = s.Add(s.Add(s.Mul(st[0], wT), s.Mul(sa, bT)), s.Mul(vT, kT));      // [B, H, N, N]
                return new ScanStep([next], [s.MatMul(next, rT)]);                               // y_t [B, H, N, 1]
            }, scanOutputAxes: [1]);
        return (Reshape(results[1], 0, 0, heads * headSize), results[0]);
    }
}
