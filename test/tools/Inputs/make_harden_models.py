"""Models whose external data is unsafe or malformed, for harden.test.

Each is x[2, 4] @ w[4, 6] + b[6] with w and b as external data; only the
reference of w changes from one model to the next. weights.bin holds the
right 120 bytes; short.bin only 50.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper


def linear(location, offset, length, extra=None):
    w = numpy_helper.from_array(np.ones((4, 6), np.float32), "w")
    b = numpy_helper.from_array(np.ones(6, np.float32), "b")
    for t, loc, off, n in ((w, location, offset, length),
                           (b, "weights.bin", 96, 24)):
        t.ClearField("raw_data")
        t.data_location = T.EXTERNAL
        for key, value in (("location", loc), ("offset", off), ("length", n)):
            t.external_data.add(key=key, value=str(value))
    nodes = [h.make_node("MatMul", ["x", "w"], ["y"], name="mm"),
             h.make_node("Add", ["y", "b"], ["z"], name="add")]
    outputs = [h.make_tensor_value_info("z", T.FLOAT, None)]
    if extra == "dup-output":
        outputs.append(h.make_tensor_value_info("z", T.FLOAT, None))
    if extra == "bad-name":
        nodes[0].name = "NAMEXX"
    graph = h.make_graph(nodes, "g",
                         [h.make_tensor_value_info("x", T.FLOAT, [2, 4])],
                         outputs, [w, b])
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 18)])


def save(model, path, patch=None):
    data = model.SerializeToString()
    if patch:
        data = data.replace(*patch)
    with open(path, "wb") as f:
        f.write(data)


def main(out):
    os.makedirs(out, exist_ok=True)
    weights = np.concatenate([np.ones(24, np.float32), np.ones(6, np.float32)])
    with open(os.path.join(out, "weights.bin"), "wb") as f:
        f.write(weights.tobytes())
    with open(os.path.join(out, "short.bin"), "wb") as f:
        f.write(weights.tobytes()[:50])
    cases = {
        "good": ("weights.bin", 0, 96),
        "offset_past_end": ("weights.bin", 10_000_000, 96),
        "length_past_end": ("weights.bin", 0, 100_000_000),
        "huge_offset": ("weights.bin", 2**63 - 4, 96),
        "short": ("short.bin", 0, 96),
        "dir": ("wdir", 0, 96),
        "fifo": ("wfifo", 0, 96),
        "link_out": ("link.bin", 0, 96),
        "link_in": ("inlink.bin", 0, 96),
        "subdir_out": ("sub/weights.bin", 0, 96),
    }
    for name, (loc, off, n) in cases.items():
        save(linear(loc, off, n), os.path.join(out, f"ext_{name}.onnx"))
    save(linear("weights.bin", 0, 96, "dup-output"),
         os.path.join(out, "dup_output.onnx"))
    # Protobuf (proto2 strings) parses a name that is not UTF-8; weft must not.
    save(linear("weights.bin", 0, 96, "bad-name"),
         os.path.join(out, "bad_name.onnx"), (b"NAMEXX", b"N\xff\xfeMXX"))


if __name__ == "__main__":
    main(sys.argv[1])
