"""The GPU test and benchmark cases, shared by scripts/gpu/prepare.py (which
compiles them on the build machine) and scripts/gpu/gpu_test.py,
scripts/gpu/generate_check.py, bench/prefill.py and bench/decode.py (which
run them on the GPU machine). Plain Python: nothing
here needs onnx, torch or weft.

A model is a directory dist/gpu/models/NAME/ holding model.onnx (and, for
the make_llama.py graphs, model.weights once fill_weights.py has written it
on the GPU machine). A case is one artifact of one model at one layout,
with its inputs and the reference it is checked against.
"""
import json
import os

DIST = os.path.join("dist", "gpu")
TOPOLOGY = "h100x4"  # four GPUs of one node: every layout below fits

# The layouts: name -> (tp, pp).
LAYOUTS = {"1gpu": (1, 1), "tp2": (2, 1), "tp4": (4, 1), "pp2": (1, 2),
           "tp2pp2": (2, 2)}
MULTI = ["tp2", "tp4", "pp2", "tp2pp2"]

# One 8-GPU server's layouts, for the 8b model at 1 and 8 x 512 (tested
# against torch and benchmarked): made only by `gpu-prepare --full-node`,
# since they need an 8-GPU topology and add about 20 MiB to dist/gpu. The
# scripts skip them where fewer GPUs are present.
FULL_NODE_TOPOLOGY = "dgx-h100"
FULL_NODE_LAYOUTS = {"tp8": (8, 1), "tp4pp2": (4, 2), "tp2pp4": (2, 4)}
FULL_NODE_MODEL = ("llama8b_bf16", "8b")
LAYOUTS.update(FULL_NODE_LAYOUTS)

# make_transformers.py's models: all at 1 GPU, one per architecture on every
# layout. Weights are in model.onnx; checked against onnxruntime in f32.
SMALL = ["gpt2_ts14", "gpt2_ts17", "gpt2_dynamo18", "llama_ts14",
         "llama_ts17", "llama_dynamo18", "llama_opset23", "bert_ts14",
         "bert_ts17", "bert_dynamo18"]
SMALL_MULTI = ["gpt2_dynamo18", "llama_dynamo18", "bert_dynamo18"]
SMALL_DIMS = (2, 12)  # batch, seq

# make_llama.py's graphs: (name, preset, dtype, batch, seq, layouts). The
# weights are filled on the GPU machine from a seeded Hugging Face init;
# f32 is checked against onnxruntime, bf16 against torch in bfloat16.
LLAMA = [
    ("tiny_f32", "tiny", "f32", 2, 16, ["1gpu"] + MULTI),
    ("tiny_bf16", "tiny", "bf16", 2, 16, ["1gpu"] + MULTI),
    ("llama1b_f32", "1b", "f32", 2, 64, ["1gpu"]),
    ("llama1b_bf16", "1b", "bf16", 2, 64, ["1gpu"] + MULTI),
]
SEED = 1234  # fill_weights.py's seed for every make_llama.py model

# Deliberately wrong graphs (make_llama.py --mutate, the mutations of
# test/e2e/mutate.py) of the bf16 models: (base model, preset, batch, seq,
# layouts). Each mutant reads its base's weights and is checked against
# the base's torch reference; it must FAIL the bf16 rule (gpu_test.py), and
# passing it is a FAIL line.
MUTATIONS = ["no-rotary", "attn-scale", "norm-weight", "transpose",
             "mask-ahead"]
MUTANT_BASES = [
    ("tiny_bf16", "tiny", 2, 16, ["1gpu", "tp2"]),
    ("llama1b_bf16", "1b", 2, 64, ["1gpu"]),
]


def mutant_models():
    """(mutant model name, base model, preset, mutation) of every mutant."""
    return [(f"{base}-{m}", base, preset, m)
            for base, preset, *_ in MUTANT_BASES for m in MUTATIONS]

# bench/prefill.py's weft artifacts: bf16, prompt 512.
BENCH_MODELS = {"1b": "llama1b_bf16", "8b": "llama8b_bf16"}
BENCH_PRESET = {"llama1b_bf16": "1b", "llama8b_bf16": "8b"}
BENCH_BATCHES = [1, 8]
BENCH_SEQ = 512
BENCH_TP = [1, 2, 4]

# `weft compile --generate` artifacts (1 GPU, bf16): the tiny model checked
# against transformers by generate_check.py (small buckets, so that prompts
# are packed, one is chunked and the decode batch is padded), and the
# benchmark shapes timed by bench/decode.py. (model, preset, max_seq,
# prompt buckets, batch buckets).
GEN_TEST = [("tiny_bf16", "tiny", 256, [32, 128], [1, 4, 8])]
GEN_BENCH_MAX_SEQ = 4096
GEN_BENCH = [(model, BENCH_PRESET[model], GEN_BENCH_MAX_SEQ,
              [128, 512, 2048], [1, 8, 32])
             for model in BENCH_MODELS.values()]
GEN_BLOCK_SIZE = 16
# The serving artifacts bench/serve_gpu.py times with weft-serve: prompts of
# 512 packed up to 4 to a prefill, decode batches up to 256; 264 prefill rows
# so that a mixed step (`--schedule mixed`) carries all 256 running
# sequences' next tokens beside prompt chunks.
GEN_SERVE_PREFILL_ROWS = 264
GEN_SERVE = [(model, BENCH_PRESET[model], 2048, [512, 2048],
              [1, 8, 32, 64, 128, 256])
             for model in BENCH_MODELS.values()]


def case_name(model, layout, batch=None, seq=None):
    return f"{model}.{layout}" + (f".b{batch}s{seq}" if batch else "")


def model_dir(model, root=DIST):
    return os.path.join(root, "models", model)


