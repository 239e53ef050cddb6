namespace Recur.Runtime.Ort;

/// <summary>ONNX Runtime's <c>OrtErrorCode</c>, named as in the C header.</summary>
public enum OrtErrorCode
{
    ORT_OK = 0,
    ORT_FAIL,
    ORT_INVALID_ARGUMENT,
    ORT_NO_SUCHFILE,
    ORT_NO_MODEL,
    ORT_ENGINE_ERROR,
    ORT_RUNTIME_EXCEPTION,
    ORT_INVALID_PROTOBUF,
    ORT_MODEL_LOADED,
    ORT_NOT_IMPLEMENTED,
    ORT_INVALID_GRAPH,
    ORT_EP_FAIL,
    ORT_MODEL_LOAD_CANCELED,
    ORT_MODEL_REQUIRES_COMPILATION,
    ORT_NOT_FOUND,
    ORT_DEVICE_RESET,
}

/// <summary>An error status returned by ONNX Runtime: its code and its message, unchanged.</summary>
public sealed class OrtException : Exception
{
    public OrtException(OrtErrorCode code, string message)
        : base(message)
    {
        Code = code;
    }

    public OrtException(OrtErrorCode code, string message, Exception innerException)
        : base(message, innerException)
    {
        Code = code;
    }

    public OrtErrorCode Code { get; }

    public override string ToString() => $"{nameof(OrtException)} ({Code}): {base.ToString()}";
}

/// <summary>
/// The ONNX Runtime library is missing or unusable. The message is one line: what was tried, and how to fix it.
/// </summary>
public sealed class OrtLibraryException : Exception
{
    public OrtLibraryException(string message)
        : base(message)
    {
    }

    public OrtLibraryException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
