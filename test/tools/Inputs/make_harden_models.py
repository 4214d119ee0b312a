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


def schema_cases(opset):
    """Models that are not valid ONNX, each in one way."""
    x = h.make_tensor_value_info("x", T.FLOAT, [2, 4])
    y = h.make_tensor_value_info("y", T.FLOAT, None)
    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    idx = numpy_helper.from_array(np.zeros(1, np.int64), "idx")
    softmax = h.make_node("Softmax", ["x"], ["y"], name="sm")
    softmax.attribute.append(h.make_attribute("axis", "1"))  # a string
    cases = {
        "gather_axis": ([h.make_node("Gather", ["x", "idx"], ["y"], axis=5,
                                     name="g")], [idx], y),
        "softmax_axis_string": ([softmax], [], y),
        "matmul_three_inputs": ([h.make_node("MatMul", ["x", "w", "w"], ["y"],
                                             name="mm")], [w], y),
        "output_type": ([h.make_node("Add", ["x", "x"], ["y"], name="add")],
                        [], h.make_tensor_value_info("y", T.INT64, None)),
        "two_opsets": ([h.make_node("Relu", ["x"], ["y"], name="relu")], [],
                       y),
        "relu_two_inputs": ([h.make_node("Relu", ["x", "x"], ["y"],
                                         name="relu")], [], y),
        "add_unknown_attribute": ([h.make_node("Add", ["x", "x"], ["y"],
                                               name="add", bogus=3)], [], y),
    }
    for name, (nodes, inits, out) in cases.items():
        imports = [h.make_opsetid("", opset)]
        if name == "two_opsets":
            imports.append(h.make_opsetid("", opset - 1))
        graph = h.make_graph(nodes, "g", [x], [out], inits)
        yield f"{name}_{opset}", h.make_model(graph, opset_imports=imports)


def ssa_cases():
    """Graphs that define a value twice, each in one way."""
    x = h.make_tensor_value_info("x", T.FLOAT, [2, 4])
    y = h.make_tensor_value_info("y", T.FLOAT, None)
    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    relu = h.make_node("Relu", ["x"], ["y"], name="first")
    cases = {
        "two_producers": ([relu, h.make_node("Neg", ["x"], ["y"],
                                             name="second")], [x], [w]),
        "shadows_input": ([h.make_node("Relu", ["x"], ["x"], name="n")],
                          [x], [w]),
        "shadows_initializer": ([h.make_node("Relu", ["x"], ["w"], name="n"),
                                 relu], [x], [w]),
        "initializer_twice": ([relu], [x], [w, w]),
        "input_twice": ([relu], [x, x], [w]),
    }
    for name, (nodes, inputs, inits) in cases.items():
        graph = h.make_graph(nodes, "g", inputs, [y], inits)
        yield name, h.make_model(graph, opset_imports=[h.make_opsetid("", 18)])


def fuzz_cases():
    """Models the ONNX importer's fuzz target (test/fuzz/OnnxFuzz.cpp) found
    crashing weft compile."""
    x = [h.make_tensor_value_info(n, T.FLOAT, [3, 4]) for n in "XWB"]
    # Min's second input omitted (an empty name): a null operand.
    yield "min_omitted_input", [h.make_node("Min", ["X", ""], ["Y"],
                                            name="min")], x[:1], ["Y"]
    # LayerNormalization's Mean output with an axis below -rank: ONNX's
    # shape inference (the library weft links) indexes out of bounds.
    yield "layernorm_mean_axis", [h.make_node(
        "LayerNormalization", ["X", "W", "B"], ["Y", "M", "I"], axis=-3,
        name="ln")], x, ["Y", "M", "I"]
    # Range with an int64 start and a double delta (at opset 23, newer than
    # the ONNX library's schemas): an assertion in the importer.
    yield "range_mixed_types", [
        h.make_node("Constant", [], ["s"], value_int=0, name="s"),
        h.make_node("Constant", [], ["l"], value_int=4, name="l"),
        h.make_node("Constant", [], ["d"], name="d",
                    value=h.make_tensor("d", T.DOUBLE, [], [1.0])),
        h.make_node("Range", ["s", "l", "d"], ["Y"], name="range")], [], ["Y"]
    # Tile of a 2^40 + 1 long input 2^40 + 1 times: the result's dimension
    # overflowed int64 while its type was inferred.
    big = [h.make_tensor_value_info("X", T.FLOAT, [2**40 + 1])]
    yield "tile_overflow", [
        h.make_node("Constant", [], ["r"], name="r",
                    value=h.make_tensor("r", T.INT64, [1], [2**40 + 1])),
        h.make_node("Tile", ["X", "r"], ["Y"], name="tile")], big, ["Y"]


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
    for opset in (17, 18):
        for name, model in schema_cases(opset):
            save(model, os.path.join(out, f"invalid_{name}.onnx"))
    # Values defined twice (ONNX graphs are SSA): each compiled, the last
    # definition winning.
    for name, model in ssa_cases():
        save(model, os.path.join(out, f"ssa_{name}.onnx"))
    for name, nodes, inputs, outputs in fuzz_cases():
        graph = h.make_graph(nodes, "g", inputs, [
            h.make_tensor_value_info(o, T.FLOAT, None) for o in outputs])
        opset = 23 if name == "range_mixed_types" else 17
        save(h.make_model(graph, opset_imports=[h.make_opsetid("", opset)]),
             os.path.join(out, f"fuzz_{name}.onnx"))
    # An initializer whose dims multiply past int64 (found by the fuzz
    # target): its size is refused before anything multiplies them.
    huge = linear("weights.bin", 0, 96)
    del huge.graph.initializer[0].dims[:]
    huge.graph.initializer[0].dims.extend([2**62, 8])
    save(huge, os.path.join(out, "fuzz_huge_dims.onnx"))
    # A Constant whose raw_data is longer than its dims and type (found by
    # the fuzz target): the ONNX library's shape inference copied all of it
    # into a buffer sized by its dims. Refused before the library sees it.
    value = h.make_tensor("v", T.INT64, [1], [7])
    value.raw_data = np.arange(5, dtype=np.int64).tobytes()[:37]
    del value.int64_data[:]
    const = h.make_node("Constant", [], ["c"], value=value, name="c")
    shape = h.make_node("Reshape", ["X", "c"], ["Y"], name="reshape")
    graph = h.make_graph([const, shape], "g", [
        h.make_tensor_value_info("X", T.FLOAT, [3, 4])],
        [h.make_tensor_value_info("Y", T.FLOAT, None)])
    save(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]),
         os.path.join(out, "fuzz_constant_raw_data.onnx"))
    # Protobuf (proto2 strings) parses a name that is not UTF-8; weft must not.
    save(linear("weights.bin", 0, 96, "bad-name"),
         os.path.join(out, "bad_name.onnx"), (b"NAMEXX", b"N\xff\xfeMXX"))


if __name__ == "__main__":
    main(sys.argv[1])
