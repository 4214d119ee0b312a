#!/usr/bin/env python3
"""Writes small GPT-2-, Llama- and BERT-shaped ONNX models (random weights,
fixed seed) in the node forms the two PyTorch exporters produce, for weft's
recognition tests.

  make_transformers.py OUTDIR [--only NAME ...] [--check]

Every model has 2 layers, hidden 64, 4 heads of 16, vocab 96 and symbolic dims
`batch` and `seq` on `input_ids` (BERT also takes `attention_mask`); Llama has
2 kv heads (grouped-query attention). The variants:

  *_ts14, *_ts17   TorchScript exporter: Constant nodes, Shape/Gather/Unsqueeze/
                   Concat chains feeding Reshape and Expand, decomposed
                   LayerNorm at 14 and LayerNormalization at 17, causal masks
                   from Range/ConstantOfShape/Trilu or CumSum, Div(1, Sqrt) in
                   RMSNorm, GPT-2's Conv1D as Gemm.
  *_dynamo18       dynamo exporter: initializers for constants, Shape(start,
                   end), axes as inputs, Split(num_outputs), Reciprocal(Sqrt),
                   masks from GreaterOrEqual/LessOrEqual/And/Where, the SDPA
                   decomposition (q and k^T each scaled by sqrt(scale), a
                   Where(IsNaN(p), 0, p) guard after Softmax).
  llama_opset23    RMSNormalization and RotaryEmbedding ops.

All variants of one architecture draw the same weights (same seed, same
order), so they compute the same function. With --check, each model is run in
onnxruntime on random inputs at two sizes (batch x seq = 2 x 12 and 1 x 5) and
must give finite outputs of the declared shape, outputs that tokens hidden by
the mask (later tokens for GPT-2 and Llama, padding for BERT) do not change,
and the same outputs as the other variants of its architecture: the forms are
valid, runnable ONNX, and the masks, rotary tables and scales are right.
"""
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LAYERS, HIDDEN, HEADS, HEAD_DIM, KV_HEADS, VOCAB, MAX_POS = 2, 64, 4, 16, 2, 96, 64
LLAMA_FF = 176
F32_MIN = float(np.finfo(np.float32).min)
INT64_MAX = int(np.iinfo(np.int64).max)


