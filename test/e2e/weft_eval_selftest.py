#!/usr/bin/env python3
"""Self-test of weft_eval.py on ops the HF fixtures do not reach.

Each case is a small hand-written weft function.  It is first round-tripped
through `weft-opt` (no passes), so what weft_eval parses is exactly the text
the real printer produces; then it is evaluated and compared with a reference
computed independently: onnxruntime on a one-node ONNX model where ONNX has
the op, plain numpy otherwise.  Exits 1 on any failure.
"""

import math
import os
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import weft_eval  # noqa: E402

RNG = np.random.default_rng(0)


def weft_opt():
    w = os.environ.get("WEFT_OPT") or shutil.which("weft-opt")
    if not w:
        raise SystemExit("cannot find weft-opt: set $WEFT_OPT or PATH")
    return w


def ort_node(op, inputs, attrs=None, consts=None):
    """Runs one ONNX node on numpy inputs; consts become initializers."""
    import onnx
    import onnxruntime as ort
    from onnx import helper, numpy_helper
    consts = consts or {}
    names = ["x%d" % i for i in range(len(inputs))]
    graph_inputs, inits = [], []
    for n, v in zip(names, inputs):
        if n in consts:
            inits.append(numpy_helper.from_array(np.asarray(v), n))
        else:
            graph_inputs.append(helper.make_tensor_value_info(
                n, helper.np_dtype_to_tensor_dtype(np.asarray(v).dtype),
                np.shape(v)))
    node = helper.make_node(op, names, ["y"], **(attrs or {}))
    if op == "Cast":
        out_type = attrs["to"]
    elif op in ("Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual"):
        out_type = onnx.TensorProto.BOOL
    elif op == "Where":
        out_type = helper.np_dtype_to_tensor_dtype(np.asarray(inputs[1]).dtype)
    else:
        out_type = helper.np_dtype_to_tensor_dtype(np.asarray(inputs[0]).dtype)
    g = helper.make_graph([node], "g", graph_inputs,
                          [helper.make_tensor_value_info("y", out_type, None)],
                          initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 8
    sess = ort.InferenceSession(m.SerializeToString(),
                                providers=["CPUExecutionProvider"])
    feeds = {n: np.asarray(v) for n, v in zip(names, inputs) if n not in consts}
    return sess.run(None, feeds)[0]


def ty(a):
    a = np.asarray(a)
    el = {np.float32: "f32", np.int64: "i64", np.bool_: "i1",
          np.float64: "f64", np.int32: "i32"}[a.dtype.type]
    return "tensor<%s>" % "x".join([str(d) for d in a.shape] + [el])


def run_case(name, body, args, result_type):
    """body uses %a0.. for args and must end in a value named %r."""
    sig = ", ".join("%%a%d: %s" % (i, ty(a)) for i, a in enumerate(args))
    text = ("func.func @main(%s) -> %s {\n%s\n  return %%r : %s\n}\n"
            % (sig, result_type, body, result_type))
    p = subprocess.run([weft_opt(), "-"], input=text, capture_output=True,
                       text=True)
    if p.returncode:
        raise AssertionError("%s: weft-opt rejected the case:\n%s\n%s"
                             % (name, text, p.stderr))
    mod = weft_eval.parse_module(p.stdout)
    outs, _ = weft_eval.evaluate(
        mod, {"arg%d" % i: a for i, a in enumerate(args)}, None)
    return outs[0]


FAILED = []


def check(name, got, want, tol=1e-5):
    got, want = np.asarray(got), np.asarray(want)
    ok = got.shape == want.shape and (
        np.array_equal(got, want) if want.dtype.kind in "biu" else
        np.allclose(got.astype(np.float64), want.astype(np.float64),
                    rtol=tol, atol=tol, equal_nan=True))
    print("%s: %s" % ("ok" if ok else "FAIL", name))
    if not ok:
        FAILED.append(name)
        print("  got  %s %s\n  want %s %s" % (got.dtype, got.shape, want.dtype,
                                              want.shape))


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def case(fn):
    try:
        fn()
    except Exception as e:  # report and go on
        FAILED.append(fn.__name__)
        print("FAIL: %s: %s: %s" % (fn.__name__, type(e).__name__, e))
    return fn


@case
def elementwise():
    a, b = f32(2, 3, 4), f32(3, 1)
    for op, onnx_op in [("add", "Add"), ("sub", "Sub"), ("mul", "Mul"),
                        ("div", "Div"), ("max", "Max"), ("min", "Min")]:
        got = run_case(op, "  %%r = weft.%s %%a0, %%a1 : %s, %s -> %s"
                       % (op, ty(a), ty(b), ty(a)), [a, b], ty(a))
        check(op, got, ort_node(onnx_op, [a, b]))
    pa = np.abs(a) + 0.5
    got = run_case("pow", "  %%r = weft.pow %%a0, %%a1 : %s, %s -> %s"
                   % (ty(pa), ty(b), ty(pa)), [pa, b], ty(pa))
    check("pow", got, ort_node("Pow", [pa, b]))
    ia, ib = (RNG.integers(-9, 9, (4,)).astype(np.int64),
              np.array([2, -3, 4, -5], np.int64))
    got = run_case("idiv", "  %%r = weft.div %%a0, %%a1 : %s, %s -> %s"
                   % (ty(ia), ty(ib), ty(ia)), [ia, ib], ty(ia))
    check("div i64 (truncating)", got, ort_node("Div", [ia, ib]))
    for op, onnx_op in [("neg", "Neg"), ("exp", "Exp"), ("tanh", "Tanh"),
                        ("sigmoid", "Sigmoid"), ("erf", "Erf"), ("cos", "Cos"),
                        ("sin", "Sin"), ("abs", "Abs"), ("relu", "Relu"),
                        ("reciprocal", "Reciprocal")]:
        got = run_case(op, "  %%r = weft.%s %%a0 : %s" % (op, ty(a)), [a], ty(a))
        check(op, got, ort_node(onnx_op, [a]))
    for op, onnx_op in [("sqrt", "Sqrt"), ("log", "Log")]:
        got = run_case(op, "  %%r = weft.%s %%a0 : %s" % (op, ty(pa)), [pa],
                       ty(pa))
        check(op, got, ort_node(onnx_op, [pa]))
    got = run_case("silu", "  %%r = weft.silu %%a0 : %s" % ty(a), [a], ty(a))
    check("silu", got, a / (1 + np.exp(-a.astype(np.float64))))
    got = run_case("gelu", "  %%r = weft.gelu %%a0 : %s" % ty(a), [a], ty(a))
    x = a.astype(np.float64)
    check("gelu none", got,
          0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2))))
    got = run_case("gelu tanh", "  %%r = weft.gelu %%a0 {approximate = "
                   "#weft.gelu<tanh>} : %s" % ty(a), [a], ty(a))
    check("gelu tanh", got, 0.5 * x * (1 + np.tanh(
        math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))))
    g, u = f32(2, 5), f32(2, 5)
    got = run_case("swiglu", "  %%r = weft.swiglu %%a0, %%a1 : %s" % ty(g),
                   [g, u], ty(g))
    check("swiglu", got, g / (1 + np.exp(-g.astype(np.float64))) * u)


