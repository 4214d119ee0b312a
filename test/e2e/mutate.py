#!/usr/bin/env python3
"""Writes deliberately wrong variants of a transformer ONNX model, for the
mutation tests of the numerical checks (mutations.test): each variant
computes a function a buggy compiler or runtime might compute instead of
the model's, and a check that claims to cover the model must tell it from
the original.

  mutate.py MODEL.onnx -o OUT.onnx --mutation NAME
  mutate.py MODEL.onnx --list        # the mutations that apply to MODEL

The mutations, found by the graph's structure (the attention is the part of
the graph from the q k^T MatMul to its Softmax), so that they apply to both
exporters' forms, the real exports of test/fixtures/hf and the generated
models of test/models/make_transformers.py alike:

  no-rotary     the rotary embedding left out: every Cos and Sin node reads
                0 (cos 1, sin 0), or RotaryEmbedding's caches are 1 and 0.
                Models without rotary embedding (GPT-2, BERT) do not have
                this mutation.
  attn-scale    the attention scale 10% too large: the scalar that
                multiplies (or divides) the scores, or one of the two that
                scale q and k^T in the SDPA decomposition, is changed; every
                layer.
  norm-weight   the first norm's weight ignored (and its bias, if it has
                one): that norm's consumer reads ones (zeros) instead. A
                model whose first norm has weight 1 and bias 0 is refused
                (the mutation would change nothing).
  transpose     the last square weight that a MatMul or Gemm reads (in
                node order; the last layer's attention output projection in
                the transformers here) read transposed, as a loader that
                mistakes [in, out] for [out, in] would. (Not a query or key
                projection: at one token the attention ignores those.)
  mask-ahead    the attention mask off by one: shifted one key to the right
                (key 0 keeps its value), so that a causal mask lets each
                token see the next one, and a padding mask shows the first
                padded token.

The output model is checked with onnx.checker; the mutation is refused
(exit 1) where it does not apply.
"""
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

MUTATIONS = ["no-rotary", "attn-scale", "norm-weight", "transpose",
             "mask-ahead"]
SCALE_ERROR = 1.1  # attn-scale's factor

# Ops the walk from a Softmax back to the scores passes through unchanged.
_PASS = {"Cast", "Reshape", "Slice", "Identity", "Expand", "Transpose",
         "Unsqueeze", "Squeeze"}


class NotApplicable(Exception):
    pass


class Graph:
    """Producers, consumers and constants of a ModelProto's main graph."""

    def __init__(self, model):
        self.model, self.g = model, model.graph
        self.count = 0
        self.refresh()

    def refresh(self):
        self.producer = {o: n for n in self.g.node for o in n.output}
        self.inits = {t.name: t for t in self.g.initializer}
        self.names = set(self.producer) | set(self.inits) | \
            {i.name for i in self.g.input}

    def fresh(self, hint):
        while True:
            self.count += 1
            name = f"mutate_{hint}_{self.count}"
            if name not in self.names:
                self.names.add(name)
                return name

    def constant(self, name):
        """The value of an initializer or Constant node output, else None."""
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        n = self.producer.get(name)
        if n is not None and n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    return numpy_helper.to_array(a.t)
        return None

    def add_init(self, hint, array):
        name = self.fresh(hint)
        self.g.initializer.append(numpy_helper.from_array(array, name))
        self.inits[name] = self.g.initializer[-1]
        return name

    def insert_before(self, anchor, nodes):
        """Inserts nodes before `anchor` (keeps the node list sorted)."""
        index = list(self.g.node).index(anchor)
        for k, n in enumerate(nodes):
            self.g.node.insert(index + k, n)
        self.refresh()

    def has_matmul_ancestor(self, name):
        """Whether the values of `name` are computed from a MatMul or Gemm
        of two activations (not from constants and shapes alone)."""
        stack, seen = [name], set()
        while stack:
            t = stack.pop()
            if t in seen:
                continue
            seen.add(t)
            n = self.producer.get(t)
            if n is None or n.op_type in ("Shape", "Size"):
                continue  # a shape does not carry the values
            if n.op_type in ("MatMul", "Gemm") and \
                    all(self.constant(i) is None and i not in self.inits
                        for i in n.input[:2]):
                return True
            stack.extend(i for i in n.input if i)
        return False


def softmaxes(gr):
    return [n for n in gr.g.node if n.op_type == "Softmax"]