class Graph:
    """A node list with the constant and shape idioms of one exporter."""

    def __init__(self, opset, dynamo, seed=0):
        self.opset, self.dynamo = opset, dynamo
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits, self.count = [], [], 0

    def fresh(self, hint):
        self.count += 1
        return f"{hint}_{self.count}"

    def op(self, op_type, *inputs, outs=1, **attrs):
        outputs = [self.fresh(op_type.lower()) for _ in range(outs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outputs,
                                           name=self.fresh("/" + op_type), **attrs))
        return outputs[0] if outs == 1 else outputs

    # Constants: Constant nodes (TorchScript) or initializers (dynamo).
    def const(self, value, dtype):
        arr = np.array(value, dtype=dtype)
        if self.dynamo:
            name = self.fresh("val")
            self.inits.append(numpy_helper.from_array(arr, name))
            return name
        out = self.fresh("constant")
        self.nodes.append(helper.make_node("Constant", [], [out],
                                           value=numpy_helper.from_array(arr)))
        return out

    def f(self, v):
        return self.const(v, np.float32)

    def i(self, *v):  # 1-D int64
        return self.const(list(v), np.int64)

    def i0(self, v):  # 0-D int64
        return self.const(v, np.int64)

    def weight(self, name, shape, std=0.05, mean=0.0, transpose=False):
        arr = (mean + std * self.rng.standard_normal(shape)).astype(np.float32)
        return self.init(name, np.ascontiguousarray(arr.T) if transpose else arr)

    def init(self, name, arr):
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    # Shapes.
    def dim(self, x, axis):
        """x.shape[axis] as a 1-D [1] tensor."""
        if self.dynamo:
            return self.op("Shape", x, start=axis, end=axis + 1)
        return self.unsqueeze(self.dim0(x, axis), [0])

    def dim0(self, x, axis):
        """x.shape[axis] as a 0-D tensor."""
        if self.dynamo:
            return self.op("Squeeze", self.dim(x, axis), self.i(0))
        return self.op("Gather", self.op("Shape", x), self.i0(axis), axis=0)

    def shape(self, *parts):
        return self.op("Concat", *[self.i(p) if isinstance(p, int) else p
                                   for p in parts], axis=0)

    def reshape(self, x, *parts):
        extra = {"allowzero": 1} if self.dynamo else {}
        return self.op("Reshape", x, self.shape(*parts), **extra)

    def expand(self, x, shape):
        # TorchScript's .expand() replaces -1 sizes: Where(shape == -1, 1, shape).
        if not self.dynamo:
            ones = self.op("ConstantOfShape", self.op("Shape", shape),
                           value=numpy_helper.from_array(np.array([1], np.int64)))
            minus = self.op("Mul", ones, self.i0(-1))
            shape = self.op("Where", self.op("Equal", shape, minus), ones, shape)
        return self.op("Expand", x, shape)

    def unsqueeze(self, x, axes):
        return self.op("Unsqueeze", x, self.i(*axes))

    def reduce_mean(self, x, axes):
        if self.opset >= 18:
            return self.op("ReduceMean", x, self.i(*axes), keepdims=1)
        return self.op("ReduceMean", x, axes=axes, keepdims=1)

    def transpose(self, x, perm):
        return self.op("Transpose", x, perm=perm)

    def arange(self, n0):
        """Range(0, n0, 1) for a 0-D int64 n0."""
        return self.op("Range", self.i0(0), n0, self.i0(1))


# --- pieces shared by the models --------------------------------------------

def linear(g, x, w, b=None):
    y = g.op("MatMul", x, w)
    return g.op("Add", y, b) if b else y


def conv1d(g, x, w, b, nf, trans_b):
    """HF Conv1D: x.view(-1, nx) @ W + b, back to [batch, seq, nf], as Gemm."""
    size = [g.dim(x, 0), g.dim(x, 1), nf]
    flat = g.reshape(x, -1, g.dim(x, 2))
    return g.reshape(g.op("Gemm", flat, w, b, transB=trans_b), *size)


def layer_norm(g, x, w, b, eps):
    if g.opset >= 17:
        return g.op("LayerNormalization", x, w, b, axis=-1, epsilon=eps)
    d = g.op("Sub", x, g.reduce_mean(x, [-1]))
    var = g.reduce_mean(g.op("Pow", d, g.f(2.0)), [-1])
    y = g.op("Div", d, g.op("Sqrt", g.op("Add", var, g.f(eps))))
    return g.op("Add", g.op("Mul", y, w), b)


def rms_norm(g, x, w, eps=1e-6):
    if g.opset >= 23:
        return g.op("RMSNormalization", x, w, axis=-1, epsilon=eps)
    xf = g.op("Cast", x, to=TensorProto.FLOAT)
    var = g.reduce_mean(g.op("Pow", xf, g.f(2.0)), [-1])
    root = g.op("Sqrt", g.op("Add", var, g.f(eps)))
    inv = g.op("Reciprocal", root) if g.dynamo else g.op("Div", g.f(1.0), root)
    y = g.op("Cast", g.op("Mul", xf, inv), to=TensorProto.FLOAT)
    return g.op("Mul", w, y)


def gelu_erf(g, x):
    t = g.op("Add", g.op("Erf", g.op("Div", x, g.f(1.4142135))), g.f(1.0))
    if g.dynamo:  # x * (0.5 * (1 + erf))
        return g.op("Mul", x, g.op("Mul", g.f(0.5), t))
    return g.op("Mul", g.op("Mul", x, t), g.f(0.5))


