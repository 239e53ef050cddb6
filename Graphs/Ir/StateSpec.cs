using Recur.Graphs.Weights;

namespace Recur.Graphs.Ir;

/// <summary>
/// One state tensor of the state contract: graph input <see cref="Input"/> is fed with what the
/// previous call returned as <see cref="Output"/>; the first call gets <see cref="Init"/> everywhere,
/// with "batch" set to the batch size and "past_sequence" to 0. <see cref="InPlaceAxis"/> set: a buffer of fixed
/// capacity along that axis, bound as input and output at once and written in place (slots from the attention mask's length).
/// </summary>
public sealed record StateSpec(string Input, string Output, TensorDType DType, IReadOnlyList<Dim> Shape, double Init, int? InPlaceAxis = null);