def walk_scores(gr, softmax):
    """From a Softmax's input back to the q k^T MatMul: returns (matmul
    node, [(node, index of its constant input)] of the scalar Mul/Div on
    the way, [(node, index of its mask input)])."""
    t, scales, masks = softmax.input[0], [], []
    for _ in range(32):
        n = gr.producer.get(t)
        if n is None:
            break
        if n.op_type in ("MatMul", "Gemm"):
            return n, scales, masks
        if n.op_type in _PASS:
            t = n.input[0]
            continue
        if n.op_type in ("Mul", "Div"):
            consts = [k for k, i in enumerate(n.input)
                      if gr.constant(i) is not None and
                      gr.constant(i).size == 1]
            if consts and (n.op_type == "Mul" or consts == [1]):
                scales.append((n, consts[0]))
                t = n.input[1 - consts[0]]
                continue
        if n.op_type in ("Add", "Sub"):
            score = [k for k, i in enumerate(n.input)
                     if gr.has_matmul_ancestor(i)]
            if len(score) == 1:
                masks.append((n, 1 - score[0]))
                t = n.input[score[0]]
                continue
        if n.op_type == "Where":
            score = [k for k in (1, 2) if gr.has_matmul_ancestor(n.input[k])]
            if len(score) == 1:
                masks.append((n, 0))
                t = n.input[score[0]]
                continue
        break
    raise NotApplicable(f"cannot follow Softmax '{softmax.name}' back to its "
                        f"scores (stopped at '{t}')")


def scalar_input(gr, node):
    """(node, index) of a Mul by a scalar constant feeding `node`'s inputs
    (through _PASS ops), for the SDPA form's scale on q or k^T."""
    for i in node.input[:2]:
        t = i
        for _ in range(8):
            n = gr.producer.get(t)
            if n is None:
                break
            if n.op_type == "Mul":
                consts = [k for k, x in enumerate(n.input)
                          if gr.constant(x) is not None and
                          gr.constant(x).size == 1]
                if consts:
                    return n, consts[0]
            if n.op_type not in _PASS:
                break
            t = n.input[0]
    return None


def no_rotary(gr):
    trig = [n for n in gr.g.node if n.op_type in ("Cos", "Sin")]
    rot = [n for n in gr.g.node if n.op_type == "RotaryEmbedding"]
    if not trig and not rot:
        raise NotApplicable("no rotary embedding (no Cos, Sin or "
                            "RotaryEmbedding node)")
    for n in trig:
        zero = gr.add_init("zero", np.array(0.0, np.float32))
        angle = gr.fresh("angle")
        gr.insert_before(n, [helper.make_node("Mul", [n.input[0], zero],
                                              [angle],
                                              name=gr.fresh("no_rotary"))])
        n.input[0] = angle
    for n in rot:
        for k, fill in ((1, 1.0), (2, 0.0)):
            cache = gr.constant(n.input[k])
            n.input[k] = gr.add_init("cache", np.full_like(cache, fill))


def attn_scale(gr):
    done = set()
    for sm in softmaxes(gr):
        mm, scales, _ = walk_scores(gr, sm)
        if scales:
            node, k = scales[0]
        else:
            found = scalar_input(gr, mm)
            if found is None:
                raise NotApplicable(f"no scalar scale on the scores of "
                                    f"Softmax '{sm.name}'")
            node, k = found
        if node.name + node.output[0] in done:
            continue
        done.add(node.name + node.output[0])
        value = gr.constant(node.input[k]).astype(np.float32)
        value = value / SCALE_ERROR if node.op_type == "Div" else \
            value * SCALE_ERROR
        node.input[k] = gr.add_init("scale", value.astype(np.float32))


_NORMS = {"LayerNormalization", "RMSNormalization",
          "SimplifiedLayerNormalization"}


def norm_params(gr):
    """(node, weight input index, bias input index or None) of the first
    norm in node order: a LayerNormalization or RMSNormalization node, or
    the Mul by a 1-D weight that ends a decomposed norm (the Mul whose
    other input is computed through a Sqrt), with the Add of its bias."""
    consumers = {}
    for n in gr.g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    for n in gr.g.node:
        if n.op_type in _NORMS:
            bias = 2 if len(n.input) > 2 and n.input[2] else None
            return n, 1, bias
        if n.op_type != "Mul":
            continue
        for k in (0, 1):
            w = gr.constant(n.input[k])
            if w is None or w.ndim != 1 or w.size < 2:
                continue
            if not through_sqrt(gr, n.input[1 - k]):
                continue
            bias = None
            for c in consumers.get(n.output[0], []):
                if c.op_type == "Add":
                    b = gr.constant(c.input[1])
                    if b is not None and b.ndim == 1 and b.size == w.size:
                        bias = c
            return (n, k, None) if bias is None else (n, k, (bias, 1))
    raise NotApplicable("no norm found")


