#!/usr/bin/env python3
"""Runs weft's generated ELEMENTWISE kernels on a GPU against the CPU
interpreter's outputs.

  # where weft is built (no GPU needed):
  build/bin/weft-codegen-gpu-check /tmp/cg-check
  # on the GPU machine (needs only the CUDA driver, Python and numpy):
  python3 run_codegen_kernels.py /tmp/cg-check

Loads kernels.sm_90a.cubin, and then kernels.compute_90.ptx (JIT-compiled by
the driver), with cuModuleLoadData; launches every case's kernel with the
ABI  kernel(void *out, const void *in0, ...)  at 256 threads a block on 1, 3
and the runtime's min(ceil(n / 1024), 65535) blocks, with 16-byte aligned
buffers and with buffers one element off (the scalar path); compares each
output with the interpreter's (bit-equal for exact cases; within a few ulp
for transcendental functions) and checks that nothing is written past it.
Prints one PASS or FAIL line per case and module, every failure, and exits 1
if any failed.
"""

import ctypes
import json
import os
import sys

import numpy as np

NP = {"f32": np.float32, "f16": np.float16, "f64": np.float64,
      "i64": np.int64, "i32": np.int32, "i16": np.int16, "i8": np.int8,
      "u8": np.uint8, "u16": np.uint16, "u32": np.uint32, "u64": np.uint64,
      "bool": np.uint8, "bf16": np.uint16}
SIZE = {k: np.dtype(v).itemsize for k, v in NP.items()}
REL = {"bf16": 2.0 ** -7, "f16": 2.0 ** -10}


class Cuda:
    def __init__(self):
        self.lib = ctypes.CDLL("libcuda.so.1")
        self.check(self.lib.cuInit(0), "cuInit")
        dev = ctypes.c_int()
        self.check(self.lib.cuDeviceGet(ctypes.byref(dev), 0), "cuDeviceGet")
        self.ctx = ctypes.c_void_p()
        self.check(self.lib.cuDevicePrimaryCtxRetain(ctypes.byref(self.ctx), dev),
                   "cuDevicePrimaryCtxRetain")
        self.check(self.lib.cuCtxSetCurrent(self.ctx), "cuCtxSetCurrent")

    def check(self, rc, what):
        if rc != 0:
            name = ctypes.c_char_p()
            self.lib.cuGetErrorName(rc, ctypes.byref(name))
            raise RuntimeError(f"{what}: {name.value.decode() if name.value else rc}")

    def load(self, data):
        mod = ctypes.c_void_p()
        buf = ctypes.create_string_buffer(data, len(data) + 1)
        self.check(self.lib.cuModuleLoadData(ctypes.byref(mod), buf), "cuModuleLoadData")
        return mod

    def function(self, mod, name):
        f = ctypes.c_void_p()
        self.check(self.lib.cuModuleGetFunction(ctypes.byref(f), mod, name.encode()),
                   f"cuModuleGetFunction {name}")
        return f

    def alloc(self, n):
        p = ctypes.c_uint64()
        self.check(self.lib.cuMemAlloc_v2(ctypes.byref(p), max(n, 1)), "cuMemAlloc")
        return p.value

    def free(self, p):
        self.lib.cuMemFree_v2(ctypes.c_uint64(p))

    def put(self, dst, data):
        if len(data):
            self.check(self.lib.cuMemcpyHtoD_v2(ctypes.c_uint64(dst), data, len(data)),
                       "cuMemcpyHtoD")

    def get(self, src, n):
        out = ctypes.create_string_buffer(max(n, 1))
        self.check(self.lib.cuMemcpyDtoH_v2(out, ctypes.c_uint64(src), n), "cuMemcpyDtoH")
        return out.raw[:n]

    def launch(self, f, grid, pointers):
        args = [ctypes.c_uint64(p) for p in pointers]
        params = (ctypes.c_void_p * len(args))(
            *[ctypes.cast(ctypes.byref(a), ctypes.c_void_p) for a in args])
        self.check(self.lib.cuLaunchKernel(f, grid, 1, 1, 256, 1, 1, 0, None,
                                           params, None), "cuLaunchKernel")
        self.check(self.lib.cuCtxSynchronize(), "cuCtxSynchronize")


