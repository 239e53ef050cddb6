using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Recur.Runtime.Ort;

/// <summary>
/// The slice of ONNX Runtime's <c>struct OrtApi</c> that Recur uses, read once from the table that
/// <c>OrtApiBase::GetApi</c> returns. Field names are the C header's; the number beside each is its
/// position in the struct (the table is append-only, so positions never move between releases).
/// Handles are passed as <see cref="nint"/>; every <c>OrtStatus*</c> result goes through <see cref="Check"/>.
/// </summary>
internal sealed unsafe class OrtApi
{
    // The newest function bound below is SessionOptionsAppendExecutionProvider (slot 216),
    // added in C API version 12 (ONNX Runtime 1.12); everything else is older.
    internal const uint MinimumVersion = 12;

    // Enum values from the C header that Recur passes or compares.
    internal const int OrtLoggingLevelFatal = 4; // OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL
    internal const int OrtDeviceAllocator = 0;
    internal const int OrtMemTypeDefault = 0;
    internal const int OnnxTypeTensor = 1; // ONNXType.ONNX_TYPE_TENSOR

    internal readonly delegate* unmanaged[Cdecl]<nint, int> GetErrorCode;                                   // 1
    internal readonly delegate* unmanaged[Cdecl]<nint, byte*> GetErrorMessage;                              // 2
    internal readonly delegate* unmanaged[Cdecl]<int, byte*, nint*, nint> CreateEnv;                        // 3
    internal readonly delegate* unmanaged[Cdecl]<nint, void*, nint, nint*, nint> CreateSession;             // 7
    internal readonly delegate* unmanaged[Cdecl]<nint, void*, nuint, nint, nint*, nint> CreateSessionFromArray; // 8
    internal readonly delegate* unmanaged[Cdecl]<nint, nint, byte**, nint*, nuint, byte**, nuint, nint*, nint> Run; // 9
    internal readonly delegate* unmanaged[Cdecl]<nint*, nint> CreateSessionOptions;                         // 10
    internal readonly delegate* unmanaged[Cdecl]<nint, void*, nint> SetOptimizedModelFilePath;              // 11
    internal readonly delegate* unmanaged[Cdecl]<nint, int, nint> SetSessionExecutionMode;                  // 13
    internal readonly delegate* unmanaged[Cdecl]<nint, void*, nint> EnableProfiling;                        // 14
    internal readonly delegate* unmanaged[Cdecl]<nint, nint> EnableMemPattern;                              // 16
    internal readonly delegate* unmanaged[Cdecl]<nint, nint> DisableMemPattern;                             // 17
    internal readonly delegate* unmanaged[Cdecl]<nint, nint> EnableCpuMemArena;                             // 18
    internal readonly delegate* unmanaged[Cdecl]<nint, nint> DisableCpuMemArena;                            // 19
    internal readonly delegate* unmanaged[Cdecl]<nint, int, nint> SetSessionGraphOptimizationLevel;         // 23
    internal readonly delegate* unmanaged[Cdecl]<nint, int, nint> SetIntraOpNumThreads;                     // 24
    internal readonly delegate* unmanaged[Cdecl]<nint, int, nint> SetInterOpNumThreads;                     // 25
    internal readonly delegate* unmanaged[Cdecl]<nint, nuint*, nint> SessionGetInputCount;                  // 30
    internal readonly delegate* unmanaged[Cdecl]<nint, nuint*, nint> SessionGetOutputCount;                 // 31
    internal readonly delegate* unmanaged[Cdecl]<nint, nuint*, nint> SessionGetOverridableInitializerCount;  // 32
    internal readonly delegate* unmanaged[Cdecl]<nint, nuint, nint*, nint> SessionGetInputTypeInfo;         // 33
    internal readonly delegate* unmanaged[Cdecl]<nint, nuint, nint*, nint> SessionGetOutputTypeInfo;        // 34
    internal readonly delegate* unmanaged[Cdecl]<nint, nuint, nint*, nint> SessionGetOverridableInitializerTypeInfo; // 35
    internal readonly delegate* unmanaged[Cdecl]<nint, nuint, nint, byte**, nint> SessionGetInputName;      // 36
    internal readonly delegate* unmanaged[Cdecl]<nint, nuint, nint, byte**, nint> SessionGetOutputName;     // 37
    internal readonly delegate* unmanaged[Cdecl]<nint, nuint, nint, byte**, nint> SessionGetOverridableInitializerName; // 38
    internal readonly delegate* unmanaged[Cdecl]<nint, long*, nuint, int, nint*, nint> CreateTensorAsOrtValue; // 48
    internal readonly delegate* unmanaged[Cdecl]<nint, void*, nuint, long*, nuint, int, nint*, nint> CreateTensorWithDataAsOrtValue; // 49
    internal readonly delegate* unmanaged[Cdecl]<nint, void**, nint> GetTensorMutableData;                  // 51
    internal readonly delegate* unmanaged[Cdecl]<nint, nint*, nint> CastTypeInfoToTensorInfo;               // 55
    internal readonly delegate* unmanaged[Cdecl]<nint, int*, nint> GetTensorElementType;                    // 60
    internal readonly delegate* unmanaged[Cdecl]<nint, nuint*, nint> GetDimensionsCount;                    // 61
    internal readonly delegate* unmanaged[Cdecl]<nint, long*, nuint, nint> GetDimensions;                   // 62
    internal readonly delegate* unmanaged[Cdecl]<nint, byte**, nuint, nint> GetSymbolicDimensions;          // 63
    internal readonly delegate* unmanaged[Cdecl]<nint, nuint*, nint> GetTensorShapeElementCount;            // 64
    internal readonly delegate* unmanaged[Cdecl]<nint, nint*, nint> GetTensorTypeAndShape;                  // 65
    internal readonly delegate* unmanaged[Cdecl]<nint, int*, nint> GetValueType;                            // 67
    internal readonly delegate* unmanaged[Cdecl]<int, int, nint*, nint> CreateCpuMemoryInfo;                // 69
    internal readonly delegate* unmanaged[Cdecl]<nint, void*, nint> AllocatorFree;                          // 76
    internal readonly delegate* unmanaged[Cdecl]<nint*, nint> GetAllocatorWithDefaultOptions;               // 78
    internal readonly delegate* unmanaged[Cdecl]<nint, void> ReleaseEnv;                                    // 92
    internal readonly delegate* unmanaged[Cdecl]<nint, void> ReleaseStatus;                                 // 93
    internal readonly delegate* unmanaged[Cdecl]<nint, void> ReleaseMemoryInfo;                             // 94
    internal readonly delegate* unmanaged[Cdecl]<nint, void> ReleaseSession;                                // 95
    internal readonly delegate* unmanaged[Cdecl]<nint, void> ReleaseValue;                                  // 96
    internal readonly delegate* unmanaged[Cdecl]<nint, void> ReleaseTypeInfo;                               // 98
    internal readonly delegate* unmanaged[Cdecl]<nint, void> ReleaseTensorTypeAndShapeInfo;                 // 99
    internal readonly delegate* unmanaged[Cdecl]<nint, void> ReleaseSessionOptions;                         // 100
    internal readonly delegate* unmanaged[Cdecl]<nint, nint*, nint> SessionGetModelMetadata;                // 111
    internal readonly delegate* unmanaged[Cdecl]<nint, nint, byte*, byte**, nint> ModelMetadataLookupCustomMetadataMap; // 116
    internal readonly delegate* unmanaged[Cdecl]<nint, void> ReleaseModelMetadata;                          // 118
    internal readonly delegate* unmanaged[Cdecl]<nint, nint, byte***, long*, nint> ModelMetadataGetCustomMetadataMapKeys; // 123
    internal readonly delegate* unmanaged[Cdecl]<byte***, int*, nint> GetAvailableProviders;                // 125
    internal readonly delegate* unmanaged[Cdecl]<byte**, int, nint> ReleaseAvailableProviders;              // 126
    internal readonly delegate* unmanaged[Cdecl]<nint, byte*, byte*, nint> AddSessionConfigEntry;           // 130
    internal readonly delegate* unmanaged[Cdecl]<nint, nint, nint, nint> RunWithBinding;                    // 133
    internal readonly delegate* unmanaged[Cdecl]<nint, nint*, nint> CreateIoBinding;                        // 134
    internal readonly delegate* unmanaged[Cdecl]<nint, void> ReleaseIoBinding;                              // 135
    internal readonly delegate* unmanaged[Cdecl]<nint, byte*, nint, nint> BindInput;                        // 136
    internal readonly delegate* unmanaged[Cdecl]<nint, byte*, nint, nint> BindOutput;                       // 137
    internal readonly delegate* unmanaged[Cdecl]<nint, byte*, nint, nint> BindOutputToDevice;               // 138
    internal readonly delegate* unmanaged[Cdecl]<nint, nint, nint**, nuint*, nint> GetBoundOutputValues;   // 140
    internal readonly delegate* unmanaged[Cdecl]<nint, void> ClearBoundInputs;                              // 141
    internal readonly delegate* unmanaged[Cdecl]<nint, void> ClearBoundOutputs;                             // 142
    internal readonly delegate* unmanaged[Cdecl]<byte*, uint, void**, nint> GetExecutionProviderApi;        // 195
    internal readonly delegate* unmanaged[Cdecl]<nint, nint, nint> SessionOptionsAppendExecutionProvider_CUDA_V2; // 204
    internal readonly delegate* unmanaged[Cdecl]<nint*, nint> CreateCUDAProviderOptions;                    // 205
    internal readonly delegate* unmanaged[Cdecl]<nint, byte**, byte**, nuint, nint> UpdateCUDAProviderOptions; // 206
    internal readonly delegate* unmanaged[Cdecl]<nint, void> ReleaseCUDAProviderOptions;                    // 208
    internal readonly delegate* unmanaged[Cdecl]<nint, byte*, byte**, byte**, nuint, nint> SessionOptionsAppendExecutionProvider; // 216

