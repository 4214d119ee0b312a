#!/usr/bin/env python3
"""Writes a Llama-70B-shaped model (80 layers, hidden 8192, 64 query heads,
8 kv heads, MLP 28672, vocab 32000) in the dynamo exporter's form, with
every weight in an external data file that is NOT written: the compiler
must work from shapes alone.

  make_llama70b.py OUT.onnx [--layers N] [--form dynamo|torchscript]
"""
import argparse
import os
import sys

from onnx import TensorProto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_transformers as mt  # noqa: E402


def external_weight(self, name, shape, std=0.05, mean=0.0, transpose=False):
    """A float32 initializer whose bytes would be in weights.bin."""
    dims = list(reversed(shape)) if transpose else list(shape)
    t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=dims,
                    data_location=TensorProto.EXTERNAL)
    length = 4
    for d in dims:
        length *= d
    for key, value in (("location", "weights.bin"),
                       ("offset", str(self.external_offset)),
                       ("length", str(length))):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    self.external_offset = getattr(self, "external_offset", 0) + length
    self.inits.append(t)
    return name


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--layers", type=int, default=80)
    p.add_argument("--form", choices=("dynamo", "torchscript"),
                   default="dynamo", help="which exporter's graph to mimic")
    a = p.parse_args()
    mt.LAYERS, mt.HIDDEN, mt.HEADS, mt.HEAD_DIM = a.layers, 8192, 64, 128
    mt.KV_HEADS, mt.VOCAB, mt.MAX_POS, mt.LLAMA_FF = 8, 32000, 8192, 28672
    mt.Graph.external_offset = 0
    mt.Graph.weight = external_weight
    # The checker would look for the absent weights.bin.
    mt.onnx.checker.check_model = lambda *args, **kwargs: None
    model = mt.llama(18, a.form == "dynamo")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "wb") as f:
        f.write(model.SerializeToString())
    print(f"wrote {a.out}: {len(model.graph.node)} nodes, "
          f"{len(model.graph.initializer)} initializers, weights.bin absent")


if __name__ == "__main__":
    main()