def through_sqrt(gr, name, depth=6):
    n = gr.producer.get(name)
    if n is None or depth == 0:
        return False
    if n.op_type in ("Sqrt", "Reciprocal"):
        return True
    return any(through_sqrt(gr, i, depth - 1) for i in n.input if i)


def norm_weight(gr):
    node, wk, bias = norm_params(gr)
    w = gr.constant(node.input[wk])
    changed = not np.all(w == 1)
    node.input[wk] = gr.add_init("norm_ones", np.ones_like(w))
    if bias is not None:
        bnode, bk = bias if isinstance(bias, tuple) else (node, bias)
        b = gr.constant(bnode.input[bk])
        changed |= bool(np.any(b != 0))
        bnode.input[bk] = gr.add_init("norm_zeros", np.zeros_like(b))
    if not changed:
        raise NotApplicable(f"the first norm ('{node.name}') has weight 1 "
                            "and bias 0: ignoring them changes nothing")


def transpose(gr):
    for n in reversed(list(gr.g.node)):
        if n.op_type not in ("MatMul", "Gemm"):
            continue
        w = gr.constant(n.input[1])
        if w is None or w.ndim != 2 or w.shape[0] != w.shape[1]:
            continue
        if np.array_equal(w, w.T):
            continue
        n.input[1] = gr.add_init("transposed", np.ascontiguousarray(w.T))
        return
    raise NotApplicable("no square weight read by a MatMul or Gemm")


def mask_ahead(gr):
    masks = {}
    for sm in softmaxes(gr):
        _, _, found = walk_scores(gr, sm)
        if not found:
            raise NotApplicable(f"no mask on the scores of Softmax "
                                f"'{sm.name}'")
        for node, k in found:
            masks.setdefault(node.input[k], []).append((node, k))
    for mask, uses in masks.items():
        first = min((list(gr.g.node).index(n) for n, _ in uses))
        anchor = gr.g.node[first]
        axis = gr.add_init("axis", np.array([-1], np.int64))
        zero = gr.add_init("start", np.array([0], np.int64))
        one = gr.add_init("one", np.array([1], np.int64))
        minus = gr.add_init("end", np.array([-1], np.int64))
        head, body, out = gr.fresh("head"), gr.fresh("body"), gr.fresh("mask")
        gr.insert_before(anchor, [
            helper.make_node("Slice", [mask, zero, one, axis], [head],
                             name=gr.fresh("mask_head")),
            helper.make_node("Slice", [mask, zero, minus, axis], [body],
                             name=gr.fresh("mask_body")),
            helper.make_node("Concat", [head, body], [out], axis=-1,
                             name=gr.fresh("mask_ahead"))])
        for node, k in uses:
            node.input[k] = out


APPLY = {"no-rotary": no_rotary, "attn-scale": attn_scale,
         "norm-weight": norm_weight, "transpose": transpose,
         "mask-ahead": mask_ahead}


def mutate(model, name):
    """A mutated copy of `model` (a ModelProto); raises NotApplicable."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    APPLY[name](Graph(out))
    used = {i for n in out.graph.node for i in n.input}
    for t in [t for t in out.graph.initializer if t.name not in used]:
        out.graph.initializer.remove(t)
    onnx.checker.check_model(out)
    return out


def applicable(model):
    ok = []
    for name in MUTATIONS:
        try:
            mutate(model, name)
            ok.append(name)
        except NotApplicable:
            pass
    return ok


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("-o", dest="out", metavar="OUT.onnx")
    p.add_argument("--mutation", choices=MUTATIONS)
    p.add_argument("--list", action="store_true",
                   help="print the mutations that apply to MODEL")
    a = p.parse_args(argv)
    model = onnx.load(a.model)
    if a.list:
        print(" ".join(applicable(model)))
        return 0
    if not a.out or not a.mutation:
        p.error("give -o OUT.onnx and --mutation NAME, or --list")
    try:
        out = mutate(model, a.mutation)
    except NotApplicable as e:
        print(f"mutate.py: {os.path.basename(a.model)}: {a.mutation}: {e}",
              file=sys.stderr)
        return 1
    onnx.save(out, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
