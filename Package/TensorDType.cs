namespace Recur.Package;

/// <summary>Tensor element types, numbered as ONNX's TensorProto.DataType (ONNX Runtime's TensorElementType agrees).</summary>
public enum TensorDType { Float32 = 1, UInt8 = 2, Int8 = 3, Int32 = 6, Int64 = 7, Bool = 9, Float16 = 10, Float64 = 11, BFloat16 = 16 }

/// <summary>The one table of element-type facts: sizes and the names recur.json uses.</summary>
public static class TensorDTypes
{
    public static int SizeOf(TensorDType type) => type switch
    {
        TensorDType.Float32 or TensorDType.Int32 => 4,
        TensorDType.Int64 or TensorDType.Float64 => 8,
        TensorDType.Float16 or TensorDType.BFloat16 => 2,
        TensorDType.UInt8 or TensorDType.Int8 or TensorDType.Bool => 1,
        _ => throw new NotSupportedException($"element type {type} has no fixed size"),
    };

    /// <summary>ONNX's lower-case name ("float32", "bfloat16"), as recur.json writes state dtypes.</summary>
    public static string Name(TensorDType type) => type switch
    {
        TensorDType.Float32 => "float32",
        TensorDType.Float16 => "float16",
        TensorDType.BFloat16 => "bfloat16",
        TensorDType.Float64 => "float64",
        TensorDType.Int64 => "int64",
        TensorDType.Int32 => "int32",
        TensorDType.Int8 => "int8",
        TensorDType.UInt8 => "uint8",
        TensorDType.Bool => "bool",
        _ => throw new NotSupportedException($"element type {(int)type} has no name"),
    };

    /// <summary>A recur.json dtype; packages written before ONNX's names were used say fp32, fp16 or bf16.</summary>
    public static bool TryParse(string name, out TensorDType type)
    {
        type = name switch
        {
            "float32" or "fp32" => TensorDType.Float32,
            "float16" or "fp16" => TensorDType.Float16,
            "bfloat16" or "bf16" => TensorDType.BFloat16,
            "float64" => TensorDType.Float64,
            "int64" => TensorDType.Int64,
            "int32" => TensorDType.Int32,
            "int8" => TensorDType.Int8,
            "uint8" => TensorDType.UInt8,
            "bool" => TensorDType.Bool,
            _ => 0,
        };
        return type != 0;
    }
}
