#!/usr/bin/env python3
"""Writes small node tests in the layout of ONNX's backend node tests, to
check run_node_tests.py's verdicts (runner.test):

  make_node_tests.py OUTDIR

  test_good_add     Add of two f32 tensors, expected outputs right.
  test_wrong_add    the same model, expected outputs off by one.
  test_refused      Trilu whose k is a graph input (weft refuses it).
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def write(out, name, model, inputs, outputs):
    d = os.path.join(out, name)
    ds = os.path.join(d, "test_data_set_0")
    os.makedirs(ds)
    onnx.save(model, os.path.join(d, "model.onnx"))
    for kind, values, infos in (("input", inputs, model.graph.input),
                                ("output", outputs, model.graph.output)):
        for j, (v, info) in enumerate(zip(values, infos)):
            t = numpy_helper.from_array(v, info.name)
            with open(os.path.join(ds, f"{kind}_{j}.pb"), "wb") as f:
                f.write(t.SerializeToString())


def main():
    out = sys.argv[1]
    f = TensorProto.FLOAT
    add = helper.make_model(
        helper.make_graph(
            [helper.make_node("Add", ["x", "y"], ["z"])], "add",
            [helper.make_tensor_value_info("x", f, [2, 3]),
             helper.make_tensor_value_info("y", f, [2, 3])],
            [helper.make_tensor_value_info("z", f, [2, 3])]),
        opset_imports=[helper.make_opsetid("", 18)])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    y = rng.standard_normal((2, 3)).astype(np.float32)
    write(out, "test_good_add", add, [x, y], [x + y])
    write(out, "test_wrong_add", add, [x, y], [x + y + 1])
    trilu = helper.make_model(
        helper.make_graph(
            [helper.make_node("Trilu", ["x", "k"], ["z"])], "trilu",
            [helper.make_tensor_value_info("x", f, [3, 3]),
             helper.make_tensor_value_info("k", TensorProto.INT64, [])],
            [helper.make_tensor_value_info("z", f, [3, 3])]),
        opset_imports=[helper.make_opsetid("", 18)])
    m = rng.standard_normal((3, 3)).astype(np.float32)
    write(out, "test_refused", trilu, [m, np.array(1, np.int64)],
          [np.triu(m, 1)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