def as_float(raw, dtype):
    if dtype == "bf16":
        return (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return np.frombuffer(raw, NP[dtype]).astype(np.float64)


def compare(got, want, dtype, exact):
    """Indices where got and want disagree."""
    if dtype not in ("f32", "f16", "bf16", "f64"):
        g = np.frombuffer(got, NP[dtype]).astype(np.int64)
        w = np.frombuffer(want, NP[dtype]).astype(np.int64)
        if dtype == "bool":
            g, w = g != 0, w != 0
        return np.nonzero(g != w)[0], g, w
    g, w = as_float(got, dtype), as_float(want, dtype)
    with np.errstate(invalid="ignore"):
        nan = np.isnan(g) & np.isnan(w)
        same = (g == w) & (np.signbit(g) == np.signbit(w))
        if exact:
            ok = nan | same
        else:
            close = np.abs(g - w) <= 1e-6 + REL.get(dtype, 4e-6) * np.abs(w)
            ok = nan | same | (close & np.isfinite(g) & np.isfinite(w))
    return np.nonzero(~ok)[0], g, w


def run_case(cuda, f, case, root, misalign):
    """Returns a list of failure messages."""
    failures = []
    inputs = []
    for t in case["inputs"]:
        data = open(os.path.join(root, t["file"]), "rb").read()
        off = misalign * SIZE[t["dtype"]]
        p = cuda.alloc(len(data) + off + 16)
        cuda.put(p + off, data)
        inputs.append((p, p + off))
    o = case["output"]
    want = open(os.path.join(root, o["file"]), "rb").read()
    n = int(np.prod(o["shape"])) if o["shape"] else 1
    off = misalign * SIZE[o["dtype"]]
    guard = 64
    out = cuda.alloc(len(want) + off + guard)
    try:
        for grid in sorted({1, 3, max(1, min((n + 1023) // 1024, 65535))}):
            cuda.put(out, b"\xa5" * (len(want) + off + guard))
            cuda.launch(f, grid, [out + off] + [q for _, q in inputs])
            raw = cuda.get(out, len(want) + off + guard)
            got = raw[off:off + len(want)]
            if raw[:off] != b"\xa5" * off or raw[off + len(want):] != b"\xa5" * guard:
                failures.append(f"grid {grid}: written outside the output")
            bad, g, w = compare(got, want, o["dtype"], case["exact"])
            if len(bad):
                shown = ", ".join(f"[{i}] {g[i]} vs {w[i]}" for i in bad[:4])
                failures.append(f"grid {grid}: {len(bad)} of {n} differ: {shown}")
    finally:
        for p, _ in inputs:
            cuda.free(p)
        cuda.free(out)
    return failures


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    cases = json.load(open(os.path.join(root, "cases.json")))
    cuda = Cuda()
    failed = 0
    for module in ["kernels.sm_90a.cubin", "kernels.compute_90.ptx"]:
        try:
            mod = cuda.load(open(os.path.join(root, module), "rb").read())
        except RuntimeError as e:
            print(f"FAIL {module}: {e}")
            failed += 1
            continue
        for case in cases:
            msgs = []
            try:
                f = cuda.function(mod, case["kernel"])
                for misalign in (0, 1):
                    msgs += [("misaligned " if misalign else "aligned ") + m
                             for m in run_case(cuda, f, case, root, misalign)]
            except RuntimeError as e:
                msgs.append(str(e))
            status = "FAIL" if msgs else "PASS"
            failed += bool(msgs)
            print(f"{status} {module} {case['name']} ({case['kernel']})")
            for m in msgs:
                print(f"    {m}")
    print(f"{'FAILED' if failed else 'PASSED'}: {failed} failures, "
          f"{2 * len(cases)} case runs")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
