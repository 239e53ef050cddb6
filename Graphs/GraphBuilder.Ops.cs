using Recur.Graphs.Ir;
using Recur.Graphs.Onnx;
using Recur.Graphs.Weights;

namespace Recur.Graphs;

// One method per ONNX op, named as the op, with the shape and dtype inference that lets a wrong
// graph fail while it is built.
public sealed partial class GraphBuilder
{
    // ---- elementwise ----

    public Value Add(Value a, Value b) => Binary("Add", a, b);
    public Value Sub(Value a, Value b) => Binary("Sub", a, b);
    public Value Mul(Value a, Value b) => Binary("Mul", a, b);
    public Value Div(Value a, Value b) => Binary("Div", a, b);
    public Value Pow(Value a, Value b) => Binary("Pow", a, b, sameType: false);
    public Value Max(Value a, Value b) => Binary("Max", a, b);
    public Value Min(Value a, Value b) => Binary("Min", a, b);
    public Value Equal(Value a, Value b) => Binary("Equal", a, b, result: TensorDType.Bool);
    public Value Less(Value a, Value b) => Binary("Less", a, b, result: TensorDType.Bool);
    public Value LessOrEqual(Value a, Value b) => Binary("LessOrEqual", a, b, result: TensorDType.Bool);
    public Value Greater(Value a, Value b) => Binary("Greater", a, b, result: TensorDType.Bool);
    public Value GreaterOrEqual(Value a, Value b) => Binary("GreaterOrEqual", a, b, result: TensorDType.Bool);
    public Value And(Value a, Value b) => Binary("And", RequireType(a, TensorDType.Bool, "And"), RequireType(b, TensorDType.Bool, "And"), result: TensorDType.Bool);
    public Value Or(Value a, Value b) => Binary("Or", RequireType(a, TensorDType.Bool, "Or"), RequireType(b, TensorDType.Bool, "Or"), result: TensorDType.Bool);

    public Value Add(Value a, float b) => Add(a, ScalarLike(a, b));
    public Value Sub(Value a, float b) => Sub(a, ScalarLike(a, b));
    public Value Mul(Value a, float b) => Mul(a, ScalarLike(a, b));
    public Value Div(Value a, float b) => Div(a, ScalarLike(a, b));

    /// <summary>A scalar constant of <paramref name="like"/>'s dtype.</summary>
    public Value ScalarLike(Value like, double v) => like.Type switch
    {
        TensorDType.Float32 => Constant((float)v),
        TensorDType.Int64 => Constant((long)v),
        TensorDType.Int32 => Constant((int)v),
        TensorDType.Float16 or TensorDType.BFloat16 => Cast(Constant((float)v), like.Type),
        _ => throw Error("Constant", $"no scalar of type {like.Type}"),
    };

    public Value Where(Value condition, Value x, Value y)
    {
        RequireType(condition, TensorDType.Bool, "Where");
        SameType("Where", x, y);
        var shape = Broadcast("Where", Broadcast("Where", condition.Shape, x.Shape), y.Shape);
        return Emit1("Where", [condition, x, y], x.Type, shape);
    }

    public Value Exp(Value x) => Unary("Exp", x);
    public Value Log(Value x) => Unary("Log", x);
    public Value Neg(Value x) => Unary("Neg", x);
    public Value Abs(Value x) => Unary("Abs", x);
    public Value Sigmoid(Value x) => Unary("Sigmoid", x);
    public Value Tanh(Value x) => Unary("Tanh", x);
    public Value Relu(Value x) => Unary("Relu", x);
    public Value Sqrt(Value x) => Unary("Sqrt", x);
    public Value Reciprocal(Value x) => Unary("Reciprocal", x);
    public Value Erf(Value x) => Unary("Erf", x);
    public Value Softplus(Value x) => Unary("Softplus", x);
    public Value Sin(Value x) => Unary("Sin", x);
    public Value Cos(Value x) => Unary("Cos", x);
    public Value Floor(Value x) => Unary("Floor", x);
    public Value Identity(Value x) => Unary("Identity", x);
    public Value Not(Value x) => Unary("Not", RequireType(x, TensorDType.Bool, "Not"));

    public Value Cast(Value x, TensorDType to) =>
        x.Type == to ? x : Emit1("Cast", [x], to, x.Shape, [Attr("to", (long)to)], knownInts: to == TensorDType.Int64 ? x.KnownInts : null);

