#!/usr/bin/env python3
"""Unsigned integers (uint16, uint32, uint64) through weft compile and
weft-run against onnxruntime, with values that signed arithmetic would get
wrong: uint64 above 2^63 in Div, Max, Min, Less, ReduceMax and Cast to
float, uint32 and uint16 wrapping in Add, Sub and Mul.

  unsigned_check.py --weft WEFT --weft-run WEFT_RUN --work DIR

The reference is onnxruntime where its CPU kernels take the type, else
numpy (ReduceMax of every unsigned type, Max and Min of uint16). Prints one
line per type and exits 1 on any difference: every output equal, in dtype,
shape and value.
"""
import argparse
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

ONNX_TYPES = {np.uint16: TensorProto.UINT16, np.uint32: TensorProto.UINT32,
              np.uint64: TensorProto.UINT64}


OUTPUTS = ["add", "sub", "mul", "div", "max", "min", "less", "float", "rmax"]
# What numpy computes where onnxruntime has no kernel for the type.
NUMPY = {"max": lambda x, y: np.maximum(x, y),
         "min": lambda x, y: np.minimum(x, y),
         "rmax": lambda x, y: np.array(x.max(), x.dtype)}


def model(dtype, n, only=OUTPUTS):
    """x, y -> x+y, x-y, x*y, x/y, max, min, x<y, float(x), reducemax(x)
    (the outputs named in `only`)."""
    t = ONNX_TYPES[dtype]
    ops = {"add": ("Add", {}), "sub": ("Sub", {}), "mul": ("Mul", {}),
           "div": ("Div", {}), "max": ("Max", {}), "min": ("Min", {}),
           "less": ("Less", {}), "float": ("Cast", {"to": TensorProto.FLOAT}),
           "rmax": ("ReduceMax", {"keepdims": 0})}
    nodes, outs = [], []
    for o in only:
        op, attrs = ops[o]
        ins = ["x"] if op in ("Cast", "ReduceMax") else ["x", "y"]
        nodes.append(helper.make_node(op, ins, [o], **attrs))
        elem = {"less": TensorProto.BOOL, "float": TensorProto.FLOAT}.get(o, t)
        outs.append(helper.make_tensor_value_info(o, elem,
                                                  [] if o == "rmax" else [n]))
    g = helper.make_graph(nodes, "unsigned",
                          [helper.make_tensor_value_info("x", t, [n]),
                           helper.make_tensor_value_info("y", t, [n])], outs)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def reference(dtype, n, x, y, work):
    """Each output: onnxruntime's where it runs the type, else numpy's."""
    by_ort = [o for o in OUTPUTS
              if o not in NUMPY or (o in ("max", "min") and dtype != np.uint16)]
    path = os.path.join(work, np.dtype(dtype).name + ".ort.onnx")
    onnx.save(model(dtype, n, by_ort), path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    ref = dict(zip(by_ort, sess.run(by_ort, {"x": x, "y": y})))
    for o in OUTPUTS:
        if o not in ref:
            ref[o] = NUMPY[o](x, y)
    return ref


def values(dtype, rng, n):
    info = np.iinfo(dtype)
    top = int(info.max)
    edges = [top, top - 1, top // 2 + 1, top // 2, 1, 2, 3, 0]
    x = rng.integers(0, top, n, dtype=dtype, endpoint=True)
    y = rng.integers(1, top, n, dtype=dtype, endpoint=True)
    x[:len(edges)] = edges
    y[:len(edges)] = [3, top, 2, top // 2 + 1, top, 1, 7, 5]
    return x, y


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weft", required=True)
    p.add_argument("--weft-run", required=True)
    p.add_argument("--work", required=True)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    failed = False
    n = 64
    for dtype in (np.uint16, np.uint32, np.uint64):
        name = np.dtype(dtype).name
        path = os.path.join(a.work, name + ".onnx")
        onnx.save(model(dtype, n), path)
        x, y = values(dtype, rng, n)
        ref, names = reference(dtype, n, x, y, a.work), OUTPUTS
        art = os.path.join(a.work, name + ".weft")
        ins = os.path.join(a.work, name + ".in.npz")
        outs = os.path.join(a.work, name + ".out.npz")
        np.savez(ins, x=x, y=y)
        for cmd in ([a.weft, "compile", path, "-o", art, "--quiet"],
                    [a.weft_run, art, "--inputs", ins, "--outputs", outs]):
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode:
                print(f"FAIL: {name}: {os.path.basename(cmd[0])} exited "
                      f"{r.returncode}: {r.stderr.strip()}")
                return 1
        with np.load(outs) as z:
            got = {k: z[k] for k in z.files}
        bad = [k for k in names
               if got[k].dtype != ref[k].dtype or got[k].shape != ref[k].shape
               or not np.array_equal(got[k], ref[k])]
        failed |= bool(bad)
        if bad:
            for k in bad:
                i = int(np.argmax(got[k] != ref[k])) if got[k].shape == ref[
                    k].shape and got[k].ndim else 0
                print(f"FAIL: {name}: output '{k}' ({got[k].dtype}) differs "
                      f"from onnxruntime ({ref[k].dtype}), e.g. element {i}: "
                      f"{got[k].reshape(-1)[i]} vs {ref[k].reshape(-1)[i]}")
        else:
            print(f"ok: {name}: {', '.join(names)} equal onnxruntime's "
                  f"(max x {int(x.max())})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
