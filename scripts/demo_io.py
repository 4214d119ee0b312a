#!/usr/bin/env python3
"""Helpers for scripts/demo: make the demo's input, and report the run.

  demo_io.py inputs MODEL.onnx BATCH SEQ OUT.npz
  demo_io.py report MODEL.onnx IN.npz OUT.npz
"""
import sys

import numpy as np


def make_inputs(model_path, batch, seq, out):
    import onnx
    model = onnx.load(model_path, load_external_data=False)
    vocab = max(int(t.dims[0]) for t in model.graph.initializer
                if len(t.dims) == 2)
    rng = np.random.default_rng(2026)
    feeds = {}
    for inp in model.graph.input:
        if inp.name == "attention_mask":
            feeds[inp.name] = np.ones((batch, seq), np.int64)
        else:
            feeds[inp.name] = rng.integers(0, vocab, (batch, seq), np.int64)
    np.savez(out, **feeds)


def report(model_path, inputs, outputs):
    import onnxruntime as ort
    with np.load(inputs) as z:
        feeds = {k: z[k] for k in z.files}
    with np.load(outputs) as z:
        got = {k: z[k] for k in z.files}
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # errors only: no constant-folding notes
    sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    ref = dict(zip(names, sess.run(names, feeds)))
    for name, value in got.items():
        err = np.abs(value - ref[name]).max() / np.abs(ref[name]).max()
        print(f"  output '{name}': {value.dtype}{list(value.shape)}, "
              f"max rel. error vs onnxruntime {err:.2e}")
        if value.ndim == 3:
            ids = feeds[sess.get_inputs()[0].name][0]
            nxt = value[0].argmax(-1)
            print("  prompt tokens      ", " ".join(f"{t:4d}" for t in ids[:12]))
            print("  predicted next     ", " ".join(f"{t:4d}" for t in nxt[:12]))


if __name__ == "__main__":
    if sys.argv[1] == "inputs":
        make_inputs(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        report(sys.argv[2], sys.argv[3], sys.argv[4])