@case
def logic():
    a, b = f32(3, 4), f32(4)
    for pred, onnx_op in [("eq", "Equal"), ("lt", "Less"), ("le", "LessOrEqual"),
                          ("gt", "Greater"), ("ge", "GreaterOrEqual")]:
        got = run_case(pred, "  %%r = weft.cmp <%s>, %%a0, %%a1 : %s, %s -> "
                       "tensor<3x4xi1>" % (pred, ty(a), ty(b)), [a, b],
                       "tensor<3x4xi1>")
        check("cmp " + pred, got, ort_node(onnx_op, [a, b]))
    c, d = a > 0, b > 0
    for op, onnx_op in [("and", "And"), ("or", "Or")]:
        got = run_case(op, "  %%r = weft.%s %%a0, %%a1 : %s, %s -> %s"
                       % (op, ty(c), ty(d), ty(c)), [c, d], ty(c))
        check(op, got, ort_node(onnx_op, [c, d]))
    got = run_case("not", "  %%r = weft.not %%a0 : %s" % ty(c), [c], ty(c))
    check("not", got, ~c)
    got = run_case("select", "  %%r = weft.select %%a0, %%a1, %%a2 : %s, %s, "
                   "%s -> %s" % (ty(c), ty(a), ty(b), ty(a)), [c, a, b], ty(a))
    check("select", got, ort_node("Where", [c, a, b]))
    n = np.array([1.0, np.nan, 3.0], np.float32)
    got = run_case("isnan", "  %%r = weft.isnan %%a0 : %s -> tensor<3xi1>"
                   % ty(n), [n], "tensor<3xi1>")
    check("isnan", got, np.isnan(n))
    fi = np.array([-2.7, 0.0, 3.9, 0.5], np.float32)
    got = run_case("cast", "  %%r = weft.cast %%a0 : %s -> tensor<4xi64>"
                   % ty(fi), [fi], "tensor<4xi64>")
    check("cast f32->i64", got, ort_node("Cast", [fi], {"to": 7}))
    got = run_case("cast", "  %%r = weft.cast %%a0 : %s -> tensor<4xi1>"
                   % ty(fi), [fi], "tensor<4xi1>")
    check("cast f32->i1", got, ort_node("Cast", [fi], {"to": 9}))