    // ---- linear algebra ----

    public Value MatMul(Value a, Value b)
    {
        SameType("MatMul", a, b);
        if (a.Shape is null || b.Shape is null) return Emit1("MatMul", [a, b], a.Type, null);
        if (a.Rank < 1 || b.Rank < 1) throw Error("MatMul", "operands must have rank >= 1");
        var sa = a.Shape.ToList();
        var sb = b.Shape.ToList();
        bool vecA = sa.Count == 1, vecB = sb.Count == 1;
        if (vecA) sa.Insert(0, 1);
        if (vecB) sb.Add(1);
        if (!sa[^1].CompatibleWith(sb[^2]))
            throw Error("MatMul", $"inner dimensions differ: {a} times {b}");
        var batch = Broadcast("MatMul", sa.Take(sa.Count - 2).ToList(), sb.Take(sb.Count - 2).ToList())!.ToList();
        if (!vecA) batch.Add(sa[^2]);
        if (!vecB) batch.Add(sb[^1]);
        return Emit1("MatMul", [a, b], a.Type, batch);
    }

    public Value Softmax(Value x, int axis = -1)
    {
        RequireFloat(x, "Softmax");
        return Emit1("Softmax", [x], x.Type, x.Shape, [Attr("axis", (long)axis)]);
    }

    public Value LayerNormalization(Value x, Value scale, Value? bias, float epsilon, int axis = -1)
    {
        RequireFloat(x, "LayerNormalization");
        SameType("LayerNormalization", x, scale);
        return Emit1("LayerNormalization", [x, scale, bias], x.Type, x.Shape, [Attr("axis", (long)axis), Attr("epsilon", epsilon)]);
    }

    // ---- reductions ----

    public Value ReduceMean(Value x, long[] axes, bool keepDims = true) => Reduce("ReduceMean", x, axes, keepDims, attributeAxesBelow: 18);
    public Value ReduceSum(Value x, long[] axes, bool keepDims = true) => Reduce("ReduceSum", x, axes, keepDims, attributeAxesBelow: 13);
    public Value ReduceMax(Value x, long[] axes, bool keepDims = true) => Reduce("ReduceMax", x, axes, keepDims, attributeAxesBelow: 18);
    public Value ReduceMin(Value x, long[] axes, bool keepDims = true) => Reduce("ReduceMin", x, axes, keepDims, attributeAxesBelow: 18);

    private Value Reduce(string op, Value x, long[] axes, bool keepDims, int attributeAxesBelow)
    {
        IReadOnlyList<Dim>? shape = null;
        if (x.Shape is not null)
        {
            var norm = axes.Select(a => NormalizeAxis(op, a, x.Rank)).ToHashSet();
            var dims = new List<Dim>();
            for (int i = 0; i < x.Rank; i++)
                if (!norm.Contains(i)) dims.Add(x.Shape[i]);
                else if (keepDims) dims.Add(1);
            shape = dims;
        }
        var attrs = new List<AttributeProto> { Attr("keepdims", keepDims ? 1L : 0L) };
        if (Opset < attributeAxesBelow)
        {
            attrs.Add(Attr("axes", axes));
            return Emit1(op, [x], x.Type, shape, attrs);
        }
        return Emit1(op, [x, Ints(axes)], x.Type, shape, attrs);
    }

    public Value ArgMax(Value x, int axis, bool keepDims = true)
    {
        IReadOnlyList<Dim>? shape = null;
        if (x.Shape is not null)
        {
            int ax = NormalizeAxis("ArgMax", axis, x.Rank);
            shape = keepDims ? x.Shape.Select((d, i) => i == ax ? (Dim)1 : d).ToList() : x.Shape.Where((_, i) => i != ax).ToList();
        }
        return Emit1("ArgMax", [x], TensorDType.Int64, shape, [Attr("axis", (long)axis), Attr("keepdims", keepDims ? 1L : 0L)]);
    }

    /// <summary>The k largest along the last axis, sorted descending (equal values: the lower index first); values and int64 indices.</summary>
    public (Value Values, Value Indices) TopK(Value x, long k)
    {
        IReadOnlyList<Dim>? shape = x.Shape?.Select((d, i) => i == x.Rank - 1 ? (Dim)k : d).ToList();
        var outs = Emit("TopK", [x, Ints(k)], [(x.Type, shape), (TensorDType.Int64, shape)], [Attr("axis", -1L), Attr("largest", 1L), Attr("sorted", 1L)]);
        return (outs[0], outs[1]);
    }

