#!/usr/bin/env python3
"""Writes the tiny artifacts and input files of run-refusals.test.

  make_run_artifacts.py DIR            writes DIR/<artifact>/ and DIR/*.npz
  make_run_artifacts.py DIR --check F  checks F (weft-run's out.npz of the
                                       'good' artifact on x.npz) with numpy

artifact_pb2 must have been generated into DIR (protoc --python_out=DIR).
The 'good' artifact computes h = x @ W^T + b (W [4, 3] in weights.bin,
b a constant), y = relu(h) and s = softmax(h, axis=-1).
"""
import hashlib
import os
import shutil
import sys

import numpy as np

F32, I64, BOOL = 1, 5, 10
# The artifact format version the runtime reads (kArtifactFormatVersion).
FORMAT = 2


def pb():
    sys.path.insert(0, sys.argv[1])
    import artifact_pb2
    return artifact_pb2


X = np.array([[1, -2, 3], [0.5, 0, -1]], np.float32)
W = np.arange(12, dtype=np.float32).reshape(4, 3) / 10 - 0.5
B = np.array([0.1, -0.2, 0.3, 0], np.float32)


def expected():
    h = X @ W.T + B
    e = np.exp(h - h.max(-1, keepdims=True))
    return {"y": np.maximum(h, 0), "s": e / e.sum(-1, keepdims=True)}


def buffer(plan, bid, kind, dtype, shape, offset=0, name="", esize=4):
    b = plan.buffers.add(id=bid, kind=kind, dtype=dtype, shape=shape,
                         offset=offset, name=name)
    b.bytes = int(np.prod(shape, dtype=np.int64)) * esize
    return b


def spec(specs, name, dtype, shape):
    specs.add(name=name, dtype=dtype, shape=shape)


def write_artifact(a, d, plans, manifest):
    os.makedirs(d, exist_ok=True)
    for r, plan in enumerate(plans):
        data = plan.SerializeToString()
        with open(os.path.join(d, "rank%d.plan.pb" % r), "wb") as f:
            f.write(data)
        manifest.ranks.add(rank=r, plan_file="rank%d.plan.pb" % r,
                           plan_sha256=hashlib.sha256(data).hexdigest())
    with open(os.path.join(d, "manifest.pb"), "wb") as f:
        f.write(manifest.SerializeToString())


def good_plan(a):
    B_ = a.Buffer
    plan = a.Plan(format_version=FORMAT, rank=0, arena_bytes=256)
    buffer(plan, 0, B_.INPUT, F32, [2, 3], 0, "x")
    buffer(plan, 1, B_.WEIGHT, F32, [4, 3]).weight = 0
    buffer(plan, 2, B_.CONSTANT, F32, [4]).data = B.tobytes()
    buffer(plan, 3, B_.ARENA, F32, [2, 4], 64)
    buffer(plan, 4, B_.OUTPUT, F32, [2, 4], 128, "y")
    buffer(plan, 5, B_.OUTPUT, F32, [2, 4], 192, "s")
    plan.inputs.append(0)
    plan.outputs.extend([4, 5])
    wbytes = W.tobytes()
    plan.weights.add(name="W", dtype=F32, shape=[4, 3], file="weights.bin",
                     offset=16, length=len(wbytes),
                     sha256=hashlib.sha256(wbytes).hexdigest())
    gemm = plan.steps.add(kind=a.Step.GEMM, inputs=[0, 1, 2], outputs=[3],
                          name="linear", location="node_linear")
    gemm.gemm.transpose_b = True
    gemm.gemm.has_bias = True
    relu = plan.steps.add(kind=a.Step.ELEMENTWISE, inputs=[3], outputs=[4],
                          name="relu")
    relu.program.add(op=a.Instr.INPUT, index=0, dtype=F32)
    relu.program.add(op=a.Instr.RELU, args=[0], dtype=F32)
    sm = plan.steps.add(kind=a.Step.SOFTMAX, inputs=[3], outputs=[5],
                        name="softmax")
    sm.softmax.axis = -1
    return plan, b"\0" * 16 + wbytes


def good_manifest(a):
    m = a.Manifest(format_version=FORMAT, world_size=1, target="cpu",
                   compute_dtype=F32)
    spec(m.inputs, "x", F32, [2, 3])
    spec(m.outputs, "y", F32, [2, 4])
    spec(m.outputs, "s", F32, [2, 4])
    return m


def write_good(a, d, version=FORMAT):
    plan, wfile = good_plan(a)
    m = good_manifest(a)
    m.format_version = version
    write_artifact(a, d, [plan], m)
    with open(os.path.join(d, "weights.bin"), "wb") as f:
        f.write(wfile)