def gelu_tanh(g, x):
    cube = g.op("Mul", g.op("Pow", x, g.f(3.0)), g.f(0.044715))
    inner = g.op("Mul", g.op("Add", x, cube), g.f(0.7978845608))
    t = g.op("Add", g.op("Tanh", inner), g.f(1.0))
    return g.op("Mul", g.op("Mul", x, g.f(0.5)), t)


def split_heads(g, x, heads):
    """[b, s, heads * d] -> [b, heads, s, d]."""
    if g.dynamo:
        x = g.reshape(x, g.dim(x, 0), g.dim(x, 1), heads, HEAD_DIM)
    else:
        x = g.reshape(x, g.dim(x, 0), g.dim(x, 1), -1, HEAD_DIM)
    return g.transpose(x, [0, 2, 1, 3])


def merge_heads(g, o):
    o = g.transpose(o, [0, 2, 1, 3])
    return g.reshape(o, g.dim(o, 0), g.dim(o, 1), -1 if g.dynamo else HIDDEN)


def eager_attention(g, q, k, v, keep=None, add=None, div=False, kt=None):
    """softmax(q k^T * scale [masked]) v as HF's eager attention exports it."""
    kt = kt or g.transpose(k, [0, 1, 3, 2])
    w = g.op("MatMul", q, kt)
    w = g.op("Div", w, g.f(HEAD_DIM ** 0.5)) if div else g.op("Mul", w, g.f(HEAD_DIM ** -0.5))
    if keep:
        w = g.op("Where", keep, w, g.f(F32_MIN))
    if add:
        w = g.op("Add", w, add)
    return g.op("MatMul", g.op("Softmax", w, axis=-1), v)


def sdpa(g, q, k, v, keep=None, add=None, k3d=False):
    """torch's scaled_dot_product_attention as the dynamo exporter decomposes
    it: sqrt(scale) on q and on k^T, a boolean mask made additive, a NaN guard."""
    root = g.f(HEAD_DIM ** -0.25)
    if k3d:  # k^T through a [b * h, t, d] view
        k2 = g.reshape(k, -1, g.dim(k, 2), g.dim(k, 3))
        kt = g.reshape(g.transpose(k2, [0, 2, 1]), g.dim(k, 0), g.dim(k, 1),
                       g.dim(k, 3), g.dim(k, 2))
    else:
        kt = g.transpose(k, [0, 1, 3, 2])
    w = g.op("MatMul", g.op("Mul", q, root), g.op("Mul", kt, root))
    if keep:
        add = g.op("Where", keep, g.f(0.0), g.f(-np.inf))
    if add:
        w = g.op("Add", w, add)
    p = g.op("Softmax", w, axis=-1)
    p = g.op("Where", g.op("IsNaN", p), g.f(0.0), p)
    return g.op("MatMul", p, v)