    public Value CumSum(Value x, int axis, bool exclusive = false, bool reverse = false) =>
        Emit1("CumSum", [x, Constant((long)axis)], x.Type, x.Shape, [Attr("exclusive", exclusive ? 1L : 0L), Attr("reverse", reverse ? 1L : 0L)]);

    // ---- shape manipulation ----

    /// <summary>Reshape to a constant target (0 copies the input dim, -1 is inferred).</summary>
    public Value Reshape(Value x, params long[] target)
    {
        var shape = new Dim[target.Length];
        int inferred = -1;
        for (int i = 0; i < target.Length; i++)
        {
            if (target[i] == 0)
            {
                if (x.Shape is null || i >= x.Rank) throw Error("Reshape", $"0 at axis {i} copies an input dim that {x} does not have");
                shape[i] = x.Shape[i];
            }
            else if (target[i] == -1)
            {
                if (inferred >= 0) throw Error("Reshape", "more than one -1 in the target shape");
                inferred = i;
            }
            else shape[i] = target[i];
        }
        if (inferred >= 0)
        {
            shape[inferred] = Dim.Unknown;
            if (x.Shape is not null)
            {
                var inTotal = Shapes.Product(x.Shape);
                var known = Shapes.Product(shape.Where((_, i) => i != inferred));
                if (inTotal.IsFixed && known.IsFixed && known.Size != 0)
                {
                    if (inTotal.Size % known.Size != 0) throw Error("Reshape", $"cannot reshape {x} to [{string.Join(", ", target)}]");
                    shape[inferred] = inTotal.Size!.Value / known.Size!.Value;
                }
                else if (TrySymbolicQuotient(x.Shape, shape, inferred) is { } symbolic) shape[inferred] = symbolic;
            }
        }
        else if (x.Shape is not null)
        {
            var inTotal = Shapes.Product(x.Shape);
            var outTotal = Shapes.Product(shape);
            if (inTotal.IsFixed && outTotal.IsFixed && inTotal.Size != outTotal.Size)
                throw Error("Reshape", $"cannot reshape {x} ({inTotal} elements) to [{string.Join(", ", target)}] ({outTotal})");
        }
        return Emit1("Reshape", [x, Ints(target)], x.Type, shape);
    }

    /// <summary>When input and output share all but one dimension, the -1 dim is that one (e.g. batch).</summary>
    private static Dim? TrySymbolicQuotient(IReadOnlyList<Dim> input, Dim[] output, int inferred)
    {
        var rest = input.ToList();
        for (int i = 0; i < output.Length; i++)
        {
            if (i == inferred) continue;
            int match = rest.FindIndex(d => d == output[i]);
            if (match < 0) return null;
            rest.RemoveAt(match);
        }
        return rest.Count == 1 ? rest[0] : (Dim?)null;
    }

    /// <summary>Reshape to a shape computed in the graph; the result's dims are unknown.</summary>
    public Value Reshape(Value x, Value shape)
    {
        RequireType(shape, TensorDType.Int64, "Reshape");
        int? rank = shape.Shape is { Count: 1 } s && s[0].IsFixed ? (int)s[0].Size!.Value : null;
        return Emit1("Reshape", [x, shape], x.Type, rank is null ? null : Enumerable.Repeat(Dim.Unknown, rank.Value).ToList());
    }

    public Value Transpose(Value x, params int[] perm)
    {
        if (x.Shape is not null && perm.Length != x.Rank) throw Error("Transpose", $"perm of length {perm.Length} for {x}");
        var shape = x.Shape is null ? null : perm.Select(p => x.Shape[p]).ToList();
        return Emit1("Transpose", [x], x.Type, shape, [Attr("perm", perm.Select(p => (long)p))]);
    }