def write_embedding(a, d):
    """out = table[ids]: an id out of range fails while running."""
    B_ = a.Buffer
    plan = a.Plan(format_version=FORMAT, rank=0, arena_bytes=128)
    buffer(plan, 0, B_.INPUT, I64, [2], 0, "ids", esize=8)
    buffer(plan, 1, B_.CONSTANT, F32, [3, 2]).data = \
        np.arange(6, dtype=np.float32).tobytes()
    buffer(plan, 2, B_.OUTPUT, F32, [2, 2], 64, "out")
    plan.inputs.append(0)
    plan.outputs.append(2)
    embed = plan.steps.add(kind=a.Step.EMBEDDING, inputs=[1, 0], outputs=[2],
                           name="embed", location="node_gather")
    embed.embedding.SetInParent()  # the whole table: no vocab_start
    m = a.Manifest(format_version=FORMAT, world_size=1)
    spec(m.inputs, "ids", I64, [2])
    spec(m.outputs, "out", F32, [2, 2])
    write_artifact(a, d, [plan], m)


def write_multirank(a, d):
    """Two ranks whose plans all-reduce y = x + x: one rank alone (--rank)
    cannot run them."""
    B_ = a.Buffer
    plans = []
    for r in range(2):
        plan = a.Plan(format_version=FORMAT, rank=r, arena_bytes=128)
        buffer(plan, 0, B_.INPUT, F32, [2, 3], 0, "x")
        buffer(plan, 1, B_.OUTPUT, F32, [2, 3], 64, "y")
        plan.inputs.append(0)
        plan.outputs.append(1)
        ar = plan.steps.add(kind=a.Step.COLLECTIVE, inputs=[0], outputs=[1],
                            name="all_reduce")
        ar.collective.op = 0
        ar.collective.group.extend([0, 1])
        plans.append(plan)
    m = a.Manifest(format_version=FORMAT, world_size=2)
    spec(m.inputs, "x", F32, [2, 3])
    spec(m.outputs, "y", F32, [2, 3])
    write_artifact(a, d, plans, m)


def write_inputs(d):
    np.savez(os.path.join(d, "x.npz"), x=X)
    np.savez_compressed(os.path.join(d, "x_compressed.npz"), x=X)
    np.savez(os.path.join(d, "none.npz"), other=X)
    np.savez(os.path.join(d, "extra.npz"), x=X, z=X)
    # 64 MiB of zeros in 65 KiB: refused before it is inflated.
    np.savez_compressed(os.path.join(d, "bomb.npz"), x=X,
                        z=np.zeros(16 << 20, np.float32))
    np.savez(os.path.join(d, "f64.npz"), x=X.astype(np.float64))
    np.savez(os.path.join(d, "shape.npz"), x=X.T.copy())
    np.savez(os.path.join(d, "ids_bad.npz"), ids=np.array([1, 7], np.int64))
    np.savez(os.path.join(d, "ids_ok.npz"), ids=np.array([2, 0], np.int64))
    with open(os.path.join(d, "garbage.npz"), "wb") as f:
        f.write(b"this is not a zip file")


def check(path):
    got = np.load(path)
    want = expected()
    if sorted(got.files) != sorted(want):
        sys.exit("outputs %s, expected %s" % (got.files, sorted(want)))
    for k, v in want.items():
        if got[k].dtype != np.float32 or got[k].shape != v.shape:
            sys.exit("%s: %s %s" % (k, got[k].dtype, got[k].shape))
        err = np.abs(got[k] - v).max()
        if err > 1e-6:
            sys.exit("%s differs by %g" % (k, err))
    print("outputs match")


def main():
    d = sys.argv[1]
    if len(sys.argv) > 3 and sys.argv[2] == "--check":
        return check(sys.argv[3])
    a = pb()
    write_good(a, os.path.join(d, "good"))
    # Format 1: an artifact of a compiler before typed step attributes.
    write_good(a, os.path.join(d, "version1"), version=1)
    write_good(a, os.path.join(d, "tampered"))
    with open(os.path.join(d, "tampered", "rank0.plan.pb"), "ab") as f:
        f.write(b"\0")
    write_good(a, os.path.join(d, "noplan"))
    os.remove(os.path.join(d, "noplan", "rank0.plan.pb"))
    write_good(a, os.path.join(d, "badweight"))
    with open(os.path.join(d, "badweight", "weights.bin"), "r+b") as f:
        f.seek(20)
        f.write(b"\x7f")
    write_embedding(a, os.path.join(d, "embed"))
    write_multirank(a, os.path.join(d, "multirank"))
    write_inputs(d)


if __name__ == "__main__":
    main()
