"""The GPU test and benchmark cases, shared by scripts/gpu/prepare.py (which
compiles them on the build machine) and scripts/gpu/gpu_test.py,
scripts/gpu/generate_check.py, scripts/gpu/fault_check.py,
bench/prefill.py, bench/decode.py and bench/serve_gpu.py (which run them
on the GPU machine). Plain Python: nothing here needs onnx, torch or weft.

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

# Several GPUs of one node (`gpu-prepare --multi-gpu`): the tiny generation
# artifact at every multi-GPU layout, for generate_check.py (against
# transformers and the 1-GPU artifact, ranks as threads and as processes,
# `weft generate` and `weft serve`) and fault_check.py (a rank killed
# mid-decode); the 8b's benchmark and serving artifacts at tp 2 and tp 4
# for bench/decode.py --tp and bench/serve_gpu.py --tp; and the planner's
# decode predictions for those (`weft plan`, run by prepare.py here, where
# weft has the compiler) at PLANNER_BATCHES x PLANNER_PROMPT prompt tokens
# + PLANNER_GEN new, on one node's topology of each GPU type. The scripts
# skip what needs more GPUs than present.
GEN_MULTI_LAYOUTS = MULTI
GEN_MULTI_MODEL = "llama8b_bf16"
GEN_MULTI_TP = [2, 4]
PLANNER_TOPOLOGIES = {"H100": "h100x4", "H200": "h200x4"}
PLANNER_BATCHES = [1, 8]
PLANNER_PROMPT = 128
PLANNER_GEN = 128


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


def gen_name(model, layout="1gpu", purpose="generate"):
    """A generation artifact's case name: MODEL.generate or MODEL.serve on
    one GPU, MODEL.LAYOUT.generate (.serve) at another layout."""
    return f"{model}.{purpose}" if layout == "1gpu" else \
        f"{model}.{layout}.{purpose}"


def layout_name(tp, pp=1):
    """The LAYOUTS name of tp x pp."""
    for name, degrees in LAYOUTS.items():
        if degrees == (tp, pp):
            return name
    raise KeyError(f"no layout of tp {tp} x pp {pp}")


def _gen_case(model, preset, layout, purpose, max_seq, prompts, batches):
    tp, pp = LAYOUTS[layout]
    return dict(name=gen_name(model, layout, purpose), model=model,
                preset=preset, dtype="bf16", max_seq=max_seq,
                prompt_buckets=prompts, batch_buckets=batches,
                block_size=GEN_BLOCK_SIZE, tp=tp, pp=pp, layout=layout,
                kind="generate")


def generation_cases(bench=False, bench_max_seq=None, layouts=("1gpu",),
                     models=None):
    """The --generate artifacts: GEN_TEST's, or with `bench` GEN_BENCH's
    (at bench_max_seq tokens if given), at each of `layouts` (of the
    `models` named, default all). Dicts with name, model, preset, dtype,
    max_seq, prompt_buckets, batch_buckets, block_size, tp, pp, layout."""
    out = []
    for model, preset, max_seq, prompts, batches in \
            (GEN_BENCH if bench else GEN_TEST):
        if models is not None and model not in models:
            continue
        if bench and bench_max_seq:
            max_seq = bench_max_seq
            prompts = [p for p in prompts if p <= max_seq]
        for layout in layouts:
            out.append(_gen_case(model, preset, layout, "generate", max_seq,
                                 prompts, batches))
    return out


def serve_cases(layouts=("1gpu",), models=None):
    """The `MODEL.serve` artifacts of GEN_SERVE (MODEL.LAYOUT.serve at
    another layout), as generation_cases'."""
    out = []
    for model, preset, max_seq, prompts, batches in GEN_SERVE:
        if models is not None and model not in models:
            continue
        for layout in layouts:
            out.append(dict(_gen_case(model, preset, layout, "serve",
                                      max_seq, prompts, batches),
                            prefill_rows=GEN_SERVE_PREFILL_ROWS))
    return out


def multi_gpu_cases(bench_max_seq=None):
    """`gpu-prepare --multi-gpu`'s generation artifacts, by cases.json key:
    `generation`: the tiny model at GEN_MULTI_LAYOUTS; `generation_bench`
    and `generation_serve`: GEN_MULTI_MODEL at tp 1 (the baseline, also
    without the other benchmark artifacts) and each of GEN_MULTI_TP."""
    layouts = ["1gpu"] + [layout_name(tp) for tp in GEN_MULTI_TP]
    return {"generation": generation_cases(layouts=GEN_MULTI_LAYOUTS),
            "generation_bench": generation_cases(
                bench=True, bench_max_seq=bench_max_seq, layouts=layouts,
                models=[GEN_MULTI_MODEL]),
            "generation_serve": serve_cases(layouts=layouts,
                                            models=[GEN_MULTI_MODEL])}


def find_generation(cases, model, tp, pp=1):
    """The case of `cases` (a cases.json list) for `model` at tp x pp, or
    None."""
    for c in cases:
        if c["model"] == model and c.get("tp", 1) == tp and \
                c.get("pp", 1) == pp:
            return c
    return None


def planner_topology(card):
    """The topology whose calibration predicts for GPU `card` (its name as
    torch gives it)."""
    return PLANNER_TOPOLOGIES["H200" if "H200" in card.upper() else "H100"]


def planner_prediction(index, topology, model, tp, batch, prompt, gen):
    """cases.json's `planner_decode` entry for these, or None."""
    for p in index.get("planner_decode", []):
        if (p["topology"], p["model"], p["tp"], p["batch"], p["prompt"],
                p["gen"]) == (topology, model, tp, batch, prompt, gen):
            return p
    return None


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
