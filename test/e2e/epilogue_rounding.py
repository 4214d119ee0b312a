#!/usr/bin/env python3
"""Checks where a fused GEMM epilogue rounds, bit for bit: one linear layer
with a bias and either GPT-2's tanh GELU or a residual add, compiled by
weft in bf16 or f16 and run by weft-run on values the type holds exactly.

  epilogue_rounding.py gelu|residual --dtype bf16|f16 -o DIR

weft fuses the bias and the GELU (or the residual) into the GEMM, which
computes in float32 and rounds once. The script compares weft's output
with numpy references that round once (round(gelu(x W + b)),
round(x W + b + r)) and with references that round at one or two more
points (after the product, after the bias), as an unfused or differently
ordered epilogue would. It requires weft to equal the once-rounded
reference in at least 99.9% of the elements and within one unit in the
last place everywhere (the product's summation order and tanh may differ
in float32's last bit, which flips a rounding rarely), and each other
order to differ from weft in more than 5% of them (the test can tell the
orders apart). Prints weft inspect's GEMM step and one line per reference;
exits 1 on a failure. $WEFT and $WEFT_RUN name the binaries.
"""
import argparse
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lowp_reference  # noqa: E402

M, K, N = 24, 64, 256
ONCE_MIN = 0.999  # of the elements equal to the once-rounded reference
OTHER_MAX = 0.95  # of the elements equal to another order's reference


def build(kind, dtype, rng):
    """The model and its inputs, every value exact in `dtype`."""
    rnd = lambda a: lowp_reference.round_array(a, dtype)
    w = rnd(0.1 * rng.standard_normal((K, N)))
    b = rnd(0.5 * rng.standard_normal(N))
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")]
    nodes = []

    def op(op_type, *inputs):
        out = f"t{len(nodes)}"
        nodes.append(helper.make_node(op_type, list(inputs), [out]))
        return out

    def const(v):
        name = f"c{len(inits)}"
        inits.append(numpy_helper.from_array(np.array(v, np.float32), name))
        return name

    ins = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [M, K])]
    feeds = {"x": rnd(rng.standard_normal((M, K)))}
    y = op("Gemm", "x", "W", "b")
    if kind == "gelu":  # as GPT-2's TorchScript export writes it
        cube = op("Mul", op("Pow", y, const(3.0)), const(0.044715))
        inner = op("Mul", op("Add", y, cube), const(0.7978845608))
        t = op("Add", op("Tanh", inner), const(1.0))
        op("Mul", op("Mul", y, const(0.5)), t)
    else:
        ins.append(helper.make_tensor_value_info("r", TensorProto.FLOAT,
                                                 [M, N]))
        feeds["r"] = rnd(4.0 * rng.standard_normal((M, N)))
        op("Add", y, "r")
    nodes[-1].output[0] = "y"
    graph = helper.make_graph(nodes, kind, ins, [helper.make_tensor_value_info(
        "y", TensorProto.FLOAT, [M, N])], inits)
    model = helper.make_model(graph,
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model, feeds, w, b


def references(kind, dtype, feeds, w, b):
    """{name: output} for each rounding order, the once-rounded first."""
    rnd = lambda a: lowp_reference.round_array(np.asarray(a, np.float32),
                                               dtype)
    x = feeds["x"]
    prod = (x.astype(np.float64) @ w.astype(np.float64)).astype(np.float32)
    if kind == "gelu":
        c, k = np.float32(0.7978845608), np.float32(0.044715)
        gelu = lambda y: (np.float32(0.5) * y * (
            np.float32(1) + np.tanh(c * (y + k * y * y * y)))).astype(
                np.float32)
        return {"once: round(gelu(x W + b))": rnd(gelu(prod + b)),
                "round(gelu(round(x W + b)))": rnd(gelu(rnd(prod + b))),
                "round(gelu(round(round(x W) + b)))":
                    rnd(gelu(rnd(rnd(prod) + b)))}
    r = feeds["r"]
    return {"once: round(x W + b + r)": rnd(prod + b + r),
            "round(round(x W + b) + r)": rnd(rnd(prod + b) + r),
            "round(round(round(x W) + b) + r)": rnd(rnd(rnd(prod) + b) + r)}


def ordered(a, dtype):
    """The values' bit patterns in `dtype` as integers ordered like the
    values (so that a difference counts units in the last place)."""
    if dtype == "bf16":
        bits = (np.asarray(a, np.float32).view(np.uint32) >> 16).astype(
            np.int64)
    else:
        bits = np.asarray(a, np.float32).astype(np.float16).view(
            np.uint16).astype(np.int64)
    sign = 1 << 15
    return np.where(bits & sign, -(bits & (sign - 1)), bits)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=["gelu", "residual"])
    p.add_argument("--dtype", choices=["bf16", "f16"], default="bf16")
    p.add_argument("-o", dest="out", required=True, metavar="DIR")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    weft = os.environ.get("WEFT") or shutil.which("weft")
    weft_run = os.environ.get("WEFT_RUN") or shutil.which("weft-run")
    os.makedirs(a.out, exist_ok=True)
    model, feeds, w, b = build(a.kind, a.dtype, np.random.default_rng(a.seed))
    path = os.path.join(a.out, a.kind + ".onnx")
    onnx.save(model, path)
    ins, outs = (os.path.join(a.out, f) for f in ("inputs.npz", "out.npz"))
    np.savez(ins, **feeds)
    art = os.path.join(a.out, a.kind + ".weft")
    for cmd in ([weft, "compile", path, "--dtype", a.dtype, "-o", art,
                 "--quiet"],
                [weft_run, art, "--inputs", ins, "--outputs", outs]):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            print(f"FAIL: {' '.join(cmd)} exited {r.returncode}:\n"
                  f"{r.stdout}{r.stderr}")
            return 1
    r = subprocess.run([weft, "inspect", art], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        if line.split()[1:2] == ["GEMM"]:
            print(line.strip())
    got = np.load(outs)["y"]
    failed = False
    for k, (name, ref) in enumerate(references(a.kind, a.dtype, feeds, w,
                                               b).items()):
        equal = float((ref == got).mean())
        ulps = int(np.abs(ordered(ref, a.dtype) - ordered(got, a.dtype)).max())
        if k == 0:
            ok = equal >= ONCE_MIN and ulps <= 1
            need = f"needs >= {ONCE_MIN:.1%} and 1 ulp"
        else:
            ok = equal <= OTHER_MAX
            need = f"needs <= {OTHER_MAX:.0%}"
        failed |= not ok
        print(f"{'ok' if ok else 'FAIL'}: {a.kind} {a.dtype}: weft equals "
              f"{name} in {equal:.2%} of {got.size} elements, at most {ulps} "
              f"ulp apart ({need})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
