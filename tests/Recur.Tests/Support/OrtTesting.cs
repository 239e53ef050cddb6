namespace Recur.Tests;

/// <summary>Short forms for tests that run hand-built graphs in ONNX Runtime.</summary>
internal static class OrtTesting
{
    extension(InferenceSession session)
    {
        public static InferenceSession FromFile(string path, SessionConfig? config = null) => SessionFactory.Open(path, config).Session;

        public static InferenceSession FromBytes(byte[] model, SessionConfig? config = null) => SessionFactory.Open(model, config).Session;

        /// <summary>Runs and returns the named outputs in order; the caller disposes them.</summary>
        public OrtValue[] Run(string[] inputNames, OrtValue[] inputs, string[] outputNames)
        {
            using var options = new RunOptions();
            return [.. session.Run(options, inputNames, inputs, outputNames)];
        }

        public IEnumerable<string> OutputNames => session.OutputMetadata.Keys;
    }
}
