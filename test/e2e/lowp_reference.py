"""A low-precision reference for the numerical checks, independent of weft:
onnxruntime (CPU) on a rewritten copy of the model that computes as a bf16
or f16 implementation would, each op in float32 with its output rounded.

  lowp_model(model, "bf16" | "f16") -> ModelProto

The rewrite rounds (to nearest even)

- every float initializer and Constant with more than one element (the
  parameters and tables; scalar constants stay float32, as torch keeps a
  Python scalar's value when it multiplies a bf16 tensor), and
- every float tensor a node produces: Clip to the type's finite range, Cast
  to BFLOAT16 or FLOAT16, Cast back to FLOAT. The Clip keeps a mask's
  finfo(float32).min finite (it would round to -inf, and a row of -inf
  gives NaN where the model gives 0).

The graph's inputs are not rounded (token ids and masks are integers), and
nothing inside an op is (a MatMul or a Softmax accumulates in float32, as
weft's and cuBLAS's bf16 kernels do). The reference thus rounds at every
op boundary of the ONNX graph, more often than a compiler that fuses ops
does: its distance from the float32 run, e_ref, is what a careful
implementation of that precision may be off by, and the checks allow a
small multiple of it (check_against_ort.py, docs/testing.md).
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ONNX_TYPE = {"bf16": TensorProto.BFLOAT16, "f16": TensorProto.FLOAT16}
FINITE_MAX = {"bf16": float.fromhex("0x1.fep127"), "f16": 65504.0}


def round_array(a, dtype):
    """float32 values rounded to bf16 or f16 (nearest even), as float32."""
    a = np.asarray(a, np.float32)
    if dtype == "f16":
        with np.errstate(over="ignore"):
            return a.astype(np.float16).astype(np.float32)
    bits = a.view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    out = bits.astype(np.uint32).view(np.float32)
    return np.where(np.isnan(a), a, out)


def _round_tensor(t, dtype):
    if t.data_type != TensorProto.FLOAT:
        return None
    a = numpy_helper.to_array(t)
    if a.size <= 1:
        return None
    r = numpy_helper.from_array(round_array(a, dtype).reshape(a.shape),
                                t.name)
    return r


def float_outputs(model):
    """Names of the float32 tensors the nodes produce (by shape inference;
    a tensor whose type it does not know is assumed float when the node's
    first input is)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output) + \
            list(inferred.graph.input):
        if vi.type.HasField("tensor_type"):
            types[vi.name] = vi.type.tensor_type.elem_type
    for t in model.graph.initializer:
        types[t.name] = t.data_type
    out = set()
    for n in model.graph.node:
        for o in n.output:
            if not o:
                continue
            ty = types.get(o)
            if ty is None:
                if n.op_type == "Constant":
                    for a in n.attribute:
                        if a.name == "value":
                            ty = a.t.data_type
                elif n.input and types.get(n.input[0]) == TensorProto.FLOAT \
                        and n.op_type not in ("Shape", "Cast", "Equal",
                                              "Less", "Greater", "IsNaN",
                                              "IsInf", "ArgMax", "ArgMin"):
                    ty = TensorProto.FLOAT
            if ty == TensorProto.FLOAT:
                out.add(o)
    return out


def lowp_model(model, dtype):
    """A copy of `model` (ModelProto) whose parameters and node outputs are
    rounded to `dtype` ("bf16" or "f16")."""
    if dtype not in ONNX_TYPE:
        raise ValueError(dtype)
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    for k, t in enumerate(g.initializer):
        r = _round_tensor(t, dtype)
        if r is not None:
            g.initializer[k].CopyFrom(r)
    floats = float_outputs(m)
    hi = FINITE_MAX[dtype]
    lo_name, hi_name = "lowp_clip_lo", "lowp_clip_hi"
    g.initializer.append(numpy_helper.from_array(np.array(-hi, np.float32),
                                                 lo_name))
    g.initializer.append(numpy_helper.from_array(np.array(hi, np.float32),
                                                 hi_name))
    nodes = []
    for n in g.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    r = _round_tensor(a.t, dtype)
                    if r is not None:
                        r.name = a.t.name
                        a.t.CopyFrom(r)
        nodes.append(n)
        for k, o in enumerate(n.output):
            if o not in floats:
                continue
            raw = o + "__f32"
            n.output[k] = raw
            nodes += [
                helper.make_node("Clip", [raw, lo_name, hi_name],
                                 [o + "__clip"]),
                helper.make_node("Cast", [o + "__clip"], [o + "__lowp"],
                                 to=ONNX_TYPE[dtype]),
                helper.make_node("Cast", [o + "__lowp"], [o],
                                 to=TensorProto.FLOAT)]
    del g.node[:]
    g.node.extend(nodes)
    # Shapes inferred for the original names still hold.
    return m
