#!/usr/bin/env python3
"""Writes the tiny 2-rank artifacts and inputs of mpirun.test.

  make_multirank_artifacts.py DIR                 writes DIR/<artifact>/, *.npz
  make_multirank_artifacts.py DIR --check NAME F  checks F (weft-run's
                                                  outputs of artifact NAME)

artifact_pb2 must have been generated into DIR (protoc --python_out=DIR).

  tp        y = x @ W (row-parallel: rank r multiplies x[:, 2r:2r+2] by W's
            rows [2r, 2r+2), read as a slice of weights.bin, then the ranks
            all-reduce) and g = x @ V (column-parallel: rank r computes the
            columns [2r, 2r+2) and the ranks all-gather along the last axis)
  pipeline  two stages: rank 0 computes h = x * 2 and sends it; rank 1
            receives it and gives y = h + 1 (the outputs are rank 1's)
  pipeline_mb  the same in two microbatches of one row each
  dp        two data-parallel replicas: each gives y = x + 1 on its row
            (rank 1 sends its row to rank 0, which writes the outputs)
  failing   rank 1 looks up an id that is out of range before the ranks
            all-reduce: every rank must end with rank 1's error
"""
import hashlib
import os
import sys

import numpy as np

F32, I64 = 1, 5
# The artifact format version the runtime reads (kArtifactFormatVersion).
FORMAT = 2

X = np.array([[1, -2, 3, 0.5], [0, 1, -1, 2]], np.float32)
W = np.arange(12, dtype=np.float32).reshape(4, 3) / 4 - 1
V = np.arange(16, dtype=np.float32).reshape(4, 4) / 8 - 0.5


def pb():
    sys.path.insert(0, sys.argv[1])
    import artifact_pb2
    return artifact_pb2


class PlanBuilder:
    """Buffers one after another in the arena (64-byte aligned)."""

    def __init__(self, a, rank):
        self.a = a
        self.plan = a.Plan(format_version=FORMAT, rank=rank, arena_bytes=0)

    def _add(self, kind, dtype, shape, name="", esize=4):
        b = self.plan.buffers.add(id=len(self.plan.buffers), kind=kind,
                                  dtype=dtype, shape=shape, name=name)
        b.bytes = int(np.prod(shape, dtype=np.int64)) * esize
        if kind in (self.a.Buffer.ARENA, self.a.Buffer.INPUT,
                    self.a.Buffer.OUTPUT):
            b.offset = self.plan.arena_bytes
            self.plan.arena_bytes += (b.bytes + 63) // 64 * 64
        return b

    def arena(self, shape):
        return self._add(self.a.Buffer.ARENA, F32, shape).id

    def input(self, name, shape, dtype=F32, esize=4):
        b = self._add(self.a.Buffer.INPUT, dtype, shape, name, esize)
        self.plan.inputs.append(b.id)
        return b.id

    def output(self, name, shape):
        b = self._add(self.a.Buffer.OUTPUT, F32, shape, name)
        self.plan.outputs.append(b.id)
        return b.id

    def constant(self, array):
        b = self._add(self.a.Buffer.CONSTANT, F32, list(array.shape))
        b.data = array.astype(np.float32).tobytes()
        return b.id

    def weight(self, name, full, offset, begin, size):
        data = full.tobytes()
        self.plan.weights.add(name=name, dtype=F32, shape=list(full.shape),
                              file="weights.bin", offset=offset,
                              length=len(data),
                              sha256=hashlib.sha256(data).hexdigest(),
                              slice_begin=begin, slice_size=size)
        b = self._add(self.a.Buffer.WEIGHT, F32, size)
        b.weight = len(self.plan.weights) - 1
        return b.id

    def step(self, kind, inputs, outputs, name, ints=None, lists=None):
        """A step carrying its kind's attrs message (Step.attrs), the named
        fields of `ints` and `lists` set."""
        s = self.plan.steps.add(kind=kind, inputs=inputs, outputs=outputs,
                                name=name)
        S = self.a.Step
        field = {S.GEMM: "gemm", S.SLICE: "slice", S.EMBEDDING: "embedding",
                 S.COLLECTIVE: "collective", S.SEND: "send_recv",
                 S.RECV: "send_recv"}.get(kind)
        if field is None:
            assert not ints and not lists, "%s takes no attributes" % name
            return s
        attrs = getattr(s, field)
        attrs.SetInParent()
        for k, v in (ints or {}).items():
            setattr(attrs, k, v)
        for k, v in (lists or {}).items():
            getattr(attrs, k).extend(v)
        return s

    def binary(self, op, a, b, out):
        s = self.step(self.a.Step.ELEMENTWISE, [a, b], [out], "binary")
        s.program.add(op=self.a.Instr.INPUT, index=0, dtype=F32)
        s.program.add(op=self.a.Instr.INPUT, index=1, dtype=F32)
        s.program.add(op=op, args=[0, 1], dtype=F32)


def write_artifact(d, plans, manifest, weights=b""):
    os.makedirs(d, exist_ok=True)
    for r, plan in enumerate(plans):
        data = plan.SerializeToString()
        with open(os.path.join(d, "rank%d.plan.pb" % r), "wb") as f:
            f.write(data)
        manifest.ranks.add(rank=r, plan_file="rank%d.plan.pb" % r,
                           plan_sha256=hashlib.sha256(data).hexdigest())
    with open(os.path.join(d, "manifest.pb"), "wb") as f:
        f.write(manifest.SerializeToString())
    if weights:
        with open(os.path.join(d, "weights.bin"), "wb") as f:
            f.write(weights)


