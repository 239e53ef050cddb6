namespace Recur.Graphs;

/// <summary>A graph that cannot be right: wrong shapes or dtypes, named with the node and layer where it was found.</summary>
public sealed class GraphBuildException(string message) : Exception(message);
