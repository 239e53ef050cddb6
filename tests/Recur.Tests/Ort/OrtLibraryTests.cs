using Recur.Runtime.Ort;

namespace Recur.Tests.Ort;

public sealed class OrtLibraryTests
{
    private const string Fix = "run `make native`, or pass --ort-library PATH, or set RECUR_ORT_LIBRARY";

    [Fact]
    public void Resolve_ExplicitPath_IsTheOnlyCandidate()
    {
        var resolution = OrtLibrary.Resolve("/opt/ort/libonnxruntime.so", "/env/libonnxruntime.so.1", "/app", _ => true);

        Assert.Equal("/opt/ort/libonnxruntime.so", resolution.Found);
        var candidate = Assert.Single(resolution.Candidates);
        Assert.Equal("explicit path", candidate.Source);
    }

    [Fact]
    public void Resolve_EnvironmentVariable_WhenNoExplicitPath()
    {
        var resolution = OrtLibrary.Resolve(null, "/env/libonnxruntime.so.1", "/app", _ => true);

        Assert.Equal("/env/libonnxruntime.so.1", resolution.Found);
        Assert.Equal(OrtLibrary.EnvironmentVariable, Assert.Single(resolution.Candidates).Source);
    }

    [Fact]
    public void Resolve_ProbesApplicationDirectory_InOrder()
    {
        var existing = new HashSet<string> { "/app/libonnxruntime.dylib", "/app/onnxruntime.dll" };

        var resolution = OrtLibrary.Resolve(null, "", "/app", existing.Contains);

        Assert.Equal("/app/libonnxruntime.dylib", resolution.Found);
        Assert.Equal(
            ["/app/libonnxruntime.so.1", "/app/libonnxruntime.so", "/app/libonnxruntime.dylib", "/app/onnxruntime.dll"],
            resolution.Candidates.Select(c => c.Path));
    }

    [Fact]
    public void Resolve_MissingExplicitPath_DoesNotFallThrough_AndSaysHowToFix()
    {
        var resolution = OrtLibrary.Resolve("/nowhere/libonnxruntime.so.1", null, "/app", path => path.StartsWith("/app/"));

        Assert.Null(resolution.Found);
        Assert.Equal(
            $"ONNX Runtime library not found (tried /nowhere/libonnxruntime.so.1 [explicit path]); {Fix}",
            resolution.NotFoundMessage);
    }

    [Fact]
    public void Resolve_NothingFound_MessageIsOneLine_ListingEveryCandidate()
    {
        var message = OrtLibrary.Resolve(null, null, "/app", _ => false).NotFoundMessage;

        Assert.DoesNotContain('\n', message);
        Assert.StartsWith("ONNX Runtime library not found (tried /app/libonnxruntime.so.1 [application directory], ", message);
        Assert.Contains("/app/onnxruntime.dll [application directory]", message);
        Assert.EndsWith(Fix, message);
    }

    [Fact]
    public void Resolve_MissingEnvironmentPath_NamesTheVariable()
    {
        var message = OrtLibrary.Resolve(null, "/env/missing.so", "/app", _ => false).NotFoundMessage;

        Assert.Equal($"ONNX Runtime library not found (tried /env/missing.so [RECUR_ORT_LIBRARY]); {Fix}", message);
    }

    [Fact]
    public void Loaded_ReportsVersionPathAndProviders()
    {
        OrtTestLibrary.EnsureInitialized();

        Assert.True(OrtLibrary.IsInitialized);
        Assert.True(File.Exists(OrtLibrary.LibraryPath));
        Assert.Matches(@"^1\.\d+\.\d+", OrtLibrary.Version);
        Assert.Contains("CPUExecutionProvider", OrtLibrary.AvailableProviders);
    }

    [Fact]
    public void Initialize_IsIdempotent_ButRefusesADifferentLibrary()
    {
        OrtTestLibrary.EnsureInitialized();
        var path = OrtLibrary.LibraryPath;

        OrtLibrary.Initialize();
        OrtLibrary.Initialize(path);
        var e = Assert.Throws<InvalidOperationException>(() => OrtLibrary.Initialize("/somewhere/else/libonnxruntime.so"));

        Assert.Contains(path, e.Message);
        Assert.Contains("/somewhere/else/libonnxruntime.so", e.Message);
        Assert.Equal(path, OrtLibrary.LibraryPath);
    }
}
