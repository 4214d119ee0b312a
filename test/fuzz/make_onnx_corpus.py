#!/usr/bin/env python3
"""Writes the seed corpus of the ONNX importer's fuzz target
(test/fuzz/corpus/onnx/): real models, small enough to mutate quickly.

- every ONNX backend node test that weft passes (test/conformance/
  allowlist.txt), as the onnx package builds it;
- the transformer exports of test/models/make_transformers.py (GPT-2, Llama
  and BERT in the node forms of both PyTorch exporters) and a one-layer tiny
  Llama of test/models/make_llama.py (f32 and bf16).

The transformers' parameters are moved to external data in `weights.bin` (the
fuzz target puts a 2 MiB file of that name beside every model it imports), so
that a seed is its graph, a few KiB, and not its weights.

    .venv/bin/python test/fuzz/make_onnx_corpus.py [OUT_DIR]
"""
import hashlib
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import onnx

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
WEIGHTS_BYTES = 2 << 20  # the size of the fuzz target's weights.bin
ALIGN = 64


def externalize(model):
    """Points every initializer of more than 256 bytes at weights.bin."""
    offset = 0
    for t in model.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            info = {e.key: e.value for e in t.external_data}
            size = int(info.get("length", 0))
        else:
            size = len(onnx.numpy_helper.to_array(t).tobytes())
            if size <= 256:
                continue
        if offset + size > WEIGHTS_BYTES:
            raise SystemExit(f"{model.graph.name}: parameters exceed "
                             f"{WEIGHTS_BYTES} bytes")
        for field in ("raw_data", "float_data", "int32_data", "int64_data",
                      "double_data", "uint64_data"):
            t.ClearField(field)
        del t.external_data[:]
        t.data_location = onnx.TensorProto.EXTERNAL
        for key, value in (("location", "weights.bin"), ("offset", offset),
                           ("length", size)):
            e = t.external_data.add()
            e.key, e.value = key, str(value)
        offset += (size + ALIGN - 1) // ALIGN * ALIGN
    return model


def write(out_dir, name, model):
    data = model.SerializeToString()
    if len(data) > 64 << 10:
        raise SystemExit(f"{name}: {len(data)} bytes, over the 64 KiB seed "
                         "limit")
    with open(os.path.join(out_dir, name), "wb") as f:
        f.write(data)


def node_tests(out_dir):
    from onnx.backend.test.loader import load_model_tests

    with open(os.path.join(ROOT, "test/conformance/allowlist.txt")) as f:
        passing = {l.strip() for l in f if l.strip() and not l.startswith("#")}
    np.random.seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = load_model_tests(kind="node")
    count = 0
    for case in sorted(cases, key=lambda c: c.name):
        if case.name in passing:
            write(out_dir, f"node-{case.name[len('test_'):]}.onnx", case.model)
            count += 1
    return count


def transformers(out_dir):
    count = 0
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable,
                        os.path.join(ROOT, "test/models/make_transformers.py"),
                        tmp], check=True, stdout=subprocess.DEVNULL)
        for dtype in ("f32", "bf16"):
            sub = os.path.join(tmp, f"llama-{dtype}")
            subprocess.run([sys.executable,
                            os.path.join(ROOT, "test/models/make_llama.py"),
                            "--preset", "tiny", "--layers", "1", "--vocab",
                            "64", "--dtype", dtype, "-o", sub], check=True,
                           stdout=subprocess.DEVNULL)
            model = onnx.load(os.path.join(sub, "model.onnx"),
                              load_external_data=False)
            write(out_dir, f"model-tiny-llama-{dtype}.onnx", externalize(model))
            count += 1
        for name in sorted(os.listdir(tmp)):
            if name.endswith(".onnx"):
                model = onnx.load(os.path.join(tmp, name))
                write(out_dir, f"model-{name}", externalize(model))
                count += 1
    return count


def main():
    out_dir = (sys.argv[1] if len(sys.argv) > 1 else
               os.path.join(ROOT, "test/fuzz/corpus/onnx"))
    os.makedirs(out_dir, exist_ok=True)
    for name in os.listdir(out_dir):
        os.remove(os.path.join(out_dir, name))
    n = node_tests(out_dir)
    m = transformers(out_dir)
    total = sum(os.path.getsize(os.path.join(out_dir, f))
                for f in os.listdir(out_dir))
    print(f"wrote {n} node tests and {m} models to {out_dir} "
          f"({total // 1024} KiB)")


if __name__ == "__main__":
    main()
