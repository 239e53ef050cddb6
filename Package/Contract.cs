namespace Recur.Package;

/// <summary>
/// The names of the state contract every package's graphs follow (DESIGN.md): the token input, the
/// optional padding mask and logits window, the logits output, and one past/present pair per state tensor.
/// </summary>
public static class Contract
{
    public const string InputIds = "input_ids";
    public const string AttentionMask = "attention_mask";
    /// <summary>Optional int64 scalar backed by an initializer: 0 keeps every position's logits, N the last N.</summary>
    public const string LogitsToKeep = "logits_to_keep";
    public const string Logits = "logits";

    public const string PastPrefix = "past_key_values.";
    public const string PresentPrefix = "present.";

    public static string PastName(int layer, string kind) => $"{PastPrefix}{layer}.{kind}";
    public static string PresentName(int layer, string kind) => $"{PresentPrefix}{layer}.{kind}";

    /// <summary>The output that carries a state input forward ("past_key_values.3.key" -> "present.3.key").</summary>
    public static string PresentFor(string pastName) =>
        pastName.StartsWith(PastPrefix, StringComparison.Ordinal)
            ? PresentPrefix + pastName[PastPrefix.Length..]
            : throw new ArgumentException($"'{pastName}' is not a state input (expected a name starting with '{PastPrefix}')", nameof(pastName));
}
