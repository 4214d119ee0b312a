#!/usr/bin/env python3
"""Writes the small ONNX models that the importer's lit tests compile.

    python make_op_models.py OUTDIR

One model per importer op form (OUTDIR/NAME.onnx), built with onnx.helper,
plus the malformed and external-data models of test/tools. Sizes are distinct
and non-square so that a swapped or dropped dimension shows in the result
types. Most models use the symbolic dims `batch` and `seq`; the tests bind
them with --dim batch=2 --dim seq=5 unless DIMS below says otherwise.
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper

F, F16, I64, I32, B = T.FLOAT, T.FLOAT16, T.INT64, T.INT32, T.BOOL
INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min

# The --dim bindings the lit tests pass, for tools that run these models (a
# cross-check against onnxruntime, say); models not listed take DEFAULT_DIMS.
DEFAULT_DIMS = {"batch": 2, "seq": 5}
DIMS = {
    "mask_subgraph": {"seq": 3},
    "trilu_fold": {"seq": 3},
}

# Models that the importer must refuse or that are invalid ONNX on purpose;
# such tools skip them.
INVALID = set()

MODELS = {}


def model(name, nodes, inputs, outputs, inits=None, opset=18, invalid=False,
          name_nodes=True):
    """Registers a model. `inputs` are (name, dtype, shape) triples, `outputs`
    names or (name, dtype) pairs (float by default), `inits` a dict of numpy
    arrays. Unnamed nodes are named OpType_INDEX unless `name_nodes` is
    false."""
    assert name not in MODELS, name
    for i, n in enumerate(nodes):
        if not n.name and name_nodes:
            n.name = f"{n.op_type}_{i}"
    outs = []
    for o in outputs:
        oname, dtype = (o, F) if isinstance(o, str) else o
        outs.append(h.make_tensor_value_info(oname, dtype, None))
    graph = h.make_graph(
        nodes,
        name,
        [h.make_tensor_value_info(*i) for i in inputs],
        outs,
        initializer=[numpy_helper.from_array(np.asarray(v), k)
                     for k, v in (inits or {}).items()],
    )
    m = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)],
                     producer_name="weft-tests")
    # onnx.helper stamps the newest IR version; keep one that onnxruntime and
    # older checkers read.
    m.ir_version = 8 if opset <= 18 else 10
    # Give the outputs the types and shapes ONNX infers, as exporters do.
    try:
        inferred = onnx.shape_inference.infer_shapes(m)
        m.graph.ClearField("output")
        m.graph.output.extend(inferred.graph.output)
    except Exception:
        pass
    MODELS[name] = m
    if invalid:
        INVALID.add(name)
    return m


def node(op, inputs, outputs, name="", **attrs):
    return h.make_node(op, inputs, outputs, name=name, **attrs)


def i64(*v):
    """A 1-D int64 array."""
    return np.array(v, dtype=np.int64)


def s64(v):
    """A 0-D int64 array."""
    return np.array(v, dtype=np.int64)


def f32(*v):
    return np.array(v, dtype=np.float32)


def const(out, value, name=""):
    """A Constant node holding a numpy value."""
    return node("Constant", [], [out], name=name,
                value=numpy_helper.from_array(np.asarray(value), out))


def rand(*shape):
    """Weight values; seeded by the shape, so that they do not depend on the
    order the models are built in."""
    rng = np.random.default_rng(list(shape))
    return rng.standard_normal(shape).astype(np.float32)


#===------------------------------------------------------------------------===#
# Elementwise
#===------------------------------------------------------------------------===#

def elementwise():
    # Broadcasting with a symbolic dim on both sides.
    model("add", [node("Add", ["x", "y"], ["z"])],
          [("x", F, ["batch", 3, "seq"]), ("y", F, ["seq"])], ["z"])
    model("sub", [node("Sub", ["x", "y"], ["z"])],
          [("x", F, [2, 3, 5]), ("y", F, [3, 1])], ["z"])
    # Both operands broadcast: [4, 1] * [3] -> [4, 3].
    model("mul", [node("Mul", ["x", "y"], ["z"])],
          [("x", F, [4, 1]), ("y", F, [3])], ["z"])
    model("div", [node("Div", ["x", "y"], ["z"])],
          [("x", F, [2, 3, 5]), ("y", F, [])], ["z"])
    model("div_int", [node("Div", ["x", "y"], ["z"])],
          [("x", I64, [3, 4]), ("y", I64, [4])], [("z", I64)])
    # An integer exponent is cast to the base's element type.
    model("pow", [node("Pow", ["x", "e"], ["z"])],
          [("x", F, [2, 3]), ("e", I64, [])], ["z"])
    model("pow_float", [node("Pow", ["x", "e"], ["z"])],
          [("x", F, [2, 3]), ("e", F, [3])], ["z"])
    # Max and Min are variadic: a chain of binary ops.
    model("max", [node("Max", ["a", "b", "c"], ["z"])],
          [("a", F, [2, 3]), ("b", F, [3]), ("c", F, [1, 1])], ["z"])
    model("max_single", [node("Max", ["a"], ["z"])], [("a", F, [2, 3])],
          ["z"])
    model("min", [node("Min", ["a", "b"], ["z"])],
          [("a", F, [4]), ("b", F, [3, 1])], ["z"])
    model("and", [node("And", ["a", "b"], ["z"])],
          [("a", B, [2, 3]), ("b", B, [3])], [("z", B)])
    model("or", [node("Or", ["a", "b"], ["z"])],
          [("a", B, [2, 3]), ("b", B, [2, 1])], [("z", B)])
    model("equal", [node("Equal", ["a", "b"], ["z"])],
          [("a", I64, [2, 3]), ("b", I64, [3])], [("z", B)])
    for op, shape_b in [("Less", [4, 1]), ("LessOrEqual", [3]),
                        ("Greater", []), ("GreaterOrEqual", [1, 3])]:
        model(op.lower(), [node(op, ["a", "b"], ["z"])],
              [("a", F, [4, 3]), ("b", F, shape_b)], [("z", B)])
    for op in ["Neg", "Exp", "Log", "Erf", "Tanh", "Sigmoid", "Sqrt",
               "Reciprocal", "Cos", "Sin", "Abs", "Relu"]:
        model(op.lower(), [node(op, ["x"], ["z"])],
              [("x", F, ["batch", "seq", 3])], ["z"])
    model("neg_int", [node("Neg", ["x"], ["z"])], [("x", I64, [3, 4])],
          [("z", I64)])
    model("not", [node("Not", ["x"], ["z"])], [("x", B, [2, 3])],
          [("z", B)])
    model("isnan", [node("IsNaN", ["x"], ["z"])], [("x", F, [2, 3])],
          [("z", B)])
    model("cast", [node("Cast", ["x"], ["z"], to=I64)],
          [("x", F, [2, 3])], [("z", I64)])
    model("cast_f16", [node("Cast", ["x"], ["z"], to=F16)],
          [("x", F, [2, 3])], [("z", F16)])
    model("cast_bool", [node("Cast", ["x"], ["z"], to=B)],
          [("x", I32, [3, 2])], [("z", B)])
    # A cast to the same type is the identity.
    model("cast_to_same", [node("Cast", ["x"], ["z"], to=F)],
          [("x", F, [2, 3])], ["z"])
    model("cast_string", [node("Cast", ["x"], ["z"], to=T.STRING)],
          [("x", F, [2, 3])], [("z", T.STRING)], invalid=True)
    model("where", [node("Where", ["c", "x", "y"], ["z"])],
          [("c", B, [3, 1]), ("x", F, [2, 3, 4]), ("y", F, [])], ["z"])
    model("identity", [node("Identity", ["x"], ["z"])],
          [("x", F, [2, 3])], ["z"])
    model("dropout",
          [const("ratio", np.float32(0.25)),
           node("Dropout", ["x", "ratio"], ["z"])],
          [("x", F, [2, 3])], ["z"])
    model("dropout_mask", [node("Dropout", ["x"], ["z", "mask"],
                                name="drop")],
          [("x", F, [2, 3])], ["z", ("mask", B)], invalid=True)
    model("dropout_eval",
          [const("ratio", np.float32(0.25)), const("mode", np.bool_(False)),
           node("Dropout", ["x", "ratio", "mode"], ["z"])],
          [("x", F, [2, 3])], ["z"])
    model("dropout_training",
          [const("ratio", np.float32(0.25)), const("mode", np.bool_(True)),
           node("Dropout", ["x", "ratio", "mode"], ["z"], name="drop")],
          [("x", F, [2, 3])], ["z"], invalid=True)
    model("dropout_runtime_mode",
          [node("Dropout", ["x", "ratio", "mode"], ["z"], name="drop")],
          [("x", F, [2, 3]), ("ratio", F, []), ("mode", B, [])], ["z"],
          invalid=True)


#===------------------------------------------------------------------------===#
# Constants and folding
#===------------------------------------------------------------------------===#

def constants():
    model("constant_value",
          [const("c", f32([1, 2, 3], [4, 5, 6]).reshape(2, 3)),
           node("Add", ["x", "c"], ["z"])],
          [("x", F, [2, 3])], ["z"])
    model("constant_value_float",
          [node("Constant", [], ["c"], value_float=2.5),
           node("Mul", ["x", "c"], ["z"])],
          [("x", F, [2, 3])], ["z"])
    model("constant_value_int",
          [node("Constant", [], ["c"], value_int=-3),
           node("Add", ["x", "c"], ["z"])],
          [("x", I64, [2, 3])], [("z", I64)])
    model("constant_value_floats",
          [node("Constant", [], ["c"], value_floats=[1.5, -2.0]),
           node("Add", ["x", "c"], ["z"])],
          [("x", F, [3, 2])], ["z"])
    # value_ints as a Reshape target: the constant folds into the type.
    model("constant_value_ints",
          [node("Constant", [], ["shape"], value_ints=[5, -1]),
           node("Reshape", ["x", "shape"], ["z"])],
          [("x", F, [3, 4, 5])], ["z"])
    model("constant_of_shape",
          [node("Shape", ["x"], ["s"]),
           node("ConstantOfShape", ["s"], ["c"],
                value=numpy_helper.from_array(i64(7))),
           node("Add", ["x", "c"], ["z"])],
          [("x", I64, ["batch", 3])], [("z", I64)])
    model("constant_of_shape_default",
          [node("Constant", [], ["s"], value_ints=[2, 4]),
           node("ConstantOfShape", ["s"], ["c"]),
           node("Add", ["x", "c"], ["z"])],
          [("x", F, [2, 4])], ["z"])
    model("shape", [node("Shape", ["x"], ["z"])],
          [("x", F, ["batch", "seq", 4])], [("z", I64)])
    model("shape_start",
          [node("Shape", ["x"], ["z"], start=1)],
          [("x", F, ["batch", "seq", 4])], [("z", I64)])
    model("shape_end",
          [node("Shape", ["x"], ["z"], start=-3, end=-1)],
          [("x", F, ["batch", "seq", 4])], [("z", I64)])
    model("size", [node("Size", ["x"], ["z"])],
          [("x", F, ["batch", "seq", 4])], [("z", I64)])
    # Range up to a bound dim: positions 0..seq-1.
    model("range",
          [node("Shape", ["x"], ["s"]),
           const("one", s64(1)),
           const("zero", s64(0)),
           node("Gather", ["s", "one"], ["n"], axis=0),
           node("Range", ["zero", "n", "one"], ["z"])],
          [("x", F, ["batch", "seq"])], [("z", I64)])
    model("range_float",
          [const("a", np.float32(0.5)), const("b", np.float32(3.0)),
           const("d", np.float32(0.75)),
           node("Range", ["a", "b", "d"], ["z"])],
          [], ["z"])
    model("range_negative",
          [const("a", s64(10)), const("b", s64(4)), const("d", s64(-2)),
           node("Range", ["a", "b", "d"], ["z"])],
          [], [("z", I64)])
    # Ranges are always folded: a NaN or huge count is refused.
    model("range_nan",
          [const("a", np.float32(0)), const("b", np.float32(1)),
           const("d", np.float32(np.nan)),
           node("Range", ["a", "b", "d"], ["z"], name="r")],
          [], ["z"], invalid=True)
    model("range_huge",
          [const("a", s64(0)), const("b", s64(INT64_MAX)), const("d", s64(1)),
           node("Range", ["a", "b", "d"], ["z"], name="r")],
          [], [("z", I64)], invalid=True)
    # Shape -> Gather -> Unsqueeze -> Concat -> Reshape, the exporters'
    # view(batch, seq, heads, -1): all of it folds into the reshape's type.
    model("shape_subgraph",
          [node("Shape", ["x"], ["s"]),
           const("i0", s64(0)), const("i1", s64(1)),
           const("ax", i64(0)),
           node("Gather", ["s", "i0"], ["b"], axis=0),
           node("Gather", ["s", "i1"], ["q"], axis=0),
           node("Unsqueeze", ["b", "ax"], ["b1"]),
           node("Unsqueeze", ["q", "ax"], ["q1"]),
           const("rest", i64(3, -1)),
           node("Concat", ["b1", "q1", "rest"], ["shape"], axis=0),
           node("Reshape", ["x", "shape"], ["z"])],
          [("x", F, ["batch", "seq", 12])], ["z"])
    # torch's expand(-1, ...): Where(Equal(shape, -1), 1, shape) feeds Expand.
    model("expand_subgraph",
          [node("Shape", ["y"], ["s"]),
           const("i0", i64(0)),
           node("Gather", ["s", "i0"], ["b"], axis=0),
           const("rest", i64(-1, 4)),
           node("Concat", ["b", "rest"], ["target"], axis=0),
           node("Shape", ["target"], ["ts"]),
           node("ConstantOfShape", ["ts"], ["ones"],
                value=numpy_helper.from_array(i64(1))),
           const("neg", s64(-1)),
           node("Mul", ["ones", "neg"], ["negs"]),
           node("Equal", ["target", "negs"], ["eq"]),
           node("Where", ["eq", "ones", "target"], ["shape"]),
           node("Expand", ["x", "shape"], ["z"])],
          [("x", F, [3, 1]), ("y", F, ["batch", 7])], ["z"])
    # A causal mask from Range/Less/Where folds to one constant.
    model("mask_subgraph",
          [node("Shape", ["scores"], ["s"]),
           const("i3", s64(3)), const("zero", s64(0)), const("one", s64(1)),
           node("Gather", ["s", "i3"], ["n"], axis=0),
           node("Range", ["zero", "n", "one"], ["r"]),
           const("a0", i64(0)), const("a1", i64(1)),
           node("Unsqueeze", ["r", "a0"], ["row"]),
           node("Unsqueeze", ["r", "a1"], ["col"]),
           node("Less", ["col", "row"], ["future"]),
           const("ninf", np.float32(-np.inf)), const("fzero", np.float32(0)),
           node("Where", ["future", "ninf", "fzero"], ["mask"]),
           node("Add", ["scores", "mask"], ["z"])],
          [("scores", F, [2, 1, "seq", "seq"])], ["z"])
    model("trilu_fold",
          [node("Shape", ["scores"], ["s"]),
           const("idx", i64(2, 3)),
           node("Gather", ["s", "idx"], ["ss"], axis=0),
           node("ConstantOfShape", ["ss"], ["ones"],
                value=numpy_helper.from_array(f32(1))),
           const("k", s64(1)),
           node("Trilu", ["ones", "k"], ["tri"], upper=1),
           node("Mul", ["scores", "tri"], ["z"])],
          [("scores", F, [2, 1, "seq", "seq"])], ["z"])
    # hidden / 4 through float arithmetic, as scripted exporters write it.
    model("cast_div_fold",
          [node("Shape", ["x"], ["s"]),
           const("i0", s64(0)), const("i1", s64(1)),
           node("Gather", ["s", "i0"], ["b"], axis=0),
           node("Gather", ["s", "i1"], ["hid"], axis=0),
           node("Cast", ["hid"], ["hf"], to=F),
           const("four", np.float32(4)),
           node("Div", ["hf", "four"], ["qf"]),
           node("Cast", ["qf"], ["q"], to=I64),
           const("ax", i64(0)),
           node("Unsqueeze", ["b", "ax"], ["b1"]),
           node("Unsqueeze", ["q", "ax"], ["q1"]),
           const("four_i", i64(4)),
           node("Concat", ["b1", "q1", "four_i"], ["shape"], axis=0),
           node("Reshape", ["x", "shape"], ["z"])],
          [("x", F, ["batch", 12])], ["z"])
    # Initializers of up to 16 elements are constants; larger ones weights.
    model("init_small",
          [node("Add", ["x", "w"], ["z"])],
          [("x", F, [2, 16])], ["z"],
          inits={"w": np.arange(16, dtype=np.float32)})
    model("init_large",
          [node("Add", ["x", "w"], ["z"])],
          [("x", F, [2, 17])], ["z"],
          inits={"w": np.arange(17, dtype=np.float32)})
    # A larger integer weight that only meets constants is read and folds.
    model("init_large_shape",
          [const("st", i64(2)), const("en", i64(4)),
           node("Slice", ["dims", "st", "en"], ["shape"]),
           node("Reshape", ["x", "shape"], ["z"])],
          [("x", F, [6])], ["z"],
          inits={"dims": np.arange(20, dtype=np.int64)})


#===------------------------------------------------------------------------===#
# Data movement
#===------------------------------------------------------------------------===#

def shape_ops():
    # 0 copies the input dim, -1 is inferred.
    model("reshape",
          [node("Reshape", ["x", "shape"], ["z"])],
          [("x", F, ["batch", "seq", 12])], ["z"],
          inits={"shape": i64(0, 0, 3, -1)})
    model("reshape_infer_first",
          [node("Reshape", ["x", "shape"], ["z"])],
          [("x", F, [2, 3, 4])], ["z"], inits={"shape": i64(-1, 6)})
    model("reshape_allowzero",
          [node("Reshape", ["x", "shape"], ["z"], allowzero=1)],
          [("x", F, [2, 0, 3])], ["z"], inits={"shape": i64(0, 6)})
    model("reshape_runtime_shape",
          [node("Reshape", ["x", "shape"], ["z"], name="view")],
          [("x", F, [2, 6]), ("shape", I64, [2])], ["z"], invalid=True)
    # Found by the ONNX fuzz target: steps of +-2^63 overflowed the slice's
    # size; an Expand to 2^63 - 1 rows overflowed the element count.
    model("slice_huge_steps",
          [node("Slice", ["x", "starts", "ends", "axes", "steps"], ["z"])],
          [("x", F, [4, 6])], ["z"],
          inits={"starts": i64(0, 5), "ends": i64(4, INT64_MIN),
                 "axes": i64(0, 1), "steps": i64(INT64_MAX, INT64_MIN)})
    model("expand_huge",
          [node("Expand", ["x", "shape"], ["z"], name="ex")],
          [("x", F, [1, 1])], ["z"], inits={"shape": i64(INT64_MAX, 2)},
          invalid=True)
    # 2^32 x 2^32 wrapped to 0 elements in int64 before it was checked.
    model("reshape_overflow",
          [node("Reshape", ["x", "shape"], ["z"], name="view")],
          [("x", F, [2, 6])], ["z"],
          inits={"shape": i64(2**32, 2**32, 1)}, invalid=True)
    model("transpose",
          [node("Transpose", ["x"], ["z"], perm=[1, 2, 0])],
          [("x", F, [2, 3, 4])], ["z"])
    model("transpose_default", [node("Transpose", ["x"], ["z"])],
          [("x", F, [2, 3, 4])], ["z"])
    model("squeeze",
          [node("Squeeze", ["x", "axes"], ["z"])],
          [("x", F, [1, 3, 1, 5])], ["z"], inits={"axes": i64(-2, 0)})
    model("squeeze_all", [node("Squeeze", ["x"], ["z"])],
          [("x", F, [1, 3, 1, 5])], ["z"])
    model("squeeze_bad",
          [node("Squeeze", ["x", "axes"], ["z"], name="sq")],
          [("x", F, [1, 3, 1, 5])], ["z"], inits={"axes": i64(1)},
          invalid=True)
    model("unsqueeze",
          [node("Unsqueeze", ["x", "axes"], ["z"])],
          [("x", F, [3, 5])], ["z"], inits={"axes": i64(0, -1)})
    model("unsqueeze_middle",
          [node("Unsqueeze", ["x", "axes"], ["z"])],
          [("x", F, [3, 5])], ["z"], inits={"axes": i64(3, 1)})
    model("unsqueeze_13",
          [node("Unsqueeze", ["x", "axes"], ["z"])],
          [("x", F, [3, 5])], ["z"], inits={"axes": i64(1)}, opset=13)
    for name, axis in [("flatten", 2), ("flatten_0", 0), ("flatten_neg", -1)]:
        model(name, [node("Flatten", ["x"], ["z"], axis=axis)],
              [("x", F, [2, 3, 4, 5])], ["z"])
    model("concat",
          [node("Concat", ["a", "b", "c"], ["z"], axis=-1)],
          [("a", F, [2, 3]), ("b", F, [2, 5]), ("c", F, [2, 1])], ["z"])
    # An empty operand contributes nothing and is dropped.
    model("concat_empty",
          [node("Concat", ["a", "e", "b"], ["z"], axis=0)],
          [("a", F, [2, 3]), ("e", F, [0, 3]), ("b", F, [4, 3])], ["z"])
    # Empty on another dim: the operands still add up along the axis.
    model("concat_zero_rows",
          [node("Concat", ["a", "b"], ["z"], axis=1)],
          [("a", F, [0, 2]), ("b", F, [0, 3])], ["z"])
    model("concat_bad",
          [node("Concat", ["a", "b"], ["z"], axis=0, name="cat")],
          [("a", F, [2, 3]), ("b", F, [2, 4])], ["z"], invalid=True)
    model("split_13",
          [node("Split", ["x", "split"], ["a", "b", "c"], axis=1)],
          [("x", F, [2, 7])], ["a", "b", "c"],
          inits={"split": i64(2, 4, 1)}, opset=13)
    model("split_13_equal",
          [node("Split", ["x"], ["a", "b", "c"], axis=0)],
          [("x", F, [6, 4])], ["a", "b", "c"], opset=13)
    # num_outputs: ceil(7 / 3) = 3 per output, the last one short.
    model("split_18",
          [node("Split", ["x"], ["a", "b", "c"], axis=0, num_outputs=3)],
          [("x", F, [7, 3])], ["a", "b", "c"])
    model("split_18_input",
          [node("Split", ["x", "split"], ["a", "b"], axis=-1)],
          [("x", F, [4, 9])], ["a", "b"], inits={"split": i64(5, 4)})
    model("split_bad",
          [node("Split", ["x", "split"], ["a", "b"], axis=1, name="sp")],
          [("x", F, [4, 9])], ["a", "b"], inits={"split": i64(5, 5)},
          invalid=True)
    model("split_zero_outputs",
          [node("Split", ["x"], ["a", "b"], num_outputs=0, name="sp")],
          [("x", F, [4, 9])], ["a", "b"], invalid=True)
    # Found by the ONNX fuzz target: sizes that overflowed int64 arithmetic.
    model("split_huge_outputs",
          [node("Split", ["x"], ["a", "b"], num_outputs=INT64_MAX, name="sp")],
          [("x", F, [4, 9])], ["a", "b"], invalid=True)
    model("split_huge_size",
          [node("Split", ["x", "split"], ["a", "b"], axis=1, name="sp")],
          [("x", F, [4, 9])], ["a", "b"],
          inits={"split": i64(INT64_MAX, INT64_MAX)}, invalid=True)
    # Negative starts and steps, out-of-range ends, axes out of order.
    model("slice",
          [node("Slice", ["x", "starts", "ends", "axes", "steps"], ["z"])],
          [("x", F, [4, 6, 8])], ["z"],
          inits={"starts": i64(-3, 5), "ends": i64(INT64_MAX, INT64_MIN),
                 "axes": i64(2, 1), "steps": i64(1, -2)})
    model("slice_default",
          [node("Slice", ["x", "starts", "ends"], ["z"])],
          [("x", F, [5, 6])], ["z"],
          inits={"starts": i64(1), "ends": i64(-1)})
    model("slice_reverse",
          [node("Slice", ["x", "starts", "ends", "axes", "steps"], ["z"])],
          [("x", F, [5, 6])], ["z"],
          inits={"starts": i64(-1), "ends": i64(INT64_MIN), "axes": i64(-1),
                 "steps": i64(-1)})
    model("slice_step",
          [node("Slice", ["x", "starts", "ends", "axes", "steps"], ["z"])],
          [("x", F, ["batch", 10])], ["z"],
          inits={"starts": i64(1), "ends": i64(9), "axes": i64(1),
                 "steps": i64(3)})
    model("gather",
          [node("Gather", ["x", "idx"], ["z"], axis=1)],
          [("x", F, [5, 7]), ("idx", I64, [2, 3])], ["z"])
    model("gather_scalar",
          [const("idx", s64(2)),
           node("Gather", ["x", "idx"], ["z"], axis=0)],
          [("x", F, [5, 7])], ["z"])
    model("gather_neg_axis",
          [node("Gather", ["x", "idx"], ["z"], axis=-1)],
          [("x", F, [5, 7, 4]), ("idx", I32, [3])], ["z"])
    model("gather_elements",
          [node("GatherElements", ["x", "idx"], ["z"], axis=-1)],
          [("x", F, [3, 4]), ("idx", I64, [3, 2])], ["z"])
    model("gather_nd",
          [node("GatherND", ["x", "idx"], ["z"])],
          [("x", F, [5, 6, 7]), ("idx", I64, [4, 2])], ["z"])
    model("gather_nd_batch",
          [node("GatherND", ["x", "idx"], ["z"], batch_dims=1)],
          [("x", F, [2, 3, 4]), ("idx", I64, [2, 5, 1])], ["z"])
    model("expand",
          [node("Expand", ["x", "shape"], ["z"])],
          [("x", F, [3, 1])], ["z"], inits={"shape": i64(2, 1, 4)})
    # Expand takes no -1 (unlike Reshape).
    model("expand_negative",
          [node("Expand", ["x", "shape"], ["z"], name="ex")],
          [("x", F, [1, 1])], ["z"], inits={"shape": i64(-1, 4)},
          invalid=True)
    model("tile",
          [node("Tile", ["x", "reps"], ["z"])],
          [("x", F, [2, 3])], ["z"], inits={"reps": i64(2, 4)})
    model("cumsum",
          [node("CumSum", ["x", "axis"], ["z"], exclusive=1, reverse=1)],
          [("x", F, [3, 4])], ["z"], inits={"axis": s64(-1)})
    model("cumsum_default",
          [node("CumSum", ["x", "axis"], ["z"])],
          [("x", I64, [3, 4])], [("z", I64)],
          inits={"axis": np.array(0, dtype=np.int32)})
    model("trilu",
          [node("Trilu", ["x", "k"], ["z"], upper=0)],
          [("x", F, [2, 3, 4])], ["z"], inits={"k": s64(1)})
    model("trilu_default", [node("Trilu", ["x"], ["z"])],
          [("x", F, [3, 4])], ["z"])


#===------------------------------------------------------------------------===#
# Reductions, softmax, norms
#===------------------------------------------------------------------------===#

def reductions():
    x = [("x", F, [2, 3, 4])]
    # ReduceSum takes axes as an input from opset 13.
    model("reduce_sum_13",
          [node("ReduceSum", ["x", "axes"], ["z"], keepdims=0)], x, ["z"],
          inits={"axes": i64(-1, 0)}, opset=13)
    model("reduce_sum_all", [node("ReduceSum", ["x"], ["z"])], x, ["z"],
          opset=13)
    model("reduce_sum_noop",
          [node("ReduceSum", ["x"], ["z"], noop_with_empty_axes=1)], x, ["z"],
          opset=13)
    # The others take an axes attribute at opset 13 and an input from 18.
    model("reduce_mean_13",
          [node("ReduceMean", ["x"], ["z"], axes=[1])], x, ["z"], opset=13)
    model("reduce_mean_18",
          [node("ReduceMean", ["x", "axes"], ["z"])], x, ["z"],
          inits={"axes": i64(-1)})
    model("reduce_max_18",
          [node("ReduceMax", ["x"], ["z"], keepdims=0)], x, ["z"])
    model("reduce_min_13",
          [node("ReduceMin", ["x"], ["z"], axes=[2, 0], keepdims=0)], x,
          ["z"], opset=13)
    model("reduce_min_18_noop",
          [node("ReduceMin", ["x"], ["z"], noop_with_empty_axes=1)], x,
          ["z"])
    model("reduce_prod_13",
          [node("ReduceProd", ["x"], ["z"], axes=[0])], x, ["z"], opset=13)
    model("reduce_prod_18",
          [node("ReduceProd", ["x", "axes"], ["z"], keepdims=0)], x, ["z"],
          inits={"axes": i64(1, 2)})
    model("reduce_axes_runtime",
          [node("ReduceMean", ["x", "axes"], ["z"], name="mean")],
          [("x", F, [2, 3, 4]), ("axes", I64, [1])], ["z"], invalid=True)
    model("softmax", [node("Softmax", ["x"], ["z"], axis=1)], x, ["z"])
    model("softmax_default", [node("Softmax", ["x"], ["z"])], x, ["z"])


def norms():
    hidden = 24
    model("layer_norm",
          [node("LayerNormalization", ["x", "scale", "bias"], ["z"],
                epsilon=1e-6)],
          [("x", F, ["batch", "seq", hidden])], ["z"],
          inits={"scale": np.ones(hidden, np.float32),
                 "bias": np.zeros(hidden, np.float32)})
    model("layer_norm_axis",
          [node("LayerNormalization", ["x", "scale"], ["z"], axis=1)],
          [("x", F, [2, 4, 6]), ("scale", F, [4, 6])], ["z"])
    model("layer_norm_stats",
          [node("LayerNormalization", ["x", "scale"], ["z", "mean", "inv"],
                name="ln", axis=1)],
          [("x", F, [2, 4, 6]), ("scale", F, [4, 6])], ["z", "mean", "inv"])
    model("layer_norm_inv_only",
          [node("LayerNormalization", ["x", "scale"], ["z", "", "inv"],
                name="ln")],
          [("x", F, [2, 4, 6]), ("scale", F, [6])], ["z", "inv"])
    model("layer_norm_stash_int",
          [node("LayerNormalization", ["x", "scale"], ["z", "mean"],
                name="ln", stash_type=7)],
          [("x", F, [2, 4, 6]), ("scale", F, [6])], ["z", "mean"],
          invalid=True)
    model("rms_norm",
          [node("RMSNormalization", ["x", "scale"], ["z"])],
          [("x", F, ["batch", "seq", hidden])], ["z"],
          inits={"scale": np.ones(hidden, np.float32)}, opset=23)
    model("rms_norm_axis",
          [node("RMSNormalization", ["x", "scale"], ["z"], axis=-2,
                epsilon=1e-6)],
          [("x", F, [2, 5, 6]), ("scale", F, [5, 6])], ["z"], opset=23)
    model("rms_norm_18",
          [node("RMSNormalization", ["x", "scale"], ["z"], name="rms")],
          [("x", F, [2, 5, 6]), ("scale", F, [6])], ["z"], opset=18,
          invalid=True)


def rotary():
    # [batch, heads, seq, head_dim] with caches [batch, seq, head_dim / 2].
    model("rotary",
          [node("RotaryEmbedding", ["x", "cos", "sin"], ["z"])],
          [("x", F, ["batch", 3, "seq", 8]), ("cos", F, ["batch", "seq", 4]),
           ("sin", F, ["batch", "seq", 4])], ["z"], opset=23)
    # Position ids index [max_pos, head_dim / 2] caches.
    model("rotary_position_ids",
          [node("RotaryEmbedding", ["x", "cos", "sin", "pos"], ["z"])],
          [("x", F, ["batch", 3, "seq", 8]), ("pos", I64, ["batch", "seq"])],
          ["z"], opset=23,
          inits={"cos": np.cos(rand(16, 4)), "sin": np.sin(rand(16, 4))})
    model("rotary_interleaved",
          [node("RotaryEmbedding", ["x", "cos", "sin"], ["z"],
                interleaved=1)],
          [("x", F, ["batch", 3, "seq", 8]), ("cos", F, ["batch", "seq", 4]),
           ("sin", F, ["batch", "seq", 4])], ["z"], opset=23)
    # [batch, seq, hidden] with num_heads.
    model("rotary_3d",
          [node("RotaryEmbedding", ["x", "cos", "sin"], ["z"], num_heads=3)],
          [("x", F, ["batch", "seq", 24]), ("cos", F, ["batch", "seq", 4]),
           ("sin", F, ["batch", "seq", 4])], ["z"], opset=23)
    # A rotary dim below the head dim: the rest passes through.
    model("rotary_partial",
          [node("RotaryEmbedding", ["x", "cos", "sin"], ["z"],
                rotary_embedding_dim=4)],
          [("x", F, ["batch", 3, "seq", 8]), ("cos", F, ["batch", "seq", 2]),
           ("sin", F, ["batch", "seq", 2])], ["z"], opset=23)
    model("rotary_bad_cache",
          [node("RotaryEmbedding", ["x", "cos", "sin"], ["z"], name="rope")],
          [("x", F, [2, 3, 5, 8]), ("cos", F, [2, 4, 4]),
           ("sin", F, [2, 4, 4])], ["z"], opset=23, invalid=True)
    model("rotary_22",
          [node("RotaryEmbedding", ["x", "cos", "sin"], ["z"], name="rope")],
          [("x", F, [2, 3, 5, 8]), ("cos", F, [2, 5, 4]),
           ("sin", F, [2, 5, 4])], ["z"], opset=22, invalid=True)


def products():
    model("matmul",
          [node("MatMul", ["x", "w"], ["z"])],
          [("x", F, ["batch", "seq", 4])], ["z"],
          inits={"w": rand(4, 6)})
    model("matmul_batch",
          [node("MatMul", ["a", "b"], ["z"])],
          [("a", F, [2, 1, 3, 4]), ("b", F, [5, 4, 6])], ["z"])
    model("matmul_vec_mat",
          [node("MatMul", ["a", "b"], ["z"])],
          [("a", F, [4]), ("b", F, [4, 6])], ["z"])
    model("matmul_mat_vec",
          [node("MatMul", ["a", "b"], ["z"])],
          [("a", F, [2, 3, 4]), ("b", F, [4])], ["z"])
    model("matmul_vec_vec",
          [node("MatMul", ["a", "b"], ["z"])],
          [("a", F, [4]), ("b", F, [4])], ["z"])
    model("matmul_vec_batch",
          [node("MatMul", ["a", "b"], ["z"])],
          [("a", F, [4]), ("b", F, [2, 4, 5])], ["z"])
    model("gemm",
          [node("Gemm", ["a", "b", "c"], ["z"], transA=1, transB=1,
                alpha=0.5, beta=2.0)],
          [("a", F, [4, 3]), ("b", F, [5, 4]), ("c", F, [5])], ["z"])
    model("gemm_plain",
          [node("Gemm", ["a", "b"], ["z"])],
          [("a", F, [3, 4]), ("b", F, [4, 5])], ["z"])
    model("gemm_bias",
          [node("Gemm", ["a", "w", "c"], ["z"], transB=1)],
          [("a", F, ["batch", 4])], ["z"],
          inits={"w": rand(6, 4), "c": f32(0.5, -1, 1.5, -2, 2.5, -3)})
    model("gemm_beta0",
          [node("Gemm", ["a", "b", "c"], ["z"], beta=0.0)],
          [("a", F, [3, 4]), ("b", F, [4, 5]), ("c", F, [3, 5])], ["z"])
    model("gemm_bad_c",
          [node("Gemm", ["a", "b", "c"], ["z"], name="fc")],
          [("a", F, [3, 4]), ("b", F, [4, 5]), ("c", F, [4, 5])], ["z"],
          invalid=True)


#===------------------------------------------------------------------------===#
# Malformed models and external data (test/tools)
#===------------------------------------------------------------------------===#

def set_external(tensor, location, offset=None, length=None):
    """Marks an initializer as stored in `location`, dropping its bytes."""
    tensor.ClearField("raw_data")
    tensor.data_location = T.EXTERNAL
    del tensor.external_data[:]
    entries = [("location", location)]
    if offset is not None:
        entries.append(("offset", str(offset)))
    if length is not None:
        entries.append(("length", str(length)))
    for k, v in entries:
        e = tensor.external_data.add()
        e.key, e.value = k, v


def reshape_model(name, **external):
    """x[2, 6] reshaped by the initializer `shape` ([3, 4]), with the shape
    stored externally as `external` says."""
    m = model(name, [node("Reshape", ["x", "shape"], ["z"], name="view")],
              [("x", F, [2, 6])], ["z"], inits={"shape": i64(3, 4)},
              invalid=True)
    if external:
        set_external(m.graph.initializer[0], **external)
    return m


def tools(outdir):
    """Models for test/tools, some of them broken on purpose."""
    # A 4 x 6 weight and a 6-element bias live in weights.bin, which is never
    # written: the importer references weights by name and never reads them.
    m = model("external_weights",
              [node("MatMul", ["x", "w"], ["y"]),
               node("Add", ["y", "b"], ["z"])],
              [("x", F, ["batch", 4])], ["z"],
              inits={"w": rand(4, 6), "b": rand(6)})
    set_external(m.graph.initializer[0], "weights.bin", offset=0, length=96)
    set_external(m.graph.initializer[1], "weights.bin", offset=96, length=24)
    # A node whose only input is an absent weight: its bytes are not at hand,
    # so the transpose stays an op on the named weight.
    m = model("external_weights_transposed",
              [node("Transpose", ["wt"], ["w"]),
               node("MatMul", ["x", "w"], ["z"])],
              [("x", F, ["batch", 4])], ["z"],
              inits={"wt": rand(6, 4)})
    set_external(m.graph.initializer[0], "weights.bin", offset=120,
                 length=96)

    # Shape initializer in a file that exists, at an offset: read and folded.
    reshape_model("external_shape", location="shape.bin", offset=8,
                  length=16)
    with open(os.path.join(outdir, "shape.bin"), "wb") as f:
        f.write(i64(99).tobytes() + i64(3, 4).tobytes())
    INVALID.discard("external_shape")

    reshape_model("external_missing", location="missing.bin")
    reshape_model("external_absolute",
                  location=os.path.join(os.path.abspath(outdir), "shape.bin"))
    reshape_model("external_dotdot", location="../shape.bin")
    reshape_model("external_dotdot_inner", location="sub/../../shape.bin")
    reshape_model("external_past_end", location="shape.bin", offset=16,
                  length=16)
    reshape_model("external_offset_past_end", location="shape.bin",
                  offset=4096)
    reshape_model("external_wrong_length", location="shape.bin", offset=0,
                  length=24)
    reshape_model("external_huge_offset", location="shape.bin",
                  offset=INT64_MAX - 8, length=16)
    reshape_model("external_bad_offset", location="shape.bin", offset="-8")
    m = reshape_model("external_no_location", location="shape.bin")
    del m.graph.initializer[0].external_data[:]
    # An unsafe path is refused even for a weight nothing reads.
    m = model("external_unused_absolute",
              [node("Relu", ["x"], ["z"])], [("x", F, [2, 6])], ["z"],
              inits={"w": rand(4, 6)}, invalid=True)
    set_external(m.graph.initializer[0], "/etc/passwd")

    model("unbound_dim", [node("Relu", ["x"], ["z"])],
          [("x", F, ["batch", "seq", 4])], ["z"], invalid=True)
    model("unknown_op", [node("FancyOp", ["x"], ["z"], name="fancy")],
          [("x", F, [2, 3])], ["z"], invalid=True)
    # A real ONNX op that weft does not import, on a node without a name.
    model("unknown_op_unnamed",
          [node("Relu", ["x"], ["y"]), node("Det", ["y"], ["z"])],
          [("x", F, [2, 3, 3])], ["z"], invalid=True, name_nodes=False)
    m = model("custom_domain",
              [h.make_node("FusedMatMul", ["x", "x"], ["z"], name="fmm",
                           domain="com.microsoft")],
              [("x", F, [3, 3])], ["z"], invalid=True)
    m.opset_import.append(h.make_opsetid("com.microsoft", 1))
    model("opset_11", [node("Relu", ["x"], ["z"])], [("x", F, [2, 3])],
          ["z"], opset=11, invalid=True)
    model("opset_24", [node("Relu", ["x"], ["z"])], [("x", F, [2, 3])],
          ["z"], opset=24, invalid=True)
    model("opset_12", [node("Relu", ["x"], ["z"])], [("x", F, [2, 3])],
          ["z"], opset=12, invalid=True)
    model("opset_13", [node("Relu", ["x"], ["z"])], [("x", F, [2, 3])],
          ["z"], opset=13)
    model("opset_23", [node("Relu", ["x"], ["z"])], [("x", F, [2, 3])],
          ["z"], opset=23)
    model("negative_dim", [node("Relu", ["x"], ["z"])],
          [("x", F, [2, -3])], ["z"], invalid=True)
    # Old exporters list initializers as graph inputs too.
    m = model("initializer_as_input", [node("Add", ["x", "w"], ["z"])],
              [("x", F, [2, 3]), ("w", F, [3])], ["z"],
              inits={"w": f32(1, 2, 3)})
    model("undefined_input", [node("Add", ["x", "nowhere"], ["z"],
                                   name="add")],
          [("x", F, [2, 3])], ["z"], invalid=True)
    model("undefined_output", [node("Relu", ["x"], ["y"])],
          [("x", F, [2, 3])], ["z"], invalid=True)
    m = model("no_shape", [node("Relu", ["x"], ["z"])],
              [("x", F, [2, 3])], ["z"], invalid=True)
    m.graph.input[0].type.tensor_type.ClearField("shape")
    m = model("anonymous_dim", [node("Relu", ["x"], ["z"])],
              [("x", F, [2, 3])], ["z"], invalid=True)
    m.graph.input[0].type.tensor_type.shape.dim[1].Clear()
    model("string_input", [node("Identity", ["x"], ["z"])],
          [("x", T.STRING, [2])], [("z", T.STRING)], invalid=True)
    m = model("bad_raw_data", [node("Reshape", ["x", "shape"], ["z"],
                                    name="view")],
              [("x", F, [2, 6])], ["z"], inits={"shape": i64(3, 4)},
              invalid=True)
    m.graph.initializer[0].raw_data = m.graph.initializer[0].raw_data[:12]

    # A model whose bytes are cut short, and files that are no model.
    full = MODELS["add"].SerializeToString()
    with open(os.path.join(outdir, "truncated.onnx"), "wb") as f:
        f.write(full[:len(full) // 2])
    with open(os.path.join(outdir, "garbage.onnx"), "wb") as f:
        f.write(b"\xff" * 64)
    with open(os.path.join(outdir, "text.onnx"), "w") as f:
        f.write("this is not an ONNX model\n")
    open(os.path.join(outdir, "empty.onnx"), "wb").close()
    # A valid protobuf that is not a ModelProto with a graph.
    with open(os.path.join(outdir, "no_graph.onnx"), "wb") as f:
        f.write(h.make_operatorsetid("", 18).SerializeToString())


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_op_models.py OUTDIR")
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    elementwise()
    constants()
    shape_ops()
    reductions()
    norms()
    rotary()
    products()
    tools(outdir)
    for name, m in MODELS.items():
        with open(os.path.join(outdir, name + ".onnx"), "wb") as f:
            f.write(m.SerializeToString())


if __name__ == "__main__":
    main()