def rotate_half(g, x):
    axes, step = g.i(-1 if g.opset >= 17 else 3), g.i(1)
    if g.dynamo:
        half = g.i(HEAD_DIM // 2)
    else:  # x.shape[-1] // 2
        half = g.unsqueeze(g.op("Div", g.dim0(x, 3), g.i0(2)), [0])
    x1 = g.op("Slice", x, g.i(0), half, axes, step)
    x2 = g.op("Slice", x, half, g.i(INT64_MAX), axes, step)
    return g.op("Concat", g.op("Neg", x2), x1, axis=-1)


def apply_rotary(g, x, cos, sin):
    return g.op("Add", g.op("Mul", x, cos), g.op("Mul", rotate_half(g, x), sin))


def inv_freq():
    return (1.0 / 10000 ** (np.arange(0, HEAD_DIM, 2) / HEAD_DIM)).astype(np.float32)


def rotary_cache(g, ids):
    """cos, sin as [1, 1, seq, head_dim] from Range and an inv_freq initializer."""
    inv = g.init("rotary_emb.inv_freq", inv_freq())
    pos = g.op("Cast", g.arange(g.dim0(ids, 1)), to=TensorProto.FLOAT)
    if g.opset < 17:  # outer(t, inv_freq)
        freqs = g.op("Mul", g.unsqueeze(pos, [1]), g.unsqueeze(inv, [0]))
        emb = g.op("Concat", freqs, freqs, axis=-1)
        return [g.unsqueeze(g.op(f, emb), [0, 1]) for f in ("Cos", "Sin")]
    # HF: (inv_freq[None, :, None].expand(b, -1, 1) @ position_ids[:, None, :]).transpose(1, 2)
    pos_ids = g.unsqueeze(pos, [0])
    inv3 = g.expand(g.unsqueeze(inv, [0, 2]),
                    g.shape(g.dim(pos_ids, 0), HEAD_DIM // 2 if g.dynamo else -1, 1))
    freqs = g.transpose(g.op("MatMul", inv3, g.unsqueeze(pos_ids, [1])), [0, 2, 1])
    emb = g.op("Concat", freqs, freqs, axis=-1)
    return [g.unsqueeze(g.op("Mul", g.op(f, emb), g.f(1.0)), [1]) for f in ("Cos", "Sin")]


def repeat_kv(g, x, n_rep):
    """x[:, :, None].expand(b, kv, n_rep, s, d).reshape(b, kv * n_rep, s, d)."""
    y = g.unsqueeze(x, [2])
    if g.dynamo:
        b, s = g.dim(x, 0), g.dim(x, 2)
        y = g.op("Expand", y, g.shape(b, KV_HEADS, n_rep, s, HEAD_DIM))
        return g.reshape(y, b, KV_HEADS * n_rep, s, HEAD_DIM)
    b, kv, s, d = (g.dim0(x, a) for a in range(4))
    u = lambda t: g.unsqueeze(t, [0])
    y = g.expand(y, g.shape(u(b), u(kv), n_rep, u(s), u(d)))
    return g.reshape(y, u(b), u(g.op("Mul", kv, g.i0(n_rep))), u(s), u(d))


def seq_index(g, ids, axes):
    """Range(0, seq) unsqueezed at `axes`."""
    return g.unsqueeze(g.arange(g.dim0(ids, 1)), axes)


def finish(g, name, inputs, output, out_dim):
    ins = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "seq"])
           for n in inputs]
    outs = [helper.make_tensor_value_info(output, TensorProto.FLOAT,
                                          ["batch", "seq", out_dim])]
    graph = helper.make_graph(g.nodes, name, ins, outs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", g.opset)],
                              producer_name="make_transformers.py")
    model.ir_version = 8 if g.opset < 19 else 10
    onnx.checker.check_model(model, full_check=True)
    return model


# --- GPT-2 --------------------------------------------------------------------