def artifact_dir(case, root=DIST):
    return os.path.join(root, "artifacts", case + ".weft")


def inputs_path(model, batch, seq, root=DIST):
    return os.path.join(root, "inputs", f"{model}.b{batch}s{seq}.npz")


def codegen_check_dir(root=DIST):
    """The generated ELEMENTWISE kernels' cases (weft-codegen-gpu-check's
    output) that test/gpu/run_codegen_kernels.py runs."""
    return os.path.join(root, "codegen-check")


def weights_model(case):
    """The model whose weights and inputs a case uses: a mutant's base, or
    the case's own."""
    return case.get("base", case["model"])


def test_cases():
    """Every test case: dicts with name, model, kind (small|llama), dtype,
    preset, batch, seq, layout, tp, pp, reference (ort|torch); a mutant's
    also mutation and base."""
    out = []
    for model in SMALL:
        for layout in ["1gpu"] + (MULTI if model in SMALL_MULTI else []):
            out.append(dict(model=model, kind="small", dtype="f32",
                            preset=None, batch=SMALL_DIMS[0],
                            seq=SMALL_DIMS[1], layout=layout))
    for model, preset, dtype, batch, seq, layouts in LLAMA:
        for layout in layouts:
            out.append(dict(model=model, kind="llama", dtype=dtype,
                            preset=preset, batch=batch, seq=seq,
                            layout=layout))
    for base, preset, batch, seq, layouts in MUTANT_BASES:
        for m in MUTATIONS:
            for layout in layouts:
                out.append(dict(model=f"{base}-{m}", kind="llama",
                                dtype="bf16", preset=preset, batch=batch,
                                seq=seq, layout=layout, mutation=m,
                                base=base))
    for c in out:
        c["tp"], c["pp"] = LAYOUTS[c["layout"]]
        c["name"] = case_name(c["model"], c["layout"])
        c["reference"] = "ort" if c["dtype"] == "f32" else "torch"
    return out


def bench_cases():
    """Every benchmark artifact: dicts with name, model, preset, dtype,
    batch, seq, tp. The models are bf16 graphs compiled with --dtype bf16
    (prepare.py), as the bf16 test cases are."""
    out = []
    for size, model in BENCH_MODELS.items():
        for batch in BENCH_BATCHES:
            for tp in BENCH_TP:
                layout = "1gpu" if tp == 1 else f"tp{tp}"
                out.append(dict(model=model, preset=size, dtype="bf16",
                                batch=batch, seq=BENCH_SEQ, tp=tp,
                                layout=layout,
                                name=case_name(model, layout, batch,
                                               BENCH_SEQ)))
    return out


def generation_cases(bench=False, bench_max_seq=None):
    """The --generate artifacts: GEN_TEST's, or with `bench` GEN_BENCH's
    (at bench_max_seq tokens if given). Dicts with name, model, preset,
    dtype, max_seq, prompt_buckets, batch_buckets, block_size, tp, pp."""
    out = []
    for model, preset, max_seq, prompts, batches in \
            (GEN_BENCH if bench else GEN_TEST):
        if bench and bench_max_seq:
            max_seq = bench_max_seq
            prompts = [p for p in prompts if p <= max_seq]
        out.append(dict(name=f"{model}.generate", model=model, preset=preset,
                        dtype="bf16", max_seq=max_seq,
                        prompt_buckets=prompts, batch_buckets=batches,
                        block_size=GEN_BLOCK_SIZE, tp=1, pp=1,
                        kind="generate"))
    return out


def serve_cases():
    """The `MODEL.serve` artifacts of GEN_SERVE, as generation_cases'."""
    return [dict(name=f"{model}.serve", model=model, preset=preset,
                 dtype="bf16", max_seq=max_seq, prompt_buckets=prompts,
                 batch_buckets=batches, block_size=GEN_BLOCK_SIZE, tp=1, pp=1,
                 prefill_rows=GEN_SERVE_PREFILL_ROWS, kind="generate")
            for model, preset, max_seq, prompts, batches in GEN_SERVE]


def full_node_cases():
    """(test cases, benchmark cases) of FULL_NODE_LAYOUTS: the same
    artifacts serve both (named as benchmark cases)."""
    model, preset = FULL_NODE_MODEL
    tests, bench = [], []
    for layout, (tp, pp) in FULL_NODE_LAYOUTS.items():
        for batch in BENCH_BATCHES:
            base = dict(model=model, preset=preset, dtype="bf16", batch=batch,
                        seq=BENCH_SEQ, tp=tp, pp=pp, layout=layout,
                        topology=FULL_NODE_TOPOLOGY,
                        name=case_name(model, layout, batch, BENCH_SEQ))
            tests.append(dict(base, kind="llama", reference="torch"))
            bench.append(dict(base))
    return tests, bench


def write_index(path, index):
    with open(path + ".tmp", "w") as f:
        json.dump(index, f, indent=1, sort_keys=True)
    os.replace(path + ".tmp", path)


def read_index(root=DIST):
    """dist/gpu/cases.json, as prepare.py wrote it."""
    path = os.path.join(root, "cases.json")
    if not os.path.isfile(path):
        raise SystemExit(f"{path}: missing; run scripts/gpu-prepare on the "
                         "build machine and carry dist/gpu")
    with open(path) as f:
        return json.load(f)


def setup_gpu_env():
    """The GPU machine's environment for weft-run: NCCL's NVLink SHARP off
    (see docs), and the CUDA libraries findable wherever the loader's
    configuration does not list them."""
    os.environ.setdefault("NCCL_NVLS_ENABLE", "0")
    lib = "/usr/local/cuda/lib64"
    paths = [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p]
    if os.path.isdir(lib) and lib not in paths:
        os.environ["LD_LIBRARY_PATH"] = ":".join(paths + [lib])