    internal OrtApi(nint table)
    {
        var slots = (void**)table;
        GetErrorCode = (delegate* unmanaged[Cdecl]<nint, int>)Slot(slots, 1, nameof(GetErrorCode));
        GetErrorMessage = (delegate* unmanaged[Cdecl]<nint, byte*>)Slot(slots, 2, nameof(GetErrorMessage));
        CreateEnv = (delegate* unmanaged[Cdecl]<int, byte*, nint*, nint>)Slot(slots, 3, nameof(CreateEnv));
        CreateSession = (delegate* unmanaged[Cdecl]<nint, void*, nint, nint*, nint>)Slot(slots, 7, nameof(CreateSession));
        CreateSessionFromArray = (delegate* unmanaged[Cdecl]<nint, void*, nuint, nint, nint*, nint>)Slot(slots, 8, nameof(CreateSessionFromArray));
        Run = (delegate* unmanaged[Cdecl]<nint, nint, byte**, nint*, nuint, byte**, nuint, nint*, nint>)Slot(slots, 9, nameof(Run));
        CreateSessionOptions = (delegate* unmanaged[Cdecl]<nint*, nint>)Slot(slots, 10, nameof(CreateSessionOptions));
        SetOptimizedModelFilePath = (delegate* unmanaged[Cdecl]<nint, void*, nint>)Slot(slots, 11, nameof(SetOptimizedModelFilePath));
        SetSessionExecutionMode = (delegate* unmanaged[Cdecl]<nint, int, nint>)Slot(slots, 13, nameof(SetSessionExecutionMode));
        EnableProfiling = (delegate* unmanaged[Cdecl]<nint, void*, nint>)Slot(slots, 14, nameof(EnableProfiling));
        EnableMemPattern = (delegate* unmanaged[Cdecl]<nint, nint>)Slot(slots, 16, nameof(EnableMemPattern));
        DisableMemPattern = (delegate* unmanaged[Cdecl]<nint, nint>)Slot(slots, 17, nameof(DisableMemPattern));
        EnableCpuMemArena = (delegate* unmanaged[Cdecl]<nint, nint>)Slot(slots, 18, nameof(EnableCpuMemArena));
        DisableCpuMemArena = (delegate* unmanaged[Cdecl]<nint, nint>)Slot(slots, 19, nameof(DisableCpuMemArena));
        SetSessionGraphOptimizationLevel = (delegate* unmanaged[Cdecl]<nint, int, nint>)Slot(slots, 23, nameof(SetSessionGraphOptimizationLevel));
        SetIntraOpNumThreads = (delegate* unmanaged[Cdecl]<nint, int, nint>)Slot(slots, 24, nameof(SetIntraOpNumThreads));
        SetInterOpNumThreads = (delegate* unmanaged[Cdecl]<nint, int, nint>)Slot(slots, 25, nameof(SetInterOpNumThreads));
        SessionGetInputCount = (delegate* unmanaged[Cdecl]<nint, nuint*, nint>)Slot(slots, 30, nameof(SessionGetInputCount));
        SessionGetOutputCount = (delegate* unmanaged[Cdecl]<nint, nuint*, nint>)Slot(slots, 31, nameof(SessionGetOutputCount));
        SessionGetOverridableInitializerCount = (delegate* unmanaged[Cdecl]<nint, nuint*, nint>)Slot(slots, 32, nameof(SessionGetOverridableInitializerCount));
        SessionGetOverridableInitializerTypeInfo = (delegate* unmanaged[Cdecl]<nint, nuint, nint*, nint>)Slot(slots, 35, nameof(SessionGetOverridableInitializerTypeInfo));
        SessionGetOverridableInitializerName = (delegate* unmanaged[Cdecl]<nint, nuint, nint, byte**, nint>)Slot(slots, 38, nameof(SessionGetOverridableInitializerName));
        SessionGetInputTypeInfo = (delegate* unmanaged[Cdecl]<nint, nuint, nint*, nint>)Slot(slots, 33, nameof(SessionGetInputTypeInfo));
        SessionGetOutputTypeInfo = (delegate* unmanaged[Cdecl]<nint, nuint, nint*, nint>)Slot(slots, 34, nameof(SessionGetOutputTypeInfo));
        SessionGetInputName = (delegate* unmanaged[Cdecl]<nint, nuint, nint, byte**, nint>)Slot(slots, 36, nameof(SessionGetInputName));
        SessionGetOutputName = (delegate* unmanaged[Cdecl]<nint, nuint, nint, byte**, nint>)Slot(slots, 37, nameof(SessionGetOutputName));
        CreateTensorAsOrtValue = (delegate* unmanaged[Cdecl]<nint, long*, nuint, int, nint*, nint>)Slot(slots, 48, nameof(CreateTensorAsOrtValue));
        CreateTensorWithDataAsOrtValue = (delegate* unmanaged[Cdecl]<nint, void*, nuint, long*, nuint, int, nint*, nint>)Slot(slots, 49, nameof(CreateTensorWithDataAsOrtValue));
        GetTensorMutableData = (delegate* unmanaged[Cdecl]<nint, void**, nint>)Slot(slots, 51, nameof(GetTensorMutableData));
        CastTypeInfoToTensorInfo = (delegate* unmanaged[Cdecl]<nint, nint*, nint>)Slot(slots, 55, nameof(CastTypeInfoToTensorInfo));
        GetTensorElementType = (delegate* unmanaged[Cdecl]<nint, int*, nint>)Slot(slots, 60, nameof(GetTensorElementType));
        GetDimensionsCount = (delegate* unmanaged[Cdecl]<nint, nuint*, nint>)Slot(slots, 61, nameof(GetDimensionsCount));
        GetDimensions = (delegate* unmanaged[Cdecl]<nint, long*, nuint, nint>)Slot(slots, 62, nameof(GetDimensions));
        GetSymbolicDimensions = (delegate* unmanaged[Cdecl]<nint, byte**, nuint, nint>)Slot(slots, 63, nameof(GetSymbolicDimensions));
        GetTensorShapeElementCount = (delegate* unmanaged[Cdecl]<nint, nuint*, nint>)Slot(slots, 64, nameof(GetTensorShapeElementCount));
        GetTensorTypeAndShape = (delegate* unmanaged[Cdecl]<nint, nint*, nint>)Slot(slots, 65, nameof(GetTensorTypeAndShape));
        GetValueType = (delegate* unmanaged[Cdecl]<nint, int*, nint>)Slot(slots, 67, nameof(GetValueType));
        CreateCpuMemoryInfo = (delegate* unmanaged[Cdecl]<int, int, nint*, nint>)Slot(slots, 69, nameof(CreateCpuMemoryInfo));
        AllocatorFree = (delegate* unmanaged[Cdecl]<nint, void*, nint>)Slot(slots, 76, nameof(AllocatorFree));
        GetAllocatorWithDefaultOptions = (delegate* unmanaged[Cdecl]<nint*, nint>)Slot(slots, 78, nameof(GetAllocatorWithDefaultOptions));
        ReleaseEnv = (delegate* unmanaged[Cdecl]<nint, void>)Slot(slots, 92, nameof(ReleaseEnv));
        ReleaseStatus = (delegate* unmanaged[Cdecl]<nint, void>)Slot(slots, 93, nameof(ReleaseStatus));
        ReleaseMemoryInfo = (delegate* unmanaged[Cdecl]<nint, void>)Slot(slots, 94, nameof(ReleaseMemoryInfo));
        ReleaseSession = (delegate* unmanaged[Cdecl]<nint, void>)Slot(slots, 95, nameof(ReleaseSession));
        ReleaseValue = (delegate* unmanaged[Cdecl]<nint, void>)Slot(slots, 96, nameof(ReleaseValue));
        ReleaseTypeInfo = (delegate* unmanaged[Cdecl]<nint, void>)Slot(slots, 98, nameof(ReleaseTypeInfo));
        ReleaseTensorTypeAndShapeInfo = (delegate* unmanaged[Cdecl]<nint, void>)Slot(slots, 99, nameof(ReleaseTensorTypeAndShapeInfo));
        ReleaseSessionOptions = (delegate* unmanaged[Cdecl]<nint, void>)Slot(slots, 100, nameof(ReleaseSessionOptions));
        SessionGetModelMetadata = (delegate* unmanaged[Cdecl]<nint, nint*, nint>)Slot(slots, 111, nameof(SessionGetModelMetadata));
        ModelMetadataLookupCustomMetadataMap = (delegate* unmanaged[Cdecl]<nint, nint, byte*, byte**, nint>)Slot(slots, 116, nameof(ModelMetadataLookupCustomMetadataMap));
        ReleaseModelMetadata = (delegate* unmanaged[Cdecl]<nint, void>)Slot(slots, 118, nameof(ReleaseModelMetadata));
        ModelMetadataGetCustomMetadataMapKeys = (delegate* unmanaged[Cdecl]<nint, nint, byte***, long*, nint>)Slot(slots, 123, nameof(ModelMetadataGetCustomMetadataMapKeys));
        GetAvailableProviders = (delegate* unmanaged[Cdecl]<byte***, int*, nint>)Slot(slots, 125, nameof(GetAvailableProviders));
        ReleaseAvailableProviders = (delegate* unmanaged[Cdecl]<byte**, int, nint>)Slot(slots, 126, nameof(ReleaseAvailableProviders));
        AddSessionConfigEntry = (delegate* unmanaged[Cdecl]<nint, byte*, byte*, nint>)Slot(slots, 130, nameof(AddSessionConfigEntry));
        RunWithBinding = (delegate* unmanaged[Cdecl]<nint, nint, nint, nint>)Slot(slots, 133, nameof(RunWithBinding));
        CreateIoBinding = (delegate* unmanaged[Cdecl]<nint, nint*, nint>)Slot(slots, 134, nameof(CreateIoBinding));
        ReleaseIoBinding = (delegate* unmanaged[Cdecl]<nint, void>)Slot(slots, 135, nameof(ReleaseIoBinding));
        BindInput = (delegate* unmanaged[Cdecl]<nint, byte*, nint, nint>)Slot(slots, 136, nameof(BindInput));
        BindOutput = (delegate* unmanaged[Cdecl]<nint, byte*, nint, nint>)Slot(slots, 137, nameof(BindOutput));
        BindOutputToDevice = (delegate* unmanaged[Cdecl]<nint, byte*, nint, nint>)Slot(slots, 138, nameof(BindOutputToDevice));
        GetBoundOutputValues = (delegate* unmanaged[Cdecl]<nint, nint, nint**, nuint*, nint>)Slot(slots, 140, nameof(GetBoundOutputValues));
        ClearBoundInputs = (delegate* unmanaged[Cdecl]<nint, void>)Slot(slots, 141, nameof(ClearBoundInputs));
        ClearBoundOutputs = (delegate* unmanaged[Cdecl]<nint, void>)Slot(slots, 142, nameof(ClearBoundOutputs));
        GetExecutionProviderApi = (delegate* unmanaged[Cdecl]<byte*, uint, void**, nint>)Slot(slots, 195, nameof(GetExecutionProviderApi));
        SessionOptionsAppendExecutionProvider_CUDA_V2 = (delegate* unmanaged[Cdecl]<nint, nint, nint>)Slot(slots, 204, nameof(SessionOptionsAppendExecutionProvider_CUDA_V2));
        CreateCUDAProviderOptions = (delegate* unmanaged[Cdecl]<nint*, nint>)Slot(slots, 205, nameof(CreateCUDAProviderOptions));
        UpdateCUDAProviderOptions = (delegate* unmanaged[Cdecl]<nint, byte**, byte**, nuint, nint>)Slot(slots, 206, nameof(UpdateCUDAProviderOptions));
        ReleaseCUDAProviderOptions = (delegate* unmanaged[Cdecl]<nint, void>)Slot(slots, 208, nameof(ReleaseCUDAProviderOptions));
        SessionOptionsAppendExecutionProvider = (delegate* unmanaged[Cdecl]<nint, byte*, byte**, byte**, nuint, nint>)Slot(slots, 216, nameof(SessionOptionsAppendExecutionProvider));
    }

    // A NULL slot would crash the process when called; refuse the library instead.
    private static void* Slot(void** slots, int index, string name) =>
        slots[index] != null
            ? slots[index]
            : throw new OrtLibraryException($"the ONNX Runtime C API table has no {name} (slot {index}); {OrtLibrary.FixHint}");

    /// <summary>
    /// Turns a non-null <c>OrtStatus*</c> into an <see cref="OrtException"/> with ORT's code and message.
    /// The status is released here whatever happens, so callers never own one.
    /// </summary>
    [StackTraceHidden]
    internal void Check(nint status)
    {
        if (status == 0)
        {
            return;
        }
        try
        {
            var code = (OrtErrorCode)GetErrorCode(status);
            var message = Marshal.PtrToStringUTF8((nint)GetErrorMessage(status)) ?? string.Empty;
            throw new OrtException(code, message.Trim());
        }
        finally
        {
            ReleaseStatus(status);
        }
    }
}
