namespace Recur.Runtime.Tokenizers;

/// <summary>
/// A tokenizer.json "post_processor": adds the special tokens a model expects around one
/// sequence (a pair of sequences is not needed by Recur's generation).
/// </summary>
internal abstract class PostProcessor
{
    /// <summary>Writes the final ids: <paramref name="sequence"/> with the special tokens, when asked.</summary>
    public abstract void Process(List<int> sequence, bool addSpecialTokens);

    /// <summary>The special token put before the sequence, if exactly one is.</summary>
    public virtual int? LeadingSpecialId => null;

    /// <summary>The special token put after the sequence, if exactly one is.</summary>
    public virtual int? TrailingSpecialId => null;
}

/// <summary>One item of a template: a special token's ids, or the sequence itself.</summary>
internal readonly record struct TemplatePiece(int[]? SpecialIds)
{
    public bool IsSequence => SpecialIds is null;
}

/// <summary>TemplateProcessing's "single" template, e.g. "&lt;bos&gt; $A" or "$A &lt;/s&gt;".</summary>
internal sealed class TemplatePostProcessor(IReadOnlyList<TemplatePiece> single) : PostProcessor
{
    public override void Process(List<int> sequence, bool addSpecialTokens)
    {
        if (!addSpecialTokens)
            return;
        var body = sequence.ToArray();
        sequence.Clear();
        foreach (var piece in single)
        {
            if (piece.IsSequence)
                sequence.AddRange(body);
            else
                sequence.AddRange(piece.SpecialIds!);
        }
    }

    public override int? LeadingSpecialId => single.Count > 1 && single[0].SpecialIds is [var id] && single[1].IsSequence ? id : null;

    public override int? TrailingSpecialId => single.Count > 1 && single[^1].SpecialIds is [var id] && single[^2].IsSequence ? id : null;
}

/// <summary>BERT's and RoBERTa's processing: [CLS] sequence [SEP].</summary>
internal sealed class ClsSepPostProcessor(int clsId, int sepId) : PostProcessor
{
    public override void Process(List<int> sequence, bool addSpecialTokens)
    {
        if (!addSpecialTokens)
            return;
        sequence.Insert(0, clsId);
        sequence.Add(sepId);
    }

    public override int? LeadingSpecialId => clsId;

    public override int? TrailingSpecialId => sepId;
}

/// <summary>ByteLevel's post-processing only trims offsets, which Recur does not track.</summary>
internal sealed class NoOpPostProcessor : PostProcessor
{
    public override void Process(List<int> sequence, bool addSpecialTokens)
    {
    }
}

internal sealed class SequencePostProcessor(IReadOnlyList<PostProcessor> processors) : PostProcessor
{
    public override void Process(List<int> sequence, bool addSpecialTokens)
    {
        foreach (var processor in processors)
            processor.Process(sequence, addSpecialTokens);
    }

    public override int? LeadingSpecialId => processors.Select(p => p.LeadingSpecialId).LastOrDefault(id => id is not null);

    public override int? TrailingSpecialId => processors.Select(p => p.TrailingSpecialId).LastOrDefault(id => id is not null);
}
