#!/usr/bin/env python3
"""Writes a Llama-shaped ONNX graph (the dynamo exporter's form, opset 18)
whose weights are external data in one file, DIR/model.weights, which is
NOT written unless --write-weights: the compiler works from shapes alone,
and scripts/gpu/fill_weights.py fills the file on the GPU machine.

  make_llama.py --preset 1b|8b|tiny [--dtype f32|bf16] -o DIR
                [--layers N] [--vocab V] [--write-weights] [--seed S]
                [--mutate no-rotary|attn-scale|norm-weight|transpose|mask-ahead]

Writes DIR/model.onnx with input `input_ids` int64 [batch, seq] and output
`logits` float32 [batch, seq, vocab]. Every initializer that holds a
parameter is named as in Hugging Face's LlamaForCausalLM.state_dict() and
has that parameter's shape and layout (projections are [out, in] and feed
MatMul through a Transpose, as the unoptimized dynamo export has them), so
a state_dict maps onto model.weights one to one. The LlamaConfig the graph
follows is stored as JSON in the model's metadata (key `llama_config`).

With --dtype bf16 the parameters are bfloat16 and the graph computes as
LlamaForCausalLM does in bfloat16: norms and softmax inputs in float32
(HF's upcasts), rotary tables cast to bfloat16, logits cast to float32 at
the end. --write-weights fills model.weights with seeded random values
(numpy; for CPU checks of small presets, not a Hugging Face init; q and k
at qk_std(hidden), as scripts/gpu/fill_weights.py rescales them).

--mutate writes a deliberately wrong graph, test/e2e/mutate.py's mutation
of that name (docs/testing.md), for the GPU machine's mutation cases: the
rotary embedding left out; the attention scale 10% too large; layer 0's
input norm reading ones instead of its weight; the last layer's o_proj
read without its Transpose (the [out, in] weight taken as [in, out]); the
causal mask letting each token see the next one. The parameters are
declared exactly as in the unmutated graph (the ignored norm weight stays
an unused initializer), so the same model.weights serves both. The
metadata key `mutation` names it.
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_transformers as mt  # noqa: E402

# Shapes as in the Hugging Face configs: 1b as TinyLlama-1.1B, 8b as
# Llama-3-8B; tiny runs in seconds on a CPU and splits 4 ways (heads, kv
# heads, MLP and vocab all divide by 4).
PRESETS = {
    "tiny": dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=8,
                 num_key_value_heads=4, intermediate_size=352,
                 vocab_size=256, max_position_embeddings=512,
                 rope_theta=10000.0, rms_norm_eps=1e-5),
    "1b": dict(hidden_size=2048, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, intermediate_size=8192,
               vocab_size=32000, max_position_embeddings=2048,
               rope_theta=10000.0, rms_norm_eps=1e-5),
    "8b": dict(hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=8, intermediate_size=14336,
               vocab_size=128256, max_position_embeddings=8192,
               rope_theta=500000.0, rms_norm_eps=1e-5),
}
WEIGHTS = "model.weights"
ALIGN = 64  # byte alignment of each tensor in model.weights
DTYPES = {"f32": (TensorProto.FLOAT, 4), "bf16": (TensorProto.BFLOAT16, 2)}
MUTATIONS = ["no-rotary", "attn-scale", "norm-weight", "transpose",
             "mask-ahead"]
SCALE_ERROR = 1.1  # attn-scale's factor, as mutate.py's
QK_SPREAD = 1.5  # std of the attention scores (qk_std)


def llama_config(preset, layers=None, vocab=None):
    """The LlamaConfig keyword arguments of a preset."""
    cfg = dict(PRESETS[preset])
    if layers is not None:
        cfg["num_hidden_layers"] = layers
    if vocab is not None:
        cfg["vocab_size"] = vocab
    cfg.update(tie_word_embeddings=False, attention_bias=False,
               mlp_bias=False, hidden_act="silu", model_type="llama")
    return cfg


def parameter_shapes(cfg):
    """(name, shape) of every LlamaForCausalLM parameter, in state_dict
    order."""
    h, ff, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    hd = h // cfg["num_attention_heads"]
    kv = cfg["num_key_value_heads"] * hd
    out = [("model.embed_tokens.weight", [v, h])]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        out += [(p + "self_attn.q_proj.weight", [h, h]),
                (p + "self_attn.k_proj.weight", [kv, h]),
                (p + "self_attn.v_proj.weight", [kv, h]),
                (p + "self_attn.o_proj.weight", [h, h]),
                (p + "mlp.gate_proj.weight", [ff, h]),
                (p + "mlp.up_proj.weight", [ff, h]),
                (p + "mlp.down_proj.weight", [h, ff]),
                (p + "input_layernorm.weight", [h]),
                (p + "post_attention_layernorm.weight", [h])]
    out += [("model.norm.weight", [h]), ("lm_head.weight", [v, h])]
    return out


class LlamaGraph(mt.Graph):
    """make_transformers' dynamo-form graph with a compute dtype and
    parameters declared as external data."""

    def __init__(self, dtype, shapes):
        super().__init__(18, True)
        self.onnx_dtype, self.itemsize = DTYPES[dtype]
        self.shapes, self.offset, self.declared = dict(shapes), 0, []

    def fc(self, value):
        """A scalar constant of the compute dtype."""
        if self.onnx_dtype == TensorProto.FLOAT:
            return self.f(value)
        name = self.fresh("val")
        self.inits.append(helper.make_tensor(name, TensorProto.BFLOAT16, [],
                                             [float(value)]))
        return name

    def param(self, name):
        """The parameter `name` as external data in model.weights."""
        dims = self.shapes[name]
        t = TensorProto(name=name, data_type=self.onnx_dtype, dims=dims,
                        data_location=TensorProto.EXTERNAL)
        length = self.itemsize * int(np.prod(dims))
        self.offset = (self.offset + ALIGN - 1) // ALIGN * ALIGN
        for key, value in (("location", WEIGHTS), ("offset", str(self.offset)),
                           ("length", str(length))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        self.declared.append((name, dims, self.offset, length))
        self.offset += length
        self.inits.append(t)
        return name

    def cast(self, x, to=None):
        return self.op("Cast", x, to=to or self.onnx_dtype)


def rms_norm(g, x, w, eps):
    """LlamaRMSNorm: in float32, back to the compute dtype, times weight."""
    xf = g.cast(x, TensorProto.FLOAT)
    var = g.reduce_mean(g.op("Pow", xf, g.f(2.0)), [-1])
    inv = g.op("Reciprocal", g.op("Sqrt", g.op("Add", var, g.f(eps))))
    return g.op("Mul", w, g.cast(g.op("Mul", xf, inv)))


def rotary_tables(g, ids, head_dim, theta):
    """cos, sin [1, 1, seq, head_dim] in the compute dtype, from inv_freq
    and the positions as LlamaRotaryEmbedding computes them (float32)."""
    # In float32, as LlamaRotaryEmbedding computes it.
    exponent = np.arange(0, head_dim, 2).astype(np.float32) / head_dim
    inv = np.float32(1.0) / np.power(np.float32(theta), exponent)
    inv = g.init("model.rotary_emb.inv_freq", inv.astype(np.float32))
    pos = g.op("Cast", g.arange(g.dim0(ids, 1)), to=TensorProto.FLOAT)
    pos_ids = g.unsqueeze(pos, [0])
    inv3 = g.op("Expand", g.unsqueeze(inv, [0, 2]),
                g.shape(g.dim(pos_ids, 0), head_dim // 2, 1))
    freqs = g.transpose(g.op("MatMul", inv3, g.unsqueeze(pos_ids, [1])),
                        [0, 2, 1])
    emb = g.op("Concat", freqs, freqs, axis=-1)
    return [g.unsqueeze(g.cast(g.op("Mul", g.op(f, emb), g.f(1.0))), [1])
            for f in ("Cos", "Sin")]


def sdpa(g, q, k, v, keep, head_dim, scale=1.0):
    """torch's scaled_dot_product_attention as the dynamo exporter
    decomposes it (see make_transformers.sdpa), in the compute dtype;
    `scale` multiplies the softmax scale (a mutation)."""
    root = g.fc((scale * head_dim ** -0.5) ** 0.5)
    k2 = g.reshape(k, -1, g.dim(k, 2), g.dim(k, 3))
    kt = g.reshape(g.transpose(k2, [0, 2, 1]), g.dim(k, 0), g.dim(k, 1),
                   g.dim(k, 3), g.dim(k, 2))
    w = g.op("MatMul", g.op("Mul", q, root), g.op("Mul", kt, root))
    w = g.op("Add", w, g.op("Where", keep, g.fc(0.0), g.fc(-np.inf)))
    p = g.op("Softmax", w, axis=-1)
    p = g.op("Where", g.op("IsNaN", p), g.fc(0.0), p)
    return g.op("MatMul", p, v)


def build(cfg, dtype, mutation=None):
    """The ModelProto and the (name, shape, offset, length) of every
    parameter in model.weights; `mutation` (one of MUTATIONS) makes it
    deliberately wrong."""
    if mutation not in [None] + MUTATIONS:
        raise SystemExit(f"unknown mutation '{mutation}'")
    h, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    kv_heads, hd = cfg["num_key_value_heads"], h // heads
    if h % heads or heads % kv_heads:
        raise SystemExit("hidden must divide by heads, heads by kv heads")
    # make_transformers' helpers (split_heads, repeat_kv, rotate_half) read
    # the shape from its module globals.
    mt.HIDDEN, mt.HEADS, mt.HEAD_DIM, mt.KV_HEADS = h, heads, hd, kv_heads
    g = LlamaGraph(dtype, parameter_shapes(cfg))
    eps = cfg["rms_norm_eps"]
    lin = lambda x, name: g.op("MatMul", x, g.transpose(g.param(name), [1, 0]))
    last = cfg["num_hidden_layers"] - 1
    last_o = f"model.layers.{last}.self_attn.o_proj.weight"
    if mutation == "transpose":  # the square o_proj read as [in, out]
        plain = lin
        lin = lambda x, name: g.op("MatMul", x, g.param(name)) \
            if name == last_o else plain(x, name)
    ids = "input_ids"
    x = g.op("Gather", g.param("model.embed_tokens.weight"), ids, axis=0)
    b, s = g.dim(ids, 0), g.dim(ids, 1)
    # masking_utils' causal mask: kv_idx <= q_idx and kv_idx >= 0.
    kv = mt.seq_index(g, ids, [0])
    q_idx = mt.seq_index(g, ids, [1])
    if mutation == "mask-ahead":  # kv_idx <= q_idx + 1
        q_idx = g.op("Add", q_idx, g.i0(1))
    mask = g.op("And", g.op("LessOrEqual", kv, q_idx),
                g.op("GreaterOrEqual", kv, g.i0(0)))
    mask = g.op("Expand", g.unsqueeze(mask, [0, 1]), g.shape(b, 1, s, s))
    if mutation != "no-rotary":
        cos, sin = rotary_tables(g, ids, hd, cfg["rope_theta"])
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        w = g.param(p + "input_layernorm.weight")
        if mutation == "norm-weight" and l == 0:  # declared, not read
            w = g.init(g.fresh("ones"), np.ones([h], np.float32))
            if g.onnx_dtype != TensorProto.FLOAT:
                w = g.cast(w)
        y = rms_norm(g, x, w, eps)
        q = mt.split_heads(g, lin(y, p + "self_attn.q_proj.weight"), heads)
        k = mt.split_heads(g, lin(y, p + "self_attn.k_proj.weight"), kv_heads)
        v = mt.split_heads(g, lin(y, p + "self_attn.v_proj.weight"), kv_heads)
        if mutation != "no-rotary":
            q, k = (mt.apply_rotary(g, t, cos, sin) for t in (q, k))
        k = mt.repeat_kv(g, k, heads // kv_heads)
        v = mt.repeat_kv(g, v, heads // kv_heads)
        o = sdpa(g, q, k, v, mask, hd,
                 SCALE_ERROR if mutation == "attn-scale" else 1.0)
        x = g.op("Add", x, lin(mt.merge_heads(g, o), p + "self_attn.o_proj.weight"))
        y = rms_norm(g, x, g.param(p + "post_attention_layernorm.weight"), eps)
        gate = lin(y, p + "mlp.gate_proj.weight")
        up = lin(y, p + "mlp.up_proj.weight")
        act = g.op("Mul", g.op("Mul", gate, g.op("Sigmoid", gate)), up)
        x = g.op("Add", x, lin(act, p + "mlp.down_proj.weight"))
    x = rms_norm(g, x, g.param("model.norm.weight"), eps)
    logits = lin(x, "lm_head.weight")
    if g.onnx_dtype != TensorProto.FLOAT:
        logits = g.cast(logits, TensorProto.FLOAT)
    g.nodes[-1].output[0] = "logits"
    inputs = [helper.make_tensor_value_info(ids, TensorProto.INT64,
                                            ["batch", "seq"])]
    outputs = [helper.make_tensor_value_info(
        "logits", TensorProto.FLOAT, ["batch", "seq", cfg["vocab_size"]])]
    graph = helper.make_graph(g.nodes, "llama", inputs, outputs, g.inits)
    model = helper.make_model(graph, producer_name="make_llama.py",
                              opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    entry = model.metadata_props.add()
    entry.key, entry.value = "llama_config", json.dumps(
        dict(cfg, torch_dtype="bfloat16" if dtype == "bf16" else "float32"))
    if mutation:
        entry = model.metadata_props.add()
        entry.key, entry.value = "mutation", mutation
    return model, g.declared, g.offset


def check(model):
    """onnx's checker with full shape inference. The external weight file
    may be absent, so the parameters are checked as graph inputs of their
    type and shape."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    external = [t for t in copy.graph.initializer
                if t.data_location == TensorProto.EXTERNAL]
    for t in external:
        copy.graph.input.append(
            helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
        copy.graph.initializer.remove(t)
    onnx.checker.check_model(copy, full_check=True)


def to_bf16_bits(a):
    """float32 -> bfloat16 bit patterns, rounded to nearest even."""
    u = a.astype(np.float32).view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def qk_std(hidden):
    """The std of the q and k projections' weights that spreads the
    attention scores of unit-RMS inputs over about QK_SPREAD: q and k
    entries have std sigma * sqrt(hidden), a score (q . k / sqrt(d)) std
    sigma^2 * hidden. Hugging Face's 0.02 gives 0.05 at hidden 128 (the
    tiny preset): uniform attention, under which a missing rotary
    embedding, a wrong scale or mask hardly change the logits."""
    return (QK_SPREAD / hidden) ** 0.5


def write_weights(path, declared, total, dtype, seed):
    """Seeded random parameters: norms near 1, q and k N(0, qk_std), other
    matrices N(0, 0.02)."""
    rng = np.random.default_rng(seed)
    with open(path + ".tmp", "wb") as f:
        f.truncate(total)
        for name, dims, offset, length in declared:
            if name.endswith("norm.weight"):
                a = 1.0 + 0.1 * rng.standard_normal(dims)
            elif name.endswith(("q_proj.weight", "k_proj.weight")):
                a = qk_std(dims[1]) * rng.standard_normal(dims)
            else:
                a = 0.02 * rng.standard_normal(dims)
            a = to_bf16_bits(a) if dtype == "bf16" else a.astype(np.float32)
            f.seek(offset)
            f.write(a.tobytes())
    os.replace(path + ".tmp", path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", required=True, choices=sorted(PRESETS))
    p.add_argument("--dtype", default="f32", choices=sorted(DTYPES))
    p.add_argument("-o", dest="out", required=True, metavar="DIR")
    p.add_argument("--layers", type=int, help="override the layer count")
    p.add_argument("--vocab", type=int,
                   help="override the vocabulary size (e.g. to fit a "
                   "tokenizer's ids)")
    p.add_argument("--write-weights", action="store_true",
                   help="also write model.weights with random values")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mutate", choices=MUTATIONS,
                   help="write this deliberately wrong variant")
    a = p.parse_args()
    if a.layers is not None and a.layers < 1:
        p.error(f"--layers {a.layers}: must be at least 1")
    if a.vocab is not None and a.vocab < 4:
        p.error(f"--vocab {a.vocab}: must be at least 4")
    cfg = llama_config(a.preset, a.layers, a.vocab)
    model, declared, total = build(cfg, a.dtype, a.mutate)
    check(model)
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "model.onnx")
    with open(path + ".tmp", "wb") as f:
        f.write(model.SerializeToString())
    os.replace(path + ".tmp", path)
    if a.write_weights:
        write_weights(os.path.join(a.out, WEIGHTS), declared, total, a.dtype,
                      a.seed)
    state = "written" if a.write_weights else "not written"
    print(f"wrote {path}: {len(model.graph.node)} nodes, {len(declared)} "
          f"parameters, {total / 2**20:.1f} MiB in {WEIGHTS} ({state})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