@case
def movement():
    x = f32(2, 3, 4)
    got = run_case("transpose", "  %%r = weft.transpose %%a0, [2, 0, 1] : %s -> "
                   "tensor<4x2x3xf32>" % ty(x), [x], "tensor<4x2x3xf32>")
    check("transpose", got, x.transpose(2, 0, 1))
    got = run_case("tile", "  %%r = weft.tile %%a0, [1, 2, 3] : %s -> "
                   "tensor<2x6x12xf32>" % ty(x), [x], "tensor<2x6x12xf32>")
    check("tile", got, ort_node("Tile", [x, np.array([1, 2, 3], np.int64)],
                                consts={"x1": 1}))
    got = run_case("slice", "  %%r = weft.slice %%a0[[1, 2, 0] : [2, -1, 4] : "
                   "[1, -1, 2]] : %s -> tensor<1x3x2xf32>" % ty(x), [x],
                   "tensor<1x3x2xf32>")
    check("slice neg step through 0", got, ort_node(
        "Slice", [x, np.array([1, 2, 0]), np.array([2, -10, 4]),
                  np.array([0, 1, 2]), np.array([1, -1, 2])],
        consts={"x1": 1, "x2": 1, "x3": 1, "x4": 1}))
    got = run_case("slice", "  %%r = weft.slice %%a0[[0, 2, 3] : [2, 0, 0] : "
                   "[1, -2, -2]] : %s -> tensor<2x1x2xf32>" % ty(x), [x],
                   "tensor<2x1x2xf32>")
    check("slice neg step", got, x[:, 2:0:-2, 3:0:-2])
    y = f32(2, 1, 4)
    got = run_case("concat", "  %%r = weft.concat %%a0, %%a1 {axis = 1 : i64} "
                   ": (%s, %s) -> tensor<2x4x4xf32>" % (ty(x), ty(y)), [x, y],
                   "tensor<2x4x4xf32>")
    check("concat", got, np.concatenate([x, y], 1))
    got = run_case("broadcast", "  %%r = weft.broadcast %%a0 : %s -> "
                   "tensor<3x2x5x4xf32>" % ty(y), [y], "tensor<3x2x5x4xf32>")
    check("broadcast", got, np.broadcast_to(y, (3, 2, 5, 4)))
    got = run_case("reshape", "  %%r = weft.reshape %%a0 : %s -> "
                   "tensor<6x4xf32>" % ty(x), [x], "tensor<6x4xf32>")
    check("reshape", got, x.reshape(6, 4))
    idx = np.array([[0, -1], [2, 1]], np.int64)
    got = run_case("gather", "  %%r = weft.gather %%a0[%%a1] {axis = 1 : i64} : "
                   "%s, %s -> tensor<2x2x2x4xf32>" % (ty(x), ty(idx)), [x, idx],
                   "tensor<2x2x2x4xf32>")
    check("gather", got, ort_node("Gather", [x, idx], {"axis": 1}))
    ei = RNG.integers(-3, 3, (2, 3, 2)).astype(np.int64)
    got = run_case("gather_elements", "  %%r = weft.gather_elements %%a0[%%a1] "
                   "{axis = 2 : i64} : %s, %s -> tensor<2x3x2xf32>" % (ty(x), ty(ei)),
                   [x, ei], "tensor<2x3x2xf32>")
    check("gather_elements", got, ort_node("GatherElements", [x, ei],
                                           {"axis": 2}))
    ni = np.array([[[1, 3]], [[0, -2]]], np.int64)  # [2, 1, 2], batch_dims 1
    got = run_case("gather_nd", "  %%r = weft.gather_nd %%a0[%%a1] {batch_dims = "
                   "1 : i64} : %s, %s -> tensor<2x1xf32>" % (ty(x), ty(ni)),
                   [x, ni], "tensor<2x1xf32>")
    check("gather_nd batch_dims=1", got, ort_node("GatherND", [x, ni],
                                                  {"batch_dims": 1}))
    ni0 = np.array([[1, 2], [0, 0]], np.int64)
    got = run_case("gather_nd0", "  %%r = weft.gather_nd %%a0[%%a1] : %s, %s -> "
                   "tensor<2x4xf32>" % (ty(x), ty(ni0)), [x, ni0],
                   "tensor<2x4xf32>")
    check("gather_nd", got, ort_node("GatherND", [x, ni0]))
    table, ids = f32(10, 4), np.array([[3, 9], [0, 3]], np.int64)
    got = run_case("embedding", "  %%r = weft.embedding %%a0[%%a1] : %s, %s -> "
                   "tensor<2x2x4xf32>" % (ty(table), ty(ids)), [table, ids],
                   "tensor<2x2x4xf32>")
    check("embedding", got, table[ids])
    for attrs, onnx_attrs in [("{axis = 1 : i64}", {}),
                              ("{axis = 1 : i64, exclusive = true, reverse = "
                               "true}", {"exclusive": 1, "reverse": 1})]:
        got = run_case("cumsum", "  %%r = weft.cumsum %%a0 %s : %s"
                       % (attrs, ty(x)), [x], ty(x))
        check("cumsum " + attrs, got, ort_node(
            "CumSum", [x, np.array(1, np.int64)], onnx_attrs, consts={"x1": 1}))
    for upper, k in [(True, 0), (False, -1), (True, 2)]:
        got = run_case("trilu", "  %%r = weft.trilu %%a0 {k = %d : i64, upper = "
                       "%s} : %s" % (k, "true" if upper else "false", ty(x)),
                       [x], ty(x))
        check("trilu upper=%s k=%d" % (upper, k), got, ort_node(
            "Trilu", [x, np.array(k, np.int64)], {"upper": int(upper)},
            consts={"x1": 1}))


