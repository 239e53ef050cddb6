using Recur.Runtime.Ort;
using static Recur.Tests.Ort.OnnxModels;
using DataType = Recur.Graphs.Onnx.TensorProto.Types.DataType;

namespace Recur.Tests.Ort;

public sealed class ErrorTests
{
    public ErrorTests() => OrtTestLibrary.EnsureInitialized();

    [Fact]
    public void WrongInputName_ThrowsOrtException_NamingIt()
    {
        using var session = Session(Doubler(2));
        using var x = OrtValue.FromArray(new float[] { 1, 2 }, [2]);

        var e = Assert.Throws<OrtException>(() => session.Run(["not_an_input"], [x], ["y"]));

        Assert.Equal(OrtErrorCode.ORT_INVALID_ARGUMENT, e.Code);
        Assert.Contains("not_an_input", e.Message);
    }

    [Fact]
    public void WrongOutputName_ThrowsOrtException_NamingIt()
    {
        using var session = Session(Doubler(2));
        using var x = OrtValue.FromArray(new float[] { 1, 2 }, [2]);

        var e = Assert.Throws<OrtException>(() => session.Run(["x"], [x], ["nope"]));

        Assert.Equal(OrtErrorCode.ORT_INVALID_ARGUMENT, e.Code);
        Assert.Contains("nope", e.Message);
    }

    [Fact]
    public void WrongInputShape_ThrowsOrtException()
    {
        using var session = Session(Doubler(2));
        using var x = OrtValue.FromArray(new float[] { 1, 2, 3 }, [3]);

        var e = Assert.Throws<OrtException>(() => session.Run(["x"], [x], ["y"]));

        Assert.Equal(OrtErrorCode.ORT_INVALID_ARGUMENT, e.Code);
        Assert.Contains("x", e.Message);
    }

    [Fact]
    public void InvalidModelBytes_ThrowsInvalidProtobuf()
    {
        // Field 1 (ir_version) declared as a 10-byte varint that never terminates: not a parsable ModelProto.
        byte[] garbage = [0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];

        var e = Assert.Throws<OrtException>(() => InferenceSession.FromBytes(garbage));

        Assert.Equal(OrtErrorCode.ORT_INVALID_PROTOBUF, e.Code);
        Assert.False(string.IsNullOrWhiteSpace(e.Message));
    }

    [Fact]
    public void ModelWithUnknownOp_ThrowsInvalidGraph()
    {
        var model = Model(Graph(
            "bad",
            [Node("NoSuchOperator", ["x"], ["y"])],
            [Tensor("x", DataType.Float, 2)],
            [Tensor("y", DataType.Float, 2)]));

        var e = Assert.Throws<OrtException>(() => Session(model));

        Assert.Equal(OrtErrorCode.ORT_INVALID_GRAPH, e.Code);
        Assert.Contains("NoSuchOperator", e.Message);
    }

    [Fact]
    public void MissingModelFile_ThrowsNoSuchFile()
    {
        var path = Path.Combine(Path.GetTempPath(), $"recur-missing-{Guid.NewGuid():N}.onnx");

        var e = Assert.Throws<OrtException>(() => InferenceSession.FromFile(path));

        Assert.Equal(OrtErrorCode.ORT_NO_SUCHFILE, e.Code);
        Assert.Contains(Path.GetFileName(path), e.Message);
    }

    [Fact]
    public void MismatchedCountsOrNullInput_ThrowArgumentExceptions()
    {
        using var session = Session(Doubler(2));
        using var x = OrtValue.FromArray(new float[] { 1, 2 }, [2]);

        Assert.Throws<ArgumentException>(() => session.Run(["x", "x2"], [x], ["y"]));
        Assert.Throws<ArgumentException>(() => session.Run(["x"], [x], ["y"], new OrtValue?[2]));
        var e = Assert.Throws<ArgumentNullException>(() => session.Run(["x"], [null!], ["y"]));
        Assert.Contains("'x'", e.Message);
    }

    [Fact]
    public void OrtException_CarriesCodeAndMessage()
    {
        var e = new OrtException(OrtErrorCode.ORT_NOT_IMPLEMENTED, "op X is not implemented");
        Assert.Equal(OrtErrorCode.ORT_NOT_IMPLEMENTED, e.Code);
        Assert.Equal("op X is not implemented", e.Message);
        Assert.Contains("ORT_NOT_IMPLEMENTED", e.ToString());
        Assert.Equal(15, (int)OrtErrorCode.ORT_DEVICE_RESET);
    }
}