    public Value Concat(int axis, params Value[] values)
    {
        if (values.Length == 0) throw Error("Concat", "nothing to concatenate");
        SameType("Concat", values);
        IReadOnlyList<Dim>? shape = null;
        if (values.All(v => v.Shape is not null))
        {
            int rank = values[0].Rank;
            if (values.Any(v => v.Rank != rank)) throw Error("Concat", $"ranks differ: {string.Join(", ", values.Select(v => v.ToString()))}");
            int ax = NormalizeAxis("Concat", axis, rank);
            var dims = values[0].Shape!.ToArray();
            foreach (var v in values.Skip(1))
                for (int i = 0; i < rank; i++)
                {
                    if (i == ax) continue;
                    if (!dims[i].CompatibleWith(v.Shape![i])) throw Error("Concat", $"dim {i} differs: {values[0]} and {v}");
                    dims[i] = dims[i].Merge(v.Shape[i]);
                }
            dims[ax] = values.All(v => v.Shape![ax].IsFixed) ? values.Sum(v => v.Shape![ax].Size!.Value) : Dim.Unknown;
            shape = dims;
        }
        long[]? known = axis == 0 && values.All(v => v.KnownInts is not null) ? values.SelectMany(v => v.KnownInts!).ToArray() : null;
        return Emit1("Concat", values, values[0].Type, shape, [Attr("axis", (long)axis)], knownInts: known);
    }

    public Value[] Split(Value x, int axis, params long[] sizes)
    {
        int ax = x.Shape is null ? axis : NormalizeAxis("Split", axis, x.Rank);
        if (x.Shape is not null && x.Shape[ax].IsFixed && x.Shape[ax].Size != sizes.Sum())
            throw Error("Split", $"sizes [{string.Join(", ", sizes)}] do not add up to dim {ax} of {x}");
        var outs = sizes.Select(s => (Type: x.Type, Shape: x.Shape is null ? null : (IReadOnlyList<Dim>?)x.Shape.Select((d, i) => i == ax ? (Dim)s : d).ToList())).ToList();
        return Emit("Split", [x, Ints(sizes)], outs, [Attr("axis", (long)axis)]);
    }

    /// <summary>Slice with constant bounds along the given axes (ends beyond the dim clamp, as ONNX does).</summary>
    public Value Slice(Value x, long[] starts, long[] ends, long[] axes, long[]? steps = null)
    {
        IReadOnlyList<Dim>? shape = null;
        if (x.Shape is not null)
        {
            var dims = x.Shape.ToArray();
            for (int i = 0; i < axes.Length; i++)
            {
                int ax = NormalizeAxis("Slice", (int)axes[i], x.Rank);
                long step = steps?[i] ?? 1;
                dims[ax] = dims[ax].IsFixed ? SliceLength(dims[ax].Size!.Value, starts[i], ends[i], step) : Dim.Unknown;
            }
            shape = dims;
        }
        long[]? known = x.KnownInts is not null && axes is [0] && (steps is null || steps[0] == 1)
            ? x.KnownInts[(int)Math.Clamp(starts[0] < 0 ? starts[0] + x.KnownInts.Length : starts[0], 0, x.KnownInts.Length)..(int)Math.Clamp(ends[0] < 0 ? ends[0] + x.KnownInts.Length : ends[0], 0, x.KnownInts.Length)]
            : null;
        return Emit1("Slice", [x, Ints(starts), Ints(ends), Ints(axes), steps is null ? null : Ints(steps)], x.Type, shape, knownInts: known);
    }

    /// <summary>Slice with bounds computed in the graph (1-D int64 values); sliced dims become unknown.</summary>
    public Value Slice(Value x, Value starts, Value ends, long[] axes)
    {
        IReadOnlyList<Dim>? shape = null;
        if (x.Shape is not null)
        {
            var norm = axes.Select(a => NormalizeAxis("Slice", (int)a, x.Rank)).ToHashSet();
            shape = x.Shape.Select((d, i) => norm.Contains(i) ? Dim.Unknown : d).ToList();
        }
        return Emit1("Slice", [x, starts, ends, Ints(axes)], x.Type, shape);
    }

    private static long SliceLength(long dim, long start, long end, long step)
    {
        long Clamp(long v, long lo, long hi) => Math.Max(lo, Math.Min(hi, v));
        if (step > 0)
        {
            long s = Clamp(start < 0 ? start + dim : start, 0, dim);
            long e = Clamp(end < 0 ? end + dim : end, 0, dim);
            return e > s ? (e - s + step - 1) / step : 0;
        }
        else
        {
            long s = Clamp(start < 0 ? start + dim : start, -1, dim - 1);
            long e = Clamp(end < 0 ? end + dim : end, -1, dim - 1);
            return s > e ? (s - e + (-step) - 1) / (-step) : 0;
        }
    }

