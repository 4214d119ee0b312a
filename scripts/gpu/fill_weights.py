#!/usr/bin/env python3
"""Fills the external weight file of a Llama graph written by
test/models/make_llama.py with the parameters of a randomly initialized
Hugging Face LlamaForCausalLM (run on the GPU machine: torch, transformers).

  fill_weights.py MODEL.onnx --seed S [--device cuda|cpu] [--norm-noise X]
                  [--qk-spread X]

The model is built from the LlamaConfig stored in the graph's metadata
(`llama_config`) after torch.manual_seed(S), on --device (the GPU: the
initialization of an 8B model takes seconds there, minutes on a CPU). Each
initializer of the graph that is external data is the parameter of the same
name, written at the graph's offset in the graph's dtype (float32, float16
or bfloat16, rounded to nearest even as torch's .to() does); a parameter
the graph holds transposed (an `x @ W` layout: shape reversed, or the name
with a `.T` suffix) is transposed. Every external initializer must map to a
parameter and every parameter must be used. The file is written beside the
graph under a temporary name and renamed, so a failed fill leaves none.

Hugging Face initializes the norm weights to 1, which would hide a runtime
that ignores them: --norm-noise X (default 0.1) adds N(0, X) to each. Its
q and k projections (std 0.02) make the attention of the tiny preset
uniform, under which a missing rotary embedding or a wrong attention scale
or mask hardly changes the logits (the mutation cases of gpu_test.py):
--qk-spread X (default 1.5, as make_llama.py's QK_SPREAD) rescales each q
and k weight to std sqrt(X / hidden), which spreads the attention scores
over about X (0 keeps Hugging Face's init). The torch model returned is
the one written, so its references see the same weights.

As a module: fill(model_path, seed, device) -> the torch model (in float32
on `device`) whose parameters were written, for reference runs.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

# ONNX TensorProto data types this script writes, with their byte sizes.
ONNX_FLOAT, ONNX_FLOAT16, ONNX_BFLOAT16 = 1, 10, 16
QK_SPREAD = 1.5  # make_llama.py's: the attention scores' std
ITEMSIZE = {ONNX_FLOAT: 4, ONNX_FLOAT16: 2, ONNX_BFLOAT16: 2}
DTYPE_NAME = {ONNX_FLOAT: "float32", ONNX_FLOAT16: "float16",
              ONNX_BFLOAT16: "bfloat16"}


class FillError(Exception):
    pass


def external_initializers(model):
    """(name, dims, data_type, location, offset, length) of every
    initializer stored as external data."""
    out = []
    for t in model.graph.initializer:
        if t.data_location != 1:  # TensorProto.EXTERNAL
            continue
        info = {e.key: e.value for e in t.external_data}
        if "location" not in info:
            raise FillError(f"initializer '{t.name}': external data without "
                            "a location")
        if t.data_type not in ITEMSIZE:
            raise FillError(f"initializer '{t.name}': data type {t.data_type}"
                            " is not float32, float16 or bfloat16")
        dims = [int(d) for d in t.dims]
        length = ITEMSIZE[t.data_type] * int(np.prod(dims, dtype=np.int64))
        if int(info.get("length", length)) != length:
            raise FillError(f"initializer '{t.name}': length "
                            f"{info['length']} is not {length} bytes")
        out.append((t.name, dims, t.data_type, info["location"],
                    int(info.get("offset", 0)), length))
    return out


def plan_writes(inits, params):
    """Matches the external initializers to parameters.

    inits: external_initializers(); params: {name: shape}. Returns
    [(init, param_name, transpose)] and raises FillError naming every
    initializer without a parameter, every shape mismatch and every unused
    parameter."""
    plan, errors, used = [], [], set()
    for init in inits:
        name, dims = init[0], init[1]
        base = name[:-2] if name.endswith(".T") and name not in params else name
        shape = params.get(base)
        if shape is None:
            errors.append(f"initializer '{name}': no parameter of that name")
            continue
        shape = list(shape)
        if dims == shape and base == name:
            transpose = False
        elif len(shape) == 2 and dims == shape[::-1]:
            transpose = True
        else:
            errors.append(f"initializer '{name}' {dims}: parameter '{base}' "
                          f"has shape {shape}")
            continue
        used.add(base)
        plan.append((init, base, transpose))
    for name in sorted(set(params) - used):
        errors.append(f"parameter '{name}' is not in the graph")
    if errors:
        raise FillError("\n".join(errors))
    files = {init[3] for init, _, _ in plan}
    if len(files) != 1:
        raise FillError(f"parameters are in {len(files)} files "
                        f"({sorted(files)}); expected one")
    ranges = sorted((init[4], init[4] + init[5], init[0]) for init, _, _ in plan)
    for (b0, e0, n0), (b1, _, n1) in zip(ranges, ranges[1:]):
        if b1 < e0:
            raise FillError(f"initializers '{n0}' and '{n1}' overlap in "
                            "the weight file")
    return plan


def llama_config_of(model):
    """The LlamaConfig keyword arguments stored by make_llama.py."""
    for entry in model.metadata_props:
        if entry.key == "llama_config":
            cfg = json.loads(entry.value)
            for key in ("model_type", "torch_dtype"):
                cfg.pop(key, None)
            return cfg
    raise FillError("the graph has no 'llama_config' metadata (not written "
                    "by test/models/make_llama.py?)")


def tensor_bytes(t, data_type, transpose):
    """The bytes of torch tensor t, transposed if asked, in data_type."""
    import torch
    dtype = {ONNX_FLOAT: torch.float32, ONNX_FLOAT16: torch.float16,
             ONNX_BFLOAT16: torch.bfloat16}[data_type]
    t = t.detach()
    if transpose:
        t = t.t()
    t = t.to(dtype).contiguous()
    if dtype == torch.bfloat16:  # numpy has no bfloat16: its bits
        t = t.view(torch.int16)
    return t.cpu().numpy().tobytes()


def llama_config(cfg, attn):
    """transformers.LlamaConfig of make_llama.py's keyword arguments. The
    rope base moved from `rope_theta` into `rope_parameters` in transformers
    5: whichever this version takes is used."""
    import inspect
    import transformers
    cfg = dict(cfg)
    theta = cfg.pop("rope_theta")
    params = inspect.signature(transformers.LlamaConfig.__init__).parameters
    if "rope_parameters" in params:
        cfg["rope_parameters"] = {"rope_type": "default", "rope_theta": theta}
    else:
        cfg["rope_theta"] = theta
    return transformers.LlamaConfig(**cfg, attn_implementation=attn)


def check_rope(model, cfg):
    """The model's rotary inverse frequencies are those of the graph's
    rope_theta (a config key the installed transformers ignored would
    leave its default base)."""
    import torch
    hd = cfg["hidden_size"] // cfg["num_attention_heads"]
    exponent = torch.arange(0, hd, 2, dtype=torch.float32) / hd
    expected = 1.0 / cfg["rope_theta"] ** exponent
    inv = getattr(getattr(model.model, "rotary_emb", None), "inv_freq", None)
    if inv is None:
        print("fill_weights: warning: no model.rotary_emb.inv_freq to check "
              "rope_theta against", file=sys.stderr)
        return
    inv = inv.detach().float().cpu()
    if not torch.allclose(inv, expected, rtol=1e-5):
        raise FillError(f"the model's rotary frequencies do not follow "
                        f"rope_theta {cfg['rope_theta']} (config "
                        f"{model.config.to_dict()})")


def build_model(cfg, seed, device, norm_noise=0.1, attn="eager",
                qk_spread=QK_SPREAD):
    """LlamaForCausalLM of make_llama.py's config in float32 on device,
    seeded; eager attention by default (the reference computation)."""
    import torch
    import transformers
    config = llama_config(cfg, attn)
    torch.manual_seed(seed)
    with torch.device(device):
        model = transformers.LlamaForCausalLM(config)
    model.eval()
    check_rope(model, cfg)
    if norm_noise:
        gen = torch.Generator(device=device).manual_seed(seed + 1)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("norm.weight"):
                    p.add_(norm_noise * torch.randn(p.shape, generator=gen,
                                                    device=device))
    if qk_spread:
        std = (qk_spread / cfg["hidden_size"]) ** 0.5
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith(("q_proj.weight", "k_proj.weight")):
                    p.mul_(std / p.std())
    return model


def fill(model_path, seed, device="cuda", norm_noise=0.1, quiet=False,
         model=None, attn="eager", qk_spread=QK_SPREAD):
    """Writes the weight file of model_path; returns the torch model. A
    `model` from an earlier fill of a graph of the same config (e.g. the
    f32 and bf16 graphs of one preset) is reused instead of built again."""
    import onnx
    start = time.time()
    graph = onnx.load(model_path, load_external_data=False)
    cfg = llama_config_of(graph)
    inits = external_initializers(graph)
    if model is not None:
        for key, value in cfg.items():
            if key != "rope_theta" and getattr(model.config, key, value) != value:
                raise FillError(f"the given model's config has {key} = "
                                f"{getattr(model.config, key)}, the graph's "
                                f"{value}")
        check_rope(model, cfg)
    else:
        model = build_model(cfg, seed, device, norm_noise, attn, qk_spread)
    params = dict(model.named_parameters())
    plan = plan_writes(inits, {n: list(p.shape) for n, p in params.items()})
    location = plan[0][0][3]
    if os.path.isabs(location) or ".." in location.split("/"):
        raise FillError(f"external data location '{location}' is not a "
                        "plain relative path")
    path = os.path.join(os.path.dirname(os.path.abspath(model_path)), location)
    size = max(init[4] + init[5] for init, _, _ in plan)
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.truncate(size)
            for init, name, transpose in plan:
                data = tensor_bytes(params[name], init[2], transpose)
                f.seek(init[4])
                f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    if not quiet:
        dtypes = sorted({DTYPE_NAME[init[2]] for init, _, _ in plan})
        print(f"fill_weights: {path}: {len(plan)} tensors, "
              f"{size / 2**30:.2f} GiB ({'/'.join(dtypes)}), seed {seed}, "
              f"{time.time() - start:.1f} s", flush=True)
    return model


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--device", default="cuda")
    p.add_argument("--norm-noise", type=float, default=0.1)
    p.add_argument("--qk-spread", type=float, default=QK_SPREAD)
    a = p.parse_args(argv)
    if not os.path.isfile(a.model):
        p.error(f"{a.model}: no such file")
    try:
        fill(a.model, a.seed, a.device, a.norm_noise,
             qk_spread=a.qk_spread)
    except FillError as e:
        print(f"fill_weights: error: {a.model}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
