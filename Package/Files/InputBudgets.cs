namespace Recur.Package.Files;

/// <summary>
/// The one place that states how much Recur reads or allocates for an input before it refuses it. Each bound
/// is far above what a real file needs and far below what would exhaust the machine.
/// </summary>
public static class InputBudgets
{
    /// <summary>config.json, generation_config.json, recur.json, tokenizer.json, shard indexes: the largest real
    /// tokenizer.json files are a few tens of MB.</summary>
    public const long JsonBytes = 64L << 20;
    /// <summary>--prompt-file, --stop-file, tokenize --file.</summary>
    public const long TextBytes = 64L << 20;
    /// <summary>One data.pkl, uncompressed (a zip can inflate a small file into a huge one); a 10,000-tensor state dict pickles to ~2 MB.</summary>
    public const long PickleBytes = 64L << 20;
    /// <summary>Values pushed, memoized or marked by one data.pkl (its stack and memo hold no more); a state dict of 10,000 tensors needs ~100,000.</summary>
    public const int PickleObjects = 4_000_000;
    /// <summary>Elements of one tensor Recur allocates from a file's own description (a state in recur.json or a saved
    /// state): 1 GiB of float32, hundreds of times a real recurrent state per row.</summary>
    public const long TensorElements = 1L << 28;
    /// <summary>Tokens in one row of a prompt or a benchmark call.</summary>
    public const int SequenceTokens = 1 << 20;
    /// <summary>Tokens in one call, all rows together.</summary>
    public const int CallTokens = 1 << 22;
    /// <summary>Rows in one call.</summary>
    public const int BatchRows = 4096;
}