def gpt2(opset, dynamo):
    g = Graph(opset, dynamo)
    ids, ff = "input_ids", 4 * HIDDEN
    trans_b = 1 if opset == 14 else 0  # Conv1D weight as [nf, nx] with transB, or [nx, nf]
    wte = g.weight("transformer.wte.weight", [VOCAB, HIDDEN])
    wpe = g.weight("transformer.wpe.weight", [MAX_POS, HIDDEN])
    h = g.op("Add", g.op("Gather", wte, ids, axis=0),
             g.op("Gather", wpe, seq_index(g, ids, [0]), axis=0))
    b, s = g.dim(ids, 0), g.dim(ids, 1)
    # Causal mask over [seq, seq]; keep (bool) for eager attention's Where, or
    # additive for the dynamo form.
    keep = add = None
    if opset == 14:  # tril(ones(s, s)).bool()
        ones = g.op("ConstantOfShape", g.shape(s, s),
                    value=numpy_helper.from_array(np.array([1.0], np.float32)))
        keep = g.op("Cast", g.op("Trilu", ones, upper=0), to=TensorProto.BOOL)
        keep = g.unsqueeze(keep, [0, 1])
    elif not dynamo:  # row index from CumSum(ones) - 1, column index from Range
        ones = g.op("ConstantOfShape", s, value=numpy_helper.from_array(np.array([1], np.int64)))
        rows = g.op("Sub", g.op("CumSum", ones, g.i0(0)), g.i0(1))
        keep = g.op("LessOrEqual", seq_index(g, ids, [0]), g.unsqueeze(rows, [1]))
        keep = g.expand(g.unsqueeze(keep, [0, 1]), g.shape(b, 1, s, s))
    else:  # q_idx >= kv_idx and kv_idx >= 0, as an additive mask
        kv = seq_index(g, ids, [0])
        m = g.op("And", g.op("GreaterOrEqual", seq_index(g, ids, [1]), kv),
                 g.op("GreaterOrEqual", kv, g.i0(0)))
        m = g.op("Expand", g.unsqueeze(m, [0, 1]), g.shape(b, 1, s, s))
        add = g.op("Where", m, g.f(0.0), g.f(F32_MIN))
    for l in range(LAYERS):
        p = f"transformer.h.{l}."
        ln = lambda n: (g.weight(p + n + ".weight", [HIDDEN], 0.1, 1.0),
                        g.weight(p + n + ".bias", [HIDDEN], 0.1))
        c1d = lambda t, n, nx, nf: conv1d(g, t, g.weight(p + n + ".weight", [nx, nf],
                                                           transpose=trans_b),
                                          g.weight(p + n + ".bias", [nf], 0.02), nf, trans_b)
        x = layer_norm(g, h, *ln("ln_1"), 1e-5)
        qkv = c1d(x, "attn.c_attn", HIDDEN, 3 * HIDDEN)
        if dynamo:
            q, k, v = g.op("Split", qkv, axis=2, num_outputs=3, outs=3)
        else:
            q, k, v = g.op("Split", qkv, g.i(HIDDEN, HIDDEN, HIDDEN), axis=2, outs=3)
        q, v = split_heads(g, q, HEADS), split_heads(g, v, HEADS)
        if dynamo:  # k^T straight from the [b, s, h, d] view
            kview = g.reshape(k, g.dim(k, 0), g.dim(k, 1), HEADS, HEAD_DIM)
            o = eager_attention(g, q, None, v, add=add, kt=g.transpose(kview, [0, 2, 3, 1]))
        else:
            o = eager_attention(g, q, split_heads(g, k, HEADS), v, keep=keep, div=True)
        o = c1d(merge_heads(g, o), "attn.c_proj", HIDDEN, HIDDEN)
        h = g.op("Add", o, h)
        x = layer_norm(g, h, *ln("ln_2"), 1e-5)
        x = c1d(gelu_tanh(g, c1d(x, "mlp.c_fc", HIDDEN, ff)), "mlp.c_proj", ff, HIDDEN)
        h = g.op("Add", h, x)
    h = layer_norm(g, h, g.weight("transformer.ln_f.weight", [HIDDEN], 0.1, 1.0),
                   g.weight("transformer.ln_f.bias", [HIDDEN], 0.1), 1e-5)
    # The LM head is tied to wte: TorchScript folds wte^T into an initializer,
    # dynamo keeps Transpose(wte).
    if dynamo:
        g.op("MatMul", h, g.transpose(wte, [1, 0]))
    else:
        table = numpy_helper.to_array(next(t for t in g.inits if t.name == wte))
        g.op("MatMul", h, g.init("lm_head.weight.T", np.ascontiguousarray(table.T)))
    g.nodes[-1].output[0] = "logits"
    return finish(g, "gpt2", [ids], "logits", VOCAB)


# --- Llama --------------------------------------------------------------------