def manifest(a, world, inputs, outputs, **layout):
    # A stated layout states every degree (the reader refuses a 0).
    if layout:
        for degree in ("tp", "pp", "dp", "microbatches"):
            layout[degree] = layout.get(degree) or 1
    m = a.Manifest(format_version=FORMAT, world_size=world, target="cpu",
                   compute_dtype=F32, **layout)
    for name, dtype, shape in inputs:
        m.inputs.add(name=name, dtype=dtype, shape=shape)
    for name, shape in outputs:
        m.outputs.add(name=name, dtype=F32, shape=shape)
    return m


def write_tp(a, d):
    plans = []
    for r in range(2):
        p = PlanBuilder(a, r)
        x = p.input("x", [2, 4])
        w = p.weight("W", W, 0, [2 * r, 0], [2, 3])
        v = p.weight("V", V, W.nbytes, [0, 2 * r], [4, 2])
        xs, part, cols = p.arena([2, 2]), p.arena([2, 3]), p.arena([2, 2])
        y, g = p.output("y", [2, 3]), p.output("g", [2, 4])
        p.step(a.Step.SLICE, [x], [xs], "slice",
               lists={"starts": [0, 2 * r], "ends": [2, 2 * r + 2],
                      "steps": [1, 1]})
        p.step(a.Step.GEMM, [xs, w], [part], "row_parallel")
        p.step(a.Step.COLLECTIVE, [part], [y], "all_reduce",
               ints={"op": 0}, lists={"group": [0, 1]})
        p.step(a.Step.GEMM, [x, v], [cols], "column_parallel")
        p.step(a.Step.COLLECTIVE, [cols], [g], "all_gather",
               ints={"op": 1, "axis": -1}, lists={"group": [0, 1]})
        plans.append(p.plan)
    m = manifest(a, 2, [("x", F32, [2, 4])], [("y", [2, 3]), ("g", [2, 4])],
                 tp=2, pp=1, dp=1)
    write_artifact(d, plans, m, W.tobytes() + V.tobytes())


def write_pipeline(a, d, microbatches=0):
    rows = 2 // max(microbatches, 1)
    p0 = PlanBuilder(a, 0)
    x = p0.input("x", [rows, 4])
    h = p0.arena([rows, 4])
    p0.binary(a.Instr.MUL, x, p0.constant(np.array([2])), h)
    p0.step(a.Step.SEND, [h], [], "send", ints={"peer": 1, "tag": 5})
    p1 = PlanBuilder(a, 1)
    h = p1.arena([rows, 4])
    y = p1.output("y", [rows, 4])
    p1.step(a.Step.RECV, [], [h], "recv", ints={"peer": 0, "tag": 5})
    p1.binary(a.Instr.ADD, h, p1.constant(np.array([1])), y)
    m = manifest(a, 2, [("x", F32, [2, 4])], [("y", [2, 4])], pp=2,
                 microbatches=microbatches)
    write_artifact(d, [p0.plan, p1.plan], m)


def write_dp(a, d):
    plans = []
    for r in range(2):
        p = PlanBuilder(a, r)
        x = p.input("x", [1, 4])
        y = p.output("y", [1, 4])
        p.binary(a.Instr.ADD, x, p.constant(np.array([1])), y)
        plans.append(p.plan)
    m = manifest(a, 2, [("x", F32, [2, 4])], [("y", [2, 4])], tp=1, pp=1,
                 dp=2)
    write_artifact(d, plans, m)


def write_failing(a, d):
    plans = []
    for r in range(2):
        p = PlanBuilder(a, r)
        ids = p.input("ids", [1], I64, 8)
        e = p.arena([1, 2])
        y = p.output("y", [1, 2])
        table = p.constant(np.arange(6).reshape(3, 2))
        if r == 1:
            p.step(a.Step.EMBEDDING, [table, ids], [e], "embed")
        else:
            p.step(a.Step.EMBEDDING, [table, ids], [e], "embed_shard",
                   ints={"vocab_start": 0})
        p.step(a.Step.COLLECTIVE, [e], [y], "all_reduce", ints={"op": 0},
               lists={"group": [0, 1]})
        plans.append(p.plan)
    m = manifest(a, 2, [("ids", I64, [1])], [("y", [1, 2])])
    write_artifact(d, plans, m)


def expected(name):
    if name == "tp":
        return {"y": X @ W, "g": X @ V}
    if name in ("pipeline", "pipeline_mb"):
        return {"y": X * 2 + 1}
    if name == "dp":
        return {"y": X + 1}
    sys.exit("unknown artifact " + name)


def check(name, path):
    got = np.load(path)
    want = expected(name)
    if sorted(got.files) != sorted(want):
        sys.exit("outputs %s, expected %s" % (got.files, sorted(want)))
    for k, v in want.items():
        if got[k].dtype != np.float32 or got[k].shape != v.shape:
            sys.exit("%s: %s %s" % (k, got[k].dtype, got[k].shape))
        err = np.abs(got[k] - v).max()
        if err > 1e-5:
            sys.exit("%s differs by %g" % (k, err))
    print("outputs match")


def main():
    d = sys.argv[1]
    if len(sys.argv) > 4 and sys.argv[2] == "--check":
        return check(sys.argv[3], sys.argv[4])
    a = pb()
    write_tp(a, os.path.join(d, "tp"))
    write_pipeline(a, os.path.join(d, "pipeline"))
    write_pipeline(a, os.path.join(d, "pipeline_mb"), microbatches=2)
    write_dp(a, os.path.join(d, "dp"))
    write_failing(a, os.path.join(d, "failing"))
    np.savez(os.path.join(d, "x.npz"), x=X)
    np.savez(os.path.join(d, "ids.npz"), ids=np.array([7], np.int64))


if __name__ == "__main__":
    main()
