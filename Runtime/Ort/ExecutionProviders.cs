using System.Runtime.InteropServices;

namespace Recur.Runtime.Ort;

/// <summary>Adds the execution provider a <see cref="SessionConfig"/> names to a set of session options.</summary>
internal static unsafe class ExecutionProviders
{
    internal const string Cpu = "cpu";

    /// <summary>Lower-case name used in messages and reported by the session; DirectML is spelled "dml".</summary>
    internal static string Normalize(string provider)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(provider);
        var name = provider.Trim().ToLowerInvariant();
        return name == "directml" ? "dml" : name;
    }

    /// <summary>Appends the provider; throws ORT's own OrtException when it refuses.</summary>
    internal static void Append(OrtSessionOptionsHandle options, string provider, int deviceId)
    {
        switch (Normalize(provider))
        {
            case Cpu:
                break; // ORT always keeps its CPU provider as the last resort.
            case "cuda":
                AppendCuda(options, deviceId);
                break;
            case "dml":
                AppendDirectML(options, deviceId);
                break;
            default:
                AppendByName(options, provider.Trim());
                break;
        }
    }

    private static void AppendCuda(OrtSessionOptionsHandle options, int deviceId)
    {
        var api = OrtLibrary.Api;
        nint cudaOptions;
        api.Check(api.CreateCUDAProviderOptions(&cudaOptions));
        using var cudaHandle = new OrtCUDAProviderOptionsHandle(cudaOptions);
        using var keys = new Utf8StringArray(["device_id"]);
        using var values = new Utf8StringArray([deviceId.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        api.Check(api.UpdateCUDAProviderOptions(cudaOptions, keys.Pointers, values.Pointers, 1));
        // ORT copies the CUDA options, so they can be released right after.
        api.Check(api.SessionOptionsAppendExecutionProvider_CUDA_V2(options.DangerousGetHandle(), cudaOptions));
    }

    /// <summary>
    /// DirectML is not in the OrtApi table: DirectML builds export OrtSessionOptionsAppendExecutionProvider_DML,
    /// and newer ones also hand out an OrtDmlApi whose first entry is the same function.
    /// </summary>
    private static void AppendDirectML(OrtSessionOptionsHandle options, int deviceId)
    {
        var api = OrtLibrary.Api;
        delegate* unmanaged[Cdecl]<nint, int, nint> append;
        if (NativeLibrary.TryGetExport(OrtLibrary.NativeHandle, "OrtSessionOptionsAppendExecutionProvider_DML", out var export))
        {
            append = (delegate* unmanaged[Cdecl]<nint, int, nint>)export;
        }
        else
        {
            void* dmlApi;
            fixed (byte* dml = "DML"u8)
            {
                // Fails with "Specified provider is not supported." on builds without DirectML.
                api.Check(api.GetExecutionProviderApi(dml, OrtApi.MinimumVersion, &dmlApi));
            }
            if (dmlApi == null)
            {
                throw new OrtException(OrtErrorCode.ORT_FAIL, "ONNX Runtime returned no DirectML API");
            }
            append = *(delegate* unmanaged[Cdecl]<nint, int, nint>*)dmlApi;
        }
        api.Check(append(options.DangerousGetHandle(), deviceId));
    }

    /// <summary>ORT's generic append takes its own spelling of provider names ("XNNPACK", "WebGPU"), passed unchanged.</summary>
    private static void AppendByName(OrtSessionOptionsHandle options, string provider)
    {
        var api = OrtLibrary.Api;
        using var name = new Utf8StringArray([provider]);
        api.Check(api.SessionOptionsAppendExecutionProvider(options.DangerousGetHandle(), name.Pointers[0], null, null, 0));
    }
}