@case
def reductions():
    x = f32(2, 3, 4)
    for kind, onnx_op in [("sum", "ReduceSum"), ("mean", "ReduceMean"),
                          ("max", "ReduceMax"), ("min", "ReduceMin"),
                          ("prod", "ReduceProd")]:
        for keep in (True, False):
            shape = "2x1x1xf32" if keep else "2xf32"
            got = run_case(kind, "  %%r = weft.reduce <%s> %%a0 {axes = array<i64: "
                           "1, 2>, keepdims = %s} : %s -> tensor<%s>"
                           % (kind, "true" if keep else "false", ty(x), shape),
                           [x], "tensor<%s>" % shape)
            check("reduce %s keepdims=%s" % (kind, keep), got, ort_node(
                onnx_op, [x, np.array([1, 2], np.int64)],
                {"keepdims": int(keep)}, consts={"x1": 1}))
    got = run_case("softmax", "  %%r = weft.softmax %%a0 {axis = 1 : i64} : %s"
                   % ty(x), [x], ty(x))
    check("softmax", got, ort_node("Softmax", [x], {"axis": 1}))
    s, b = f32(3, 4), f32(4)
    got = run_case("layer_norm", "  %%r = weft.layer_norm %%a0, %%a1, %%a2 {axis = "
                   "1 : i64, epsilon = 1.0e-5 : f64} : %s, %s, %s -> %s"
                   % (ty(x), ty(s), ty(b), ty(x)), [x, s, b], ty(x))
    check("layer_norm axis=1", got, ort_node(
        "LayerNormalization", [x, s, b], {"axis": 1, "epsilon": 1e-5}))
    got = run_case("layer_norm", "  %%r = weft.layer_norm %%a0, %%a1 {axis = "
                   "2 : i64, epsilon = 1.0e-5 : f64} : %s, %s -> %s"
                   % (ty(x), ty(b), ty(x)), [x, b], ty(x))
    check("layer_norm no bias", got, ort_node(
        "LayerNormalization", [x, b], {"axis": 2, "epsilon": 1e-5}))
    got = run_case("rms_norm", "  %%r = weft.rms_norm %%a0, %%a1 {axis = 2 : i64, "
                   "epsilon = 1.0e-6 : f64} : %s, %s -> %s"
                   % (ty(x), ty(b), ty(x)), [x, b], ty(x))
    xd = x.astype(np.float64)
    check("rms_norm", got, xd / np.sqrt((xd * xd).mean(-1, keepdims=True) + 1e-6)
          * b)