    public Value Gather(Value data, Value indices, int axis = 0)
    {
        if (indices.Type is not (TensorDType.Int64 or TensorDType.Int32)) throw Error("Gather", $"indices must be int32 or int64, not {indices.Type}");
        IReadOnlyList<Dim>? shape = null;
        if (data.Shape is not null && indices.Shape is not null)
        {
            int ax = NormalizeAxis("Gather", axis, data.Rank);
            shape = data.Shape.Take(ax).Concat(indices.Shape).Concat(data.Shape.Skip(ax + 1)).ToList();
        }
        long[]? known = data.KnownInts is not null && indices.KnownInts is not null && axis == 0
            ? indices.KnownInts.Select(i => data.KnownInts[(int)(i < 0 ? i + data.KnownInts.Length : i)]).ToArray()
            : null;
        return Emit1("Gather", [data, indices], data.Type, shape, [Attr("axis", (long)axis)], knownInts: known);
    }

    /// <summary>GatherND (batch_dims 0): indices [..., k] pick slices data[i0, ..., ik-1, ...].</summary>
    public Value GatherND(Value data, Value indices)
    {
        RequireType(indices, TensorDType.Int64, "GatherND");
        IReadOnlyList<Dim>? shape = null;
        if (data.Shape is not null && indices.Shape is not null && indices.Shape[^1].Size is long k)
        {
            if (k > data.Rank) throw Error("GatherND", $"indices {indices} address {k} dims of {data}");
            shape = indices.Shape.Take(indices.Rank - 1).Concat(data.Shape.Skip((int)k)).ToList();
        }
        return Emit1("GatherND", [data, indices], data.Type, shape);
    }

    public Value GatherElements(Value data, Value indices, int axis)
    {
        if (indices.Type is not (TensorDType.Int64 or TensorDType.Int32)) throw Error("GatherElements", $"indices must be int32 or int64, not {indices.Type}");
        return Emit1("GatherElements", [data, indices], data.Type, indices.Shape, [Attr("axis", (long)axis)]);
    }

    public Value Unsqueeze(Value x, params long[] axes)
    {
        IReadOnlyList<Dim>? shape = null;
        if (x.Shape is not null)
        {
            int outRank = x.Rank + axes.Length;
            var norm = axes.Select(a => (int)(a < 0 ? a + outRank : a)).ToHashSet();
            var dims = new List<Dim>();
            int src = 0;
            for (int i = 0; i < outRank; i++) dims.Add(norm.Contains(i) ? 1 : x.Shape[src++]);
            shape = dims;
        }
        return Emit1("Unsqueeze", [x, Ints(axes)], x.Type, shape, knownInts: x.KnownInts);
    }

    public Value Squeeze(Value x, params long[] axes)
    {
        IReadOnlyList<Dim>? shape = null;
        if (x.Shape is not null)
        {
            var norm = axes.Select(a => NormalizeAxis("Squeeze", (int)a, x.Rank)).ToHashSet();
            foreach (int a in norm)
                if (x.Shape[a].IsFixed && x.Shape[a].Size != 1) throw Error("Squeeze", $"axis {a} of {x} is not 1");
            shape = x.Shape.Where((_, i) => !norm.Contains(i)).ToList();
        }
        return Emit1("Squeeze", [x, Ints(axes)], x.Type, shape, knownInts: x.KnownInts);
    }

    /// <summary>The run-time shape of x (or its dims start..end) as 1-D int64.</summary>
    public Value Shape(Value x, int? start = null, int? end = null)
    {
        var attrs = new List<AttributeProto>();
        if (start is not null) attrs.Add(Attr("start", (long)start.Value));
        if (end is not null) attrs.Add(Attr("end", (long)end.Value));
        Dim length = Dim.Unknown;
        long[]? known = null;
        if (x.Shape is not null)
        {
            int s = start is null ? 0 : start.Value < 0 ? start.Value + x.Rank : start.Value;
            int e = end is null ? x.Rank : end.Value < 0 ? end.Value + x.Rank : end.Value;
            s = Math.Clamp(s, 0, x.Rank);
            e = Math.Clamp(e, 0, x.Rank);
            length = Math.Max(0, e - s);
            var dims = x.Shape.Skip(s).Take(Math.Max(0, e - s)).ToList();
            if (dims.All(d => d.IsFixed)) known = dims.Select(d => d.Size!.Value).ToArray();
        }
        return Emit1("Shape", [x], TensorDType.Int64, [length], attrs, knownInts: known);
    }