def llama(opset, dynamo):
    g = Graph(opset, dynamo)
    ids, ff, n_rep = "input_ids", LLAMA_FF, HEADS // KV_HEADS
    h = g.op("Gather", g.weight("model.embed_tokens.weight", [VOCAB, HIDDEN]), ids, axis=0)
    b, s = g.dim(ids, 0), g.dim(ids, 1)
    mask = None
    if opset == 14:  # HF _make_causal_mask: full(min).masked_fill(j < i + 1, 0)
        full = g.op("ConstantOfShape", g.shape(s, s),
                    value=numpy_helper.from_array(np.array([F32_MIN], np.float32)))
        cond = g.arange(g.dim0(ids, 1))
        rows = g.reshape(g.op("Add", cond, g.i0(1)), s, 1)
        mask = g.op("Where", g.op("Less", cond, rows), g.f(0.0), full)
    elif not dynamo and opset < 23:  # triu(full(min), diagonal=1)
        full = g.op("ConstantOfShape", g.shape(s, s),
                    value=numpy_helper.from_array(np.array([F32_MIN], np.float32)))
        mask = g.op("Trilu", full, g.i0(1), upper=1)
    elif opset < 23:  # masking_utils: kv_idx <= q_idx and kv_idx >= 0 (boolean)
        kv = seq_index(g, ids, [0])
        mask = g.op("And", g.op("LessOrEqual", kv, seq_index(g, ids, [1])),
                    g.op("GreaterOrEqual", kv, g.i0(0)))
        mask = g.op("Expand", g.unsqueeze(mask, [0, 1]), g.shape(b, 1, s, s))
    else:  # SDPA(is_causal=True): Trilu(ones) made additive by Where(== 0)
        ones = g.op("ConstantOfShape", g.shape(s, s),
                    value=numpy_helper.from_array(np.array([1.0], np.float32)))
        tri = g.op("Trilu", ones, upper=0)
        mask = g.op("Where", g.op("Equal", tri, g.f(0.0)), g.f(-np.inf), g.f(0.0))
    if mask is not None and not dynamo and opset < 23:
        mask = g.expand(g.unsqueeze(mask, [0, 1]), g.shape(b, 1, s, s))
    if opset >= 23:  # caches [max_pos, d / 2], looked up by position ids
        t = np.arange(MAX_POS, dtype=np.float32)[:, None] * inv_freq()[None, :]
        cos_cache = g.init("cos_cache", np.cos(t).astype(np.float32))
        sin_cache = g.init("sin_cache", np.sin(t).astype(np.float32))
        pos_ids = g.op("Expand", seq_index(g, ids, [0]), g.shape(b, s))
    else:
        cos, sin = rotary_cache(g, ids)
    for l in range(LAYERS):
        p = f"model.layers.{l}."
        w = lambda n, shape: g.weight(p + n, shape)
        norm_w = lambda n: g.weight(p + n + ".weight", [HIDDEN], 0.1, 1.0)
        x = rms_norm(g, h, norm_w("input_layernorm"))
        q = linear(g, x, w("self_attn.q_proj.weight.T", [HIDDEN, HEADS * HEAD_DIM]))
        k = linear(g, x, w("self_attn.k_proj.weight.T", [HIDDEN, KV_HEADS * HEAD_DIM]))
        v = linear(g, x, w("self_attn.v_proj.weight.T", [HIDDEN, KV_HEADS * HEAD_DIM]))
        v = split_heads(g, v, KV_HEADS)
        if opset >= 23:  # q rotated as [b, h, s, d], k as [b, s, kv * d]
            rot = lambda t, **a: g.op("RotaryEmbedding", t, cos_cache, sin_cache, pos_ids, **a)
            q = rot(split_heads(g, q, HEADS))
            k = split_heads(g, rot(k, num_heads=KV_HEADS), KV_HEADS)
        else:
            q = apply_rotary(g, split_heads(g, q, HEADS), cos, sin)
            k = apply_rotary(g, split_heads(g, k, KV_HEADS), cos, sin)
        k, v = repeat_kv(g, k, n_rep), repeat_kv(g, v, n_rep)
        if opset >= 23:
            o = sdpa(g, q, k, v, add=mask)
        elif dynamo:
            o = sdpa(g, q, k, v, keep=mask, k3d=True)
        else:  # causal_mask[:, :, :, : key_states.shape[-2]]
            m = g.op("Slice", mask, g.i(0), g.dim(k, 2), g.i(3), g.i(1))
            o = eager_attention(g, q, k, v, add=m)
        o = linear(g, merge_heads(g, o), w("self_attn.o_proj.weight.T", [HIDDEN, HIDDEN]))
        h = g.op("Add", h, o)
        x = rms_norm(g, h, norm_w("post_attention_layernorm"))
        gate = linear(g, x, w("mlp.gate_proj.weight.T", [HIDDEN, ff]))
        up = linear(g, x, w("mlp.up_proj.weight.T", [HIDDEN, ff]))
        act = g.op("Mul", g.op("Mul", gate, g.op("Sigmoid", gate)), up)
        h = g.op("Add", h, linear(g, act, w("mlp.down_proj.weight.T", [ff, HIDDEN])))
    h = rms_norm(g, h, g.weight("model.norm.weight", [HIDDEN], 0.1, 1.0))
    g.op("MatMul", h, g.weight("lm_head.weight.T", [HIDDEN, VOCAB]))
    g.nodes[-1].output[0] = "logits"
    return finish(g, "llama", [ids], "logits", VOCAB)


