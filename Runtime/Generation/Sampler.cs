namespace Recur.Runtime.Generation;

/// <summary>How the next token is chosen from the logits.</summary>
public sealed record SamplingOptions
{
    /// <summary>0 = greedy (argmax); otherwise logits are divided by it before sampling.</summary>
    public double Temperature { get; init; }
    /// <summary>Keep only the k most likely tokens (0 = all).</summary>
    public int TopK { get; init; }
    /// <summary>Keep the smallest set of tokens whose probability reaches p (1 = all).</summary>
    public double TopP { get; init; } = 1.0;
    /// <summary>Hugging Face's repetition penalty: seen tokens' positive logits are divided by it, negative ones multiplied.</summary>
    public double RepetitionPenalty { get; init; } = 1.0;
    public int? Seed { get; init; }

    public void Validate()
    {
        // Written so NaN fails every test: a NaN temperature would otherwise pick the least likely token.
        if (!(Temperature >= 0 && double.IsFinite(Temperature))) throw new ArgumentException($"--temperature {Temperature}: expected 0 (greedy) or a finite positive number");
        if (TopK < 0) throw new ArgumentException($"--top-k {TopK}: expected 0 (off) or a positive count");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"--top-p {TopP}: expected a number in (0, 1]");
        if (!(RepetitionPenalty > 0 && double.IsFinite(RepetitionPenalty))) throw new ArgumentException($"--repetition-penalty {RepetitionPenalty}: expected a finite positive number (1 = off)");
    }
}

/// <summary>Chooses tokens from logits: greedy, or temperature / top-k / top-p sampling, with a repetition penalty.</summary>
public sealed class Sampler
{
    private readonly SamplingOptions options;
    private readonly Random random;
    private float[] scratch = [];
    private int[] order = [];

    public Sampler(SamplingOptions options)
    {
        options.Validate();
        this.options = options;
        random = options.Seed is int seed ? new Random(seed) : new Random();
    }

    public int Next(ReadOnlySpan<float> logits, IReadOnlyCollection<long>? history = null)
    {
        if (scratch.Length != logits.Length)
        {
            scratch = new float[logits.Length];
            order = new int[logits.Length];
        }
        var scores = scratch.AsSpan();
        logits.CopyTo(scores);
        if (options.RepetitionPenalty != 1.0 && history is not null)
            foreach (long id in history.Distinct())
                if (id >= 0 && id < scores.Length)
                    scores[(int)id] = scores[(int)id] > 0 ? (float)(scores[(int)id] / options.RepetitionPenalty) : (float)(scores[(int)id] * options.RepetitionPenalty);
        if (options.Temperature == 0) return ArgMax(scores);

        for (int i = 0; i < scores.Length; i++) order[i] = i;
        var ids = order.AsSpan();
        var keys = scores.ToArray();
        ids.Sort((a, b) => keys[b].CompareTo(keys[a]));
        int keep = options.TopK > 0 ? Math.Min(options.TopK, ids.Length) : ids.Length;

        // Softmax over the kept tokens at the given temperature, in descending order.
        double max = keys[ids[0]];
        var probs = new double[keep];
        double sum = 0;
        for (int i = 0; i < keep; i++) sum += probs[i] = Math.Exp((keys[ids[i]] - max) / options.Temperature);
        if (options.TopP < 1.0)
        {
            double cumulative = 0;
            for (int i = 0; i < keep; i++)
            {
                cumulative += probs[i] / sum;
                if (cumulative >= options.TopP) { keep = i + 1; break; }
            }
            sum = 0;
            for (int i = 0; i < keep; i++) sum += probs[i];
        }
        double draw = random.NextDouble() * sum;
        for (int i = 0; i < keep; i++)
        {
            draw -= probs[i];
            if (draw <= 0) return ids[i];
        }
        return ids[keep - 1];
    }

    public static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }
}
