using Recur.Graphs.Ir;

namespace Recur.Graphs;

public sealed partial class GraphBuilder
{
    /// <summary>
    /// Mamba's selective state-space scan (S6), in float32, as Hugging Face's MambaMixer.slow_forward:
    /// <code>
    /// x, dt [B, T, I]  (dt already softplus'ed)      A [I, N] (= -exp(A_log))      D [I]
    /// Bm, Cm [B, T, N]                               state h [B, I, N] (zeros at the start)
    /// h_t = exp(dt_t * A) * h_{t-1} + (dt_t * x_t) * Bm_t       per channel i and state n
    /// y_t = h_t . Cm_t + D * x_t                                 [B, I]
    /// </code>
    /// Returns (y [B, T, I], h after the last position).
    /// Only the two lines that depend on h run per step: exp(dt * A) and dt * x * B do not, so they
    /// are computed for all positions at once as [B, T, I, N] tensors before the Scan (one large
    /// Exp and Mul instead of a dozen small nodes per step; the body is Mul, Add, MatMul).
    /// </summary>
    public (Value Output, Value State) SelectiveScan(Value x, Value dt, Value a, Value bm, Value cm, Value d, Value state)
    {
        using var _ = Scope("selective_scan");
        var decay = Exp(Mul(Unsqueeze(dt, -1), a));                        // [B, T, I, N]
        var input = Mul(Unsqueeze(Mul(dt, x), -1), Unsqueeze(bm, 2));     // [B, T, I, N]
        var readout = Unsqueeze(cm, -1);                                   // [B, T, N, 1]
        var results = Scan([state], [decay, input, readout], [1, 1, 1], (s, h, step) =>
        {
            var next = s.Add(s.Mul(step[0], h[0]), step[1]);               // [B, I, N]
            return new ScanStep([next], [s.MatMul(next, step[2])]);        // y_t [B, I, 1]
        }, scanOutputAxes: [1]);
        var y = Squeeze(results[1], -1);                                   // [B, T, I]
        return (Add(y, Mul(x, d)), results[0]);
    }
}