# --- BERT ---------------------------------------------------------------------

def bert(opset, dynamo):
    g = Graph(opset, dynamo)
    ids, am, ff, eps = "input_ids", "attention_mask", 128, 1e-12
    b, s = g.dim(ids, 0), g.dim(ids, 1)
    e = lambda n, rows: g.weight("embeddings." + n + ".weight", [rows, HIDDEN])
    # Buffers sliced to the sequence: position_ids[:, :s], token_type_ids[:, :s].
    pos = g.init("embeddings.position_ids", np.arange(MAX_POS, dtype=np.int64)[None])
    tt = g.init("embeddings.token_type_ids", np.zeros((1, MAX_POS), np.int64))
    pos = g.op("Slice", pos, g.i(0), s, g.i(1), g.i(1))
    tt = g.op("Expand", g.op("Slice", tt, g.i(0), s, g.i(1), g.i(1)), g.shape(b, s))
    x = g.op("Add", g.op("Gather", e("word_embeddings", VOCAB), ids, axis=0),
             g.op("Gather", e("token_type_embeddings", 2), tt, axis=0))
    x = g.op("Add", x, g.op("Gather", e("position_embeddings", MAX_POS), pos, axis=0))
    ln = lambda n: (g.weight(n + ".weight", [HIDDEN], 0.1, 1.0), g.weight(n + ".bias", [HIDDEN], 0.1))
    h = layer_norm(g, x, *ln("embeddings.LayerNorm"), eps)
    if dynamo:  # padding mask and kv_idx >= 0, boolean [b, 1, 1, s]
        keep = g.op("Cast", g.unsqueeze(am, [1, 2]), to=TensorProto.BOOL)
        mask = g.op("And", keep, g.op("GreaterOrEqual", seq_index(g, ids, [0, 1, 2]), g.i0(0)))
    else:  # (1 - mask[:, None, None, :].float()) * finfo.min
        mask = g.op("Cast", g.unsqueeze(am, [1, 2]), to=TensorProto.FLOAT)
        mask = g.op("Mul", g.op("Sub", g.f(1.0), mask), g.f(F32_MIN))
    for l in range(LAYERS):
        p = f"encoder.layer.{l}."
        dense = lambda t, n, i, o: linear(g, t, g.weight(p + n + ".weight.T", [i, o]),
                                          g.weight(p + n + ".bias", [o], 0.02))
        q, k, v = (split_heads(g, dense(h, "attention.self." + n, HIDDEN, HIDDEN), HEADS)
                   for n in ("query", "key", "value"))
        o = sdpa(g, q, k, v, keep=mask) if dynamo else eager_attention(g, q, k, v, add=mask, div=True)
        o = dense(merge_heads(g, o), "attention.output.dense", HIDDEN, HIDDEN)
        h = layer_norm(g, g.op("Add", o, h), *ln(p + "attention.output.LayerNorm"), eps)
        x = gelu_erf(g, dense(h, "intermediate.dense", HIDDEN, ff))
        x = dense(x, "output.dense", ff, HIDDEN)
        h = layer_norm(g, g.op("Add", x, h), *ln(p + "output.LayerNorm"), eps)
    g.nodes.append(helper.make_node("Identity", [h], ["last_hidden_state"]))
    return finish(g, "bert", [ids, am], "last_hidden_state", HIDDEN)