    /// <summary>One dimension of x as a 1-D int64 tensor of length 1.</summary>
    public Value DimOf(Value x, int axis)
    {
        int ax = x.Shape is null ? axis : NormalizeAxis("Shape", axis, x.Rank);
        return Shape(x, ax, ax + 1);
    }

    public Value Expand(Value x, Value shape)
    {
        RequireType(shape, TensorDType.Int64, "Expand");
        IReadOnlyList<Dim>? outShape = null;
        if (shape.Shape is { Count: 1 } s && s[0].IsFixed)
        {
            int rank = (int)s[0].Size!.Value;
            var target = shape.KnownInts?.Select(v => (Dim)v).ToList() ?? Enumerable.Repeat(Dim.Unknown, rank).ToList();
            outShape = x.Shape is null ? null : Broadcast("Expand", x.Shape, target.Select(d => d.IsFixed && d.Size == 1 ? Dim.Unknown : d).ToList());
        }
        return Emit1("Expand", [x, shape], x.Type, outShape);
    }

    public Value Range(Value start, Value limit, Value delta)
    {
        SameType("Range", start, limit, delta);
        return Emit1("Range", [start, limit, delta], start.Type, [Dim.Unknown]);
    }

    public Value ConstantOfShape(Value shape, float value)
    {
        RequireType(shape, TensorDType.Int64, "ConstantOfShape");
        var tensor = new TensorProto { DataType = (int)TensorDType.Float32, Dims = { 1 }, FloatData = { value } };
        int? rank = shape.Shape is { Count: 1 } s && s[0].IsFixed ? (int)s[0].Size!.Value : null;
        var outShape = shape.KnownInts?.Select(v => (Dim)v).ToList() ?? (rank is null ? null : Enumerable.Repeat(Dim.Unknown, rank.Value).ToList());
        return Emit1("ConstantOfShape", [shape], TensorDType.Float32, outShape,
            [new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = tensor }]);
    }

    public Value Trilu(Value x, Value? k = null, bool upper = true) =>
        Emit1("Trilu", [x, k], x.Type, x.Shape, [Attr("upper", upper ? 1L : 0L)]);

    public Value NonZero(Value x) =>
        Emit1("NonZero", [x], TensorDType.Int64, x.Shape is null ? null : [x.Rank, Dim.Unknown]);

    public Value ScatterND(Value data, Value indices, Value updates, string reduction = "none")
    {
        SameType("ScatterND", data, updates);
        var attrs = reduction == "none" ? null : new[] { Attr("reduction", reduction) };
        return Emit1("ScatterND", [data, indices, updates], data.Type, data.Shape, attrs);
    }

    /// <summary>ScatterElements: data with updates written at indices along axis (ONNX Runtime writes in place when
    /// the output is the input's buffer, as a shared cache binds it).</summary>
    public Value ScatterElements(Value data, Value indices, Value updates, int axis)
    {
        SameType("ScatterElements", data, updates);
        RequireType(indices, TensorDType.Int64, "ScatterElements");
        return Emit1("ScatterElements", [data, indices, updates], data.Type, data.Shape, [Attr("axis", (long)axis)]);
    }

    /// <summary>Pad with a constant, or with "edge" (each border value repeated).</summary>
    public Value Pad(Value x, long[] pads, float value = 0f, string mode = "constant")
    {
        IReadOnlyList<Dim>? shape = null;
        if (x.Shape is not null)
        {
            if (pads.Length != 2 * x.Rank) throw Error("Pad", $"{pads.Length} pads for {x}");
            shape = x.Shape.Select((d, i) => d.IsFixed ? (Dim)(d.Size!.Value + pads[i] + pads[i + x.Rank]) : Dim.Unknown).ToList();
        }
        return mode == "constant" ? Emit1("Pad", [x, Ints(pads), ScalarLike(x, value)], x.Type, shape)
            : Emit1("Pad", [x, Ints(pads)], x.Type, shape, [Attr("mode", mode)]);
    }

    /// <summary>Pad with pads computed in the graph (1-D int64 [2 * rank]: begins, then ends); padded dims become unknown.</summary>
    public Value Pad(Value x, Value pads, float value = 0f)
    {
        RequireType(pads, TensorDType.Int64, "Pad");
        return Emit1("Pad", [x, pads, ScalarLike(x, value)], x.Type, x.Shape is null ? null : Enumerable.Repeat(Dim.Unknown, x.Rank).ToList());
    }

    /// <summary>Tiles x (rank r) by the given repeats.</summary>
    public Value Tile(Value x, Value repeats)
    {
        RequireType(repeats, TensorDType.Int64, "Tile");
        return Emit1("Tile", [x, repeats], x.Type, x.Shape is null ? null : Enumerable.Repeat(Dim.Unknown, x.Rank).ToList());
    }

    /// <summary>
    /// Conv over [N, C, L...] with weight [M, C/group, K...], no implicit padding unless <paramref name="pads"/> is given.
    /// </summary>
    public Value Conv(Value x, Value weight, Value? bias, long group = 1, long[]? pads = null)
    {
        SameType("Conv", x, weight);
        IReadOnlyList<Dim>? shape = null;
        if (x.Shape is not null && weight.Shape is not null)
        {
            if (x.Rank != weight.Rank) throw Error("Conv", $"input {x} and weight {weight} differ in rank");
            if (x[1].IsFixed && weight[1].IsFixed && x[1].Size != weight[1].Size * group)
                throw Error("Conv", $"input has {x[1]} channels but weight {weight} with group {group} expects {weight[1].Size * group}");
            var dims = new List<Dim> { x[0], weight[0] };
            int spatial = x.Rank - 2;
            for (int i = 0; i < spatial; i++)
            {
                Dim len = x[2 + i], k = weight[2 + i];
                long padTotal = pads is null ? 0 : pads[i] + pads[i + spatial];
                dims.Add(len.IsFixed && k.IsFixed ? len.Size!.Value + padTotal - k.Size!.Value + 1 : Dim.Unknown);
            }
            shape = dims;
        }
        var attrs = new List<AttributeProto> { Attr("group", group) };
        if (pads is not null) attrs.Add(Attr("pads", pads));
        return Emit1("Conv", [x, weight, bias], x.Type, shape, attrs);
    }

    // ---- helpers ----

    private Value Unary(string op, Value x) => Emit1(op, [x], x.Type, x.Shape);

    private Value Binary(string op, Value a, Value b, TensorDType? result = null, bool sameType = true)
    {
        if (sameType) SameType(op, a, b);
        return Emit1(op, [a, b], result ?? a.Type, Broadcast(op, a.Shape, b.Shape));
    }

    internal IReadOnlyList<Dim>? Broadcast(string op, IReadOnlyList<Dim>? a, IReadOnlyList<Dim>? b)
    {
        if (a is null || b is null) return null;
        int rank = Math.Max(a.Count, b.Count);
        var dims = new Dim[rank];
        for (int i = 0; i < rank; i++)
        {
            Dim da = i < rank - a.Count ? 1 : a[i - (rank - a.Count)];
            Dim db = i < rank - b.Count ? 1 : b[i - (rank - b.Count)];
            if (da.IsFixed && da.Size == 1) dims[i] = db;
            else if (db.IsFixed && db.Size == 1) dims[i] = da;
            else if (!da.CompatibleWith(db))
                throw Error(op, $"shapes {Shapes.Format(a)} and {Shapes.Format(b)} do not broadcast (dim {i}: {da} vs {db})");
            else dims[i] = da == db ? da : da.IsFixed ? da : db.IsFixed ? db : Dim.Unknown;
        }
        return dims;
    }

    private int NormalizeAxis(string op, long axis, int rank)
    {
        long a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= rank) throw Error(op, $"axis {axis} is out of range for rank {rank}");
        return (int)a;
    }

    private void SameType(string op, params Value[] values)
    {
        foreach (var v in values.Skip(1))
            if (v.Type != values[0].Type)
                throw Error(op, $"dtypes differ: {values[0]} and {v}");
    }

    private Value RequireType(Value v, TensorDType type, string op) =>
        v.Type == type ? v : throw Error(op, $"expects {type}, got {v}");

    private void RequireFloat(Value v, string op)
    {
        if (!TensorBytes.IsFloat(v.Type)) throw Error(op, $"expects a floating-point tensor, got {v}");
    }
}