@case
def transformer():
    a, b = f32(2, 1, 3, 4), f32(5, 4)
    got = run_case("matmul", "  %%r = weft.matmul %%a0, %%a1 {transpose_b = true} "
                   ": %s, %s -> tensor<2x1x3x5xf32>" % (ty(a), ty(b)), [a, b],
                   "tensor<2x1x3x5xf32>")
    check("matmul transpose_b", got, ort_node("MatMul", [a, b.T.copy()]))
    c = f32(1, 3, 3, 5)
    got = run_case("matmul", "  %%r = weft.matmul %%a0, %%a1 {transpose_a = true} "
                   ": %s, %s -> tensor<2x3x4x5xf32>" % (ty(a), ty(c)), [a, c],
                   "tensor<2x3x4x5xf32>")
    check("matmul transpose_a bcast", got, ort_node(
        "MatMul", [np.swapaxes(a, -1, -2).copy(), c]))
    x, w, bias = f32(2, 3, 4), f32(5, 4), f32(5)
    got = run_case("linear", "  %%r = weft.linear %%a0, %%a1, %%a2 "
                   "{transpose_weight = true} : %s, %s, %s -> tensor<2x3x5xf32>"
                   % (ty(x), ty(w), ty(bias)), [x, w, bias], "tensor<2x3x5xf32>")
    check("linear transpose_weight + bias", got, ort_node(
        "Gemm", [x.reshape(6, 4), w, bias], {"transB": 1}).reshape(2, 3, 5))
    wt = w.T.copy()
    got = run_case("linear", "  %%r = weft.linear %%a0, %%a1 : %s, %s -> "
                   "tensor<2x3x5xf32>" % (ty(x), ty(wt)), [x, wt],
                   "tensor<2x3x5xf32>")
    check("linear", got, x @ wt)
    # The residual: onnxruntime's Gemm then Add, with and without a bias.
    res = f32(2, 3, 5)
    got = run_case("linear", "  %%r = weft.linear %%a0, %%a1, %%a2 residual "
                   "%%a3 {transpose_weight = true} : %s, %s, %s residual %s "
                   "-> tensor<2x3x5xf32>" % (ty(x), ty(w), ty(bias), ty(res)),
                   [x, w, bias, res], "tensor<2x3x5xf32>")
    gemm = ort_node("Gemm", [x.reshape(6, 4), w, bias], {"transB": 1})
    check("linear + bias + residual", got,
          ort_node("Add", [gemm.reshape(2, 3, 5), res]))
    got = run_case("linear", "  %%r = weft.linear %%a0, %%a1 residual %%a2 : "
                   "%s, %s residual %s -> tensor<2x3x5xf32>"
                   % (ty(x), ty(wt), ty(res)), [x, wt, res],
                   "tensor<2x3x5xf32>")
    check("linear + residual", got,
          ort_node("Add", [ort_node("MatMul", [x, wt]), res]))
    # rotary, partial (r = 4 of 6), rotate-half and interleaved, against
    # ONNX RotaryEmbedding semantics written out in numpy.
    q = f32(2, 3, 5, 6)
    ang = RNG.standard_normal((1, 1, 5, 2))
    cos_h, sin_h = np.cos(ang), np.sin(ang)
    cos = np.concatenate([cos_h, cos_h], -1).astype(np.float32)
    sin = np.concatenate([sin_h, sin_h], -1).astype(np.float32)
    got = run_case("rotary", "  %%r = weft.rotary %%a0, %%a1, %%a2 : %s, %s, %s "
                   "-> %s" % (ty(q), ty(cos), ty(sin), ty(q)), [q, cos, sin],
                   ty(q))
    x1, x2 = q[..., 0:2], q[..., 2:4]
    want = np.concatenate([x1 * cos_h - x2 * sin_h, x2 * cos_h + x1 * sin_h,
                           q[..., 4:]], -1)
    check("rotary rotate-half partial", got, want)
    cos_i = np.repeat(cos_h, 2, -1).astype(np.float32)
    sin_i = np.repeat(sin_h, 2, -1).astype(np.float32)
    got = run_case("rotary", "  %%r = weft.rotary %%a0, %%a1, %%a2 {interleaved "
                   "= true} : %s, %s, %s -> %s" % (ty(q), ty(cos_i), ty(sin_i),
                                                   ty(q)), [q, cos_i, sin_i], ty(q))
    e, o = q[..., 0:4:2], q[..., 1:4:2]
    want = q.astype(np.float64).copy()
    want[..., 0:4:2] = e * cos_h - o * sin_h
    want[..., 1:4:2] = o * cos_h + e * sin_h
    check("rotary interleaved partial", got, want)
    # attention: GQA (4 query heads on 2 kv heads), S=3 queries on T=5 keys,
    # causal with the offset T-S, and an additive mask; reference built by
    # repeating kv heads explicitly.
    q, k, v = f32(2, 4, 3, 8), f32(2, 2, 5, 8), f32(2, 2, 5, 6)
    mask = np.where(RNG.random((2, 1, 3, 5)) < 0.2, -1e9, 0).astype(np.float32)
    mask[..., 0] = 0
    got = run_case("attention", "  %%r = weft.attention %%a0, %%a1, %%a2, %%a3 "
                   "{causal = true, scale = 0.3 : f64} : %s, %s, %s, %s -> "
                   "tensor<2x4x3x6xf32>" % (ty(q), ty(k), ty(v), ty(mask)),
                   [q, k, v, mask], "tensor<2x4x3x6xf32>")
    kr = np.repeat(k, 2, axis=1).astype(np.float64)
    vr = np.repeat(v, 2, axis=1).astype(np.float64)
    s = 0.3 * q.astype(np.float64) @ np.swapaxes(kr, -1, -2) + mask
    s = s + np.triu(np.full((3, 5), -np.inf), k=1 + 5 - 3)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    check("attention gqa causal mask", got, p @ vr)


