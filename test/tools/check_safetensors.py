#!/usr/bin/env python3
"""Checks that an artifact's packed weights load with Python's safetensors and
equal the ONNX model's initializers, byte for byte."""
import sys

import numpy as np
import onnx
from onnx import numpy_helper
from safetensors.numpy import load_file


def main():
    packed, model = sys.argv[1], sys.argv[2]
    tensors = load_file(packed)
    inits = {i.name: numpy_helper.to_array(i)
             for i in onnx.load(model).graph.initializer}
    bad = [k for k in tensors if k not in inits or
           tensors[k].dtype != inits[k].dtype or
           not np.array_equal(tensors[k], inits[k])]
    print(f"{len(tensors)} tensors, {len(bad)} differ")
    sys.exit(1 if bad or not tensors else 0)


if __name__ == "__main__":
    main()
