using Microsoft.ML.OnnxRuntime;

namespace Recur.Runtime.Ort;

/// <summary>A session with the provider it actually runs on and what the user should hear about that.</summary>
public sealed class LoadedSession(InferenceSession session, string executionProvider, IReadOnlyList<string> warnings) : IDisposable
{
    public InferenceSession Session { get; } = session;
    /// <summary>"cpu", or the requested provider when it was added.</summary>
    public string ExecutionProvider { get; } = executionProvider;
    /// <summary>At most one line: why the requested provider fell back to CPU.</summary>
    public IReadOnlyList<string> Warnings { get; } = warnings;

    public void Dispose() => Session.Dispose();
}

/// <summary>
/// Opens ONNX Runtime sessions as a <see cref="SessionConfig"/> says. A provider that cannot be added falls back
/// to CPU with one warning naming the reason, or, when <see cref="SessionConfig.ProviderRequired"/>, throws
/// <see cref="ProviderUnavailableException"/>.
/// </summary>
public static class SessionFactory
{
    public static LoadedSession Open(string modelPath, SessionConfig? config = null) =>
        Open(config ?? new SessionConfig(), options => new InferenceSession(modelPath, options));

    public static LoadedSession Open(byte[] model, SessionConfig? config = null) =>
        Open(config ?? new SessionConfig(), options => new InferenceSession(model, options));

    private static LoadedSession Open(SessionConfig config, Func<SessionOptions, InferenceSession> create)
    {
        OrtLibrary.Initialize();
        string provider = ExecutionProviders.Normalize(config.ExecutionProvider);
        var warnings = new List<string>();
        using var options = config.CreateOptions();
        if (provider != ExecutionProviders.Cpu)
        {
            try
            {
                ExecutionProviders.Append(options, config.ExecutionProvider, config.DeviceId);
            }
            catch (ProviderUnavailableException e) when (!config.ProviderRequired)
            {
                warnings.Add($"execution provider '{provider}' could not be loaded ({e.Reason}); running on CPU");
                provider = ExecutionProviders.Cpu;
            }
        }
        return new LoadedSession(create(options), provider, warnings);
    }
}