MODELS = {
    "gpt2_ts14": lambda: gpt2(14, False),
    "gpt2_ts17": lambda: gpt2(17, False),
    "gpt2_dynamo18": lambda: gpt2(18, True),
    "llama_ts14": lambda: llama(14, False),
    "llama_ts17": lambda: llama(17, False),
    "llama_dynamo18": lambda: llama(18, True),
    "llama_opset23": lambda: llama(23, True),
    "bert_ts14": lambda: bert(14, False),
    "bert_ts17": lambda: bert(17, False),
    "bert_dynamo18": lambda: bert(18, True),
}


def run(path, model):
    """Runs the model in onnxruntime on fixed random inputs at two sizes and
    checks that its outputs are finite, of the declared shape, and ignore what
    the mask hides: later tokens (GPT-2, Llama) or padding (BERT)."""
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = {i.name for i in model.graph.input}
    width = model.graph.output[0].type.tensor_type.shape.dim[2].dim_value
    rng, outs = np.random.default_rng(7), []
    for batch, seq in [(2, 12), (1, 5)]:
        ids = rng.integers(0, VOCAB, (batch, seq), dtype=np.int64)
        mask = np.ones((batch, seq), np.int64)
        mask[0, seq // 2:] = 0
        feed = lambda ids: {"input_ids": ids, **({"attention_mask": mask}
                                                 if "attention_mask" in names else {})}
        (out,) = sess.run(None, feed(ids))
        if out.shape != (batch, seq, width) or not np.isfinite(out).all():
            raise SystemExit(f"{path}: bad output {out.shape} at batch={batch} seq={seq}")
        hidden = (mask == 0) if "attention_mask" in names else \
            np.arange(seq)[None, :].repeat(batch, 0) == seq - 1
        other = np.where(hidden, (ids + 1) % VOCAB, ids)
        (out2,) = sess.run(None, feed(other))
        if not np.allclose(out[~hidden], out2[~hidden], atol=1e-5):
            raise SystemExit(f"{path}: masked-out tokens change visible outputs")
        outs.append(out)
    return outs


def check(models):
    """Each model runs; the variants of one architecture agree."""
    first = {}
    for name, path, model in models:
        outs = run(path, model)
        arch = name.split("_")[0]
        ref = first.setdefault(arch, (name, outs))
        for a, b in zip(ref[1], outs):
            err = float(np.abs(a - b).max())
            if err > 1e-4:
                raise SystemExit(f"{name} differs from {ref[0]} by {err}")
        print("checked", path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("outdir")
    p.add_argument("--only", nargs="*", choices=sorted(MODELS), help="models to write")
    p.add_argument("--check", action="store_true", help="run each model in onnxruntime")
    a = p.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    written = []
    for name in a.only or MODELS:
        model = MODELS[name]()
        path = os.path.join(a.outdir, name + ".onnx")
        onnx.save(model, path)
        written.append((name, path, model))
    if a.check:
        check(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