def constants():
    # hex, splat, list, hex-float, bool bit-packing: what the printer produces
    text = """func.func @main() -> (tensor<200xi1>, tensor<3xf32>, tensor<2x2xi64>, tensor<130xf32>) {
  %%a = arith.constant dense<[%s]> : tensor<200xi1>
  %%b = arith.constant dense<[0x7F800000, 0xFF800000, 1.5]> : tensor<3xf32>
  %%c = arith.constant dense<[[1, -2], [3, 4]]> : tensor<2x2xi64>
  %%d = arith.constant dense<[%s]> : tensor<130xf32>
  return %%a, %%b, %%c, %%d : tensor<200xi1>, tensor<3xf32>, tensor<2x2xi64>, tensor<130xf32>
}
""" % (", ".join("true" if i % 3 == 0 else "false" for i in range(200)),
       ", ".join(repr(float(i) * 0.25) for i in range(130)))
    p = subprocess.run([weft_opt(), "-"], input=text, capture_output=True,
                       text=True, check=True)
    outs, _ = weft_eval.evaluate(weft_eval.parse_module(p.stdout), {}, None)
    check("const i1 hex", outs[0], np.arange(200) % 3 == 0)
    check("const hex floats", outs[1], np.array([np.inf, -np.inf, 1.5],
                                                np.float32))
    check("const int list", outs[2], np.array([[1, -2], [3, 4]]))
    check("const f32 hex", outs[3], np.arange(130, dtype=np.float32) * 0.25)


case(constants)

if FAILED:
    print("%d failed: %s" % (len(FAILED), ", ".join(FAILED)))
    sys.exit(1)
print("all passed")
