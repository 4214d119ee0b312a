#!/usr/bin/env python3
"""Generation speed of Llama-shaped models (bf16, random weights) on the
GPU machine: `weft generate` on the CUDA backend against Hugging Face
transformers with a static KV cache and torch.compile(mode=
"reduce-overhead") (the gpt-fast recipe), against the card's measured HBM
roofline. Run from the repository root after scripts/gpu-prepare (without
--no-bench) and scripts/gpu-bundle on the build machine, carrying dist/gpu:

  python3 bench/decode.py [--models 1b,8b] [--systems weft,peer]
      [--prompts 128,512,2048] [--batches 1,8,32] [--new-tokens 128]
      [--peer-prompts 128] [--peer-batches 1] [--peer-iters 3]
      [--peer-warmup 2] [--weft dist/gpu/bin/weft] [--kv-cache-gib X]
      [--weft-variant NAME:VAR=V,...] [--peer-compile generate|forward]
      [--tp 1,2,4] [--nproc]

The card's HBM copy bandwidth (bytes read + written per second of a 2 GiB
device-to-device copy) is measured first, in the same run. A run is B
sequences of P prompt tokens (seeded random ids, the same for both
systems) and N new tokens each (--new-tokens, greedy, EOS ignored): batch
1 at every --prompts length (time to first token by prompt length), and
every --batches size at the first --prompts length. ms/token is the mean
time per output token after the first; decode tokens/s = B x 1000 /
ms/token. The roofline floor of one decode step at batch B is (weight
bytes + B x KV bytes read at the mean context P + N/2) / bandwidth: every
parameter but the embedding table (one row of it is read) in bf16, and
per context token 2 (K and V) x layers x kv heads x head dim x 2 bytes;
`of floor` = floor / ms per token.

weft: one warm-up run, then one `weft generate ARTIFACT --backend cuda
--prompt-ids IDS --max-tokens N --ignore-eos --json` per run (B > 1:
--prompt-file with B {"prompt_ids": [...]} lines), each a new process;
ttft and ms/token are its ttft_ms and ms_per_token (means over the
prompts). A prefill bucket's first run in a process is its first launch
(captured into a CUDA graph from the second), so weft's ttft is a cold
prefill of that bucket. A failed run (missing binary, non-zero exit, no
JSON) prints FAIL with its command; the other numbers still come.

--tp 1,2,4 runs weft's runs once per tensor-parallel artifact of each
model (`MODEL.generate`, `MODEL.tpN.generate`: scripts/gpu-prepare
--multi-gpu compiles the 8b's at tp 2 and 4), ranks as threads (rank r on
GPU r; with --nproc as processes), in the same run; a tp needing more GPUs
than present is SKIPped. The table then has a tp column and `vs tp 1`,
tp 1's ms/token over this one's (the decode speed-up; the targets: tp 2
at least TP_TARGETS[2] and tp 4 at least TP_TARGETS[4] times tp 1 at
batch 1, a line each says whether they are met). A tp N run's floor is
the one-GPU floor / N: each GPU reads its share of the weights and the
KV cache (the all-reduces left out). Where cases.json holds the
planner's predictions (`planner_decode`, made by gpu-prepare
--multi-gpu with `weft plan ... --tp N --json` for the card's GPU type),
a second table sets weft's ms/token beside them, as docs/planner.md's
decode tables.

--weft-variant NAME:VAR=V,... runs weft again under those environment
variables (e.g. WEFT_GEMV=0 WEFT_GROUP_STEPS=0: every projection through
cuBLASLt, each step its own launch), as system `weft (NAME)`, in the same
run.

peer: LlamaForCausalLM (same weights, SDPA attention) with
generation_config.cache_implementation = "static", compiled with
mode="reduce-overhead", fullgraph=True: by generate() itself
(generation_config.compile_config, the default --peer-compile generate:
transformers compiles the decode step, not the prefill) or with
--peer-compile forward by wrapping model.forward here (fullgraph=False if
that fails), generate(max_new_tokens=N, min_new_tokens=N, greedy) after
--peer-warmup untimed calls (the first compiles: `compile s`); ttft is the
time to the first new token (a streamer's put), ms/token = (total - ttft)
/ (N - 1), medians of --peer-iters calls, at batch 1 x each --peer-prompts
length and each --peer-batches size x the first. Every new batch size or
prompt length sizes a new static cache and compiles again (a minute for
the 8b): choose them by flag to fit a call.

Prints a markdown table for docs/perf.md and writes $OUT/decode.json and
$OUT/decode.md when $OUT is set.
"""
import argparse
import datetime
import gc
import json
import os
import re
import shlex
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts", "gpu"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import cases as C  # noqa: E402
import generate_check  # noqa: E402
from prefill import csv, cuda_median_ms  # noqa: E402

# --- weft's command (flags may change: edit them here) -----------------------
WEFT_GENERATE = ("{weft} {artifact} --backend cuda --model-dir "
                 "{model_dir} --max-tokens {tokens} --ignore-eos --json")
WEFT_IDS = " --prompt-ids {ids}"
WEFT_FILE = " --prompt-file {path}"
WEFT_KV = " --kv-cache-gib {gib}"
WEFT_NPROC = " --nproc {nproc}"
WARMUP_TOKENS = 8
# -----------------------------------------------------------------------------
SYSTEMS = ["weft", "peer"]
PEER = "torch compile-ro static"
PROMPT_SEED = 5
TP_TARGETS = {2: 1.6, 4: 2.4}  # decode speed-up over tp 1 at batch 1


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=csv(str, list(C.BENCH_MODELS)),
                   default=["1b", "8b"])
    p.add_argument("--systems", type=csv(str, SYSTEMS), default=SYSTEMS)
    p.add_argument("--prompts", type=csv(int), default=[128, 512, 2048],
                   help="prompt lengths at batch 1; the first is the "
                   "batches' prompt")
    p.add_argument("--batches", type=csv(int), default=[1, 8, 32])
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--peer-prompts", type=csv(int), default=[128],
                   help="the peer's prompt lengths at batch 1")
    p.add_argument("--peer-batches", type=csv(int), default=[1],
                   help="the peer's batch sizes at the first --prompts")
    p.add_argument("--peer-iters", type=int, default=3)
    p.add_argument("--peer-warmup", type=int, default=2)
    p.add_argument("--weft",
                   default=os.path.join(C.DIST, "bin", "weft-generate"),
                   help="the generate command: weft-generate (default "
                   "DIST/bin/weft-generate), or 'PATH/weft generate'")
    p.add_argument("--kv-cache-gib", type=float,
                   help="weft's KV cache per rank (default: weft's)")
    p.add_argument("--weft-variant", action="append", default=[],
                   metavar="NAME:VAR=V[,VAR=V...]",
                   help="run weft again with these environment variables, "
                   "as system 'weft (NAME)' (repeatable; e.g. "
                   "cublaslt:WEFT_GEMV=0,WEFT_GROUP_STEPS=0)")
    p.add_argument("--tp", type=csv(int), default=[1],
                   help="tensor-parallel degrees of weft's artifacts, each "
                   "run in turn (e.g. 1,2,4)")
    p.add_argument("--nproc", action="store_true",
                   help="run the ranks of a tp artifact as processes "
                   "(weft generate --nproc N), not as threads")
    p.add_argument("--peer-compile", choices=["generate", "forward"],
                   default="generate",
                   help="generate: transformers compiles its decode step "
                   "itself (generation_config.compile_config, mode "
                   "reduce-overhead); forward: model.forward wrapped in "
                   "torch.compile(mode='reduce-overhead') here")
    a = p.parse_args(argv)
    variants = []
    for v in a.weft_variant:
        name, _, env = v.partition(":")
        pairs = [x for x in env.split(",") if x]
        if not name or not all("=" in x and not x.startswith("=")
                               for x in pairs):
            p.error(f"--weft-variant {v!r}: expected NAME:VAR=V[,VAR=V...]")
        variants.append((name, pairs))
    a.weft_variants = variants
    if a.new_tokens < 2:
        p.error("--new-tokens must be >= 2 (ms/token is after the first)")
    if a.peer_iters < 1 or a.peer_warmup < 1:
        p.error("--peer-iters and --peer-warmup must be >= 1 (the first "
                "call compiles)")
    for n in a.prompts + a.batches + a.peer_prompts + a.peer_batches:
        if n < 1:
            p.error(f"{n}: prompt lengths and batch sizes must be positive")
    if any(n < 1 for n in a.tp) or len(set(a.tp)) != len(a.tp):
        p.error(f"--tp {','.join(map(str, a.tp))}: positive degrees, each "
                "once")
    return a


def runs_of(prompts, batches, first_prompt):
    """(batch, prompt) pairs: batch 1 at each prompt, each batch at
    first_prompt; in that order, no repeats."""
    out = [(1, p) for p in prompts] + [(b, first_prompt) for b in batches]
    return sorted(set(out), key=out.index)


def decode_cost(cfg):
    """(bytes of the weights one decode step reads, KV-cache bytes per
    context token), bf16: every parameter but the embedding table."""
    h, ff, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    layers = cfg["num_hidden_layers"]
    head_dim = h // cfg["num_attention_heads"]
    kv = cfg["num_key_value_heads"] * head_dim
    per_layer = 2 * h * h + 2 * h * kv + 3 * h * ff + 2 * h
    weights = 2 * (layers * per_layer + h * v + h)
    return weights, 2 * layers * kv * 2


def floor_ms(cfg, batch, prompt, new_tokens, bandwidth):
    """The roofline floor of one decode step (module doc)."""
    weights, kv = decode_cost(cfg)
    context = prompt + new_tokens / 2
    return (weights + batch * kv * context) / bandwidth * 1e3


def measure_bandwidth(iters=20):
    """HBM copy bandwidth: bytes read + written per second, 2 GiB."""
    import torch
    nbytes = 2 << 30
    src = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms = cuda_median_ms(lambda: dst.copy_(src), iters, 3)
    del src, dst
    torch.cuda.empty_cache()
    return 2 * nbytes / (ms * 1e-3)


def prompt_ids(batch, prompt, vocab):
    """Seeded random prompts: batch lists of prompt ids."""
    import numpy as np
    rng = np.random.default_rng(PROMPT_SEED * 100003 + batch * 4099 + prompt)
    return rng.integers(0, min(vocab, 32000), (batch, prompt)).tolist()


def weft_runs(size, case, runs, new_tokens, vocab, a, log, variant=None):
    """weft's runs of one model: result dicts (FAIL/SKIP lines for the
    others). `variant`: (name, ["VAR=V", ...]) run under `env`."""
    system = "weft" + (f" ({variant[0]})" if variant else "")
    tp = case.get("tp", 1) if case else 1
    where = size + (f" tp {tp}" if tp > 1 else "")
    if case is None:
        log(f"FAIL weft {size}: no generation artifact in cases.json "
            "(scripts/gpu-prepare without --no-bench)")
        return []
    if case.get("compile_error"):
        log(f"FAIL weft {where}: did not compile: {case['compile_error']}")
        return []
    if not os.access(a.weft, os.X_OK):
        log(f"FAIL weft {size}: {a.weft} is missing or not executable (the "
            "runtime bundle must hold weft with its generate command)")
        return []
    prefix = ("env " + " ".join(shlex.quote(x) for x in variant[1]) + " "
              if variant and variant[1] else "")
    base = prefix + WEFT_GENERATE.format(weft=a.weft,
                                artifact=C.artifact_dir(case["name"]),
                                model_dir=C.model_dir(case["model"]),
                                tokens=new_tokens)
    if a.kv_cache_gib:
        base += WEFT_KV.format(gib=a.kv_cache_gib)
    if tp > 1 and getattr(a, "nproc", False):
        base += WEFT_NPROC.format(nproc=tp)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        def command(batch, prompt, tokens=None):
            """(the command, the same with its ids left out for show)."""
            cmd = base if tokens is None else base.replace(
                f"--max-tokens {new_tokens}", f"--max-tokens {tokens}")
            ids = prompt_ids(batch, prompt, vocab)
            if batch == 1:
                shown = cmd + WEFT_IDS.format(ids=f"<{prompt} ids>")
                return cmd + WEFT_IDS.format(
                    ids=",".join(map(str, ids[0]))), shown
            path = os.path.join(tmp, f"b{batch}p{prompt}.jsonl")
            with open(path, "w") as f:
                for row in ids:
                    f.write(json.dumps({"prompt_ids": row}) + "\n")
            shown = cmd + WEFT_FILE.format(
                path=f"<{batch} x {prompt} ids>.jsonl")
            return cmd + WEFT_FILE.format(path=path), shown

        cmd, shown = command(1, runs[0][1], WARMUP_TOKENS)
        t0 = time.time()
        _, err = generate_check.run_weft(cmd, 1)
        if err:
            log(f"FAIL {system} {where} warm-up: "
                f"{err.replace(cmd, shown)}")
            return []
        log(f"{system} {where} warm-up: {time.time() - t0:.1f} s")
        for batch, prompt in runs:
            label = f"{system} {where} {batch} x {prompt}"
            if prompt + new_tokens > case["max_seq"]:
                log(f"SKIP {label}: {prompt} + {new_tokens} tokens exceed "
                    f"the artifact's max_seq {case['max_seq']}")
                continue
            cmd, shown = command(batch, prompt)
            t0 = time.time()
            objs, err = generate_check.run_weft(cmd, batch)
            if err:
                log(f"FAIL {label}: {err.replace(cmd, shown)}")
                continue
            lengths = {len(o["ids"]) for o in objs}
            try:
                ttft = statistics.mean(o["ttft_ms"] for o in objs)
                mpt = statistics.mean(o["ms_per_token"] for o in objs)
            except (KeyError, TypeError) as e:
                log(f"FAIL {label}: no ttft_ms/ms_per_token ({e}): {shown}")
                continue
            if lengths != {new_tokens}:
                log(f"FAIL {label}: {sorted(lengths)} tokens generated, "
                    f"not {new_tokens}: {shown}")
                continue
            out.append(dict(system=system, batch=batch, prompt=prompt,
                            ttft_ms=ttft, ms_per_token=mpt, compile_s=None,
                            command=shown, tp=tp))
            log(f"{label}: ttft {ttft:.2f} ms, {mpt:.3f} ms/token "
                f"({time.time() - t0:.1f} s wall)")
    return out


def streamer_class():
    """A transformers streamer that notes the time of each put(): the
    prompt first, then each new token."""
    try:
        from transformers.generation.streamers import BaseStreamer
    except ImportError:
        BaseStreamer = object

    class Times(BaseStreamer):
        def __init__(self):
            self.times = []

        def put(self, value):
            self.times.append(time.perf_counter())

        def end(self):
            pass
    return Times


def peer_generate(model, ids, new_tokens, times_class):
    """One timed generate: (ttft ms, total ms)."""
    import torch
    timer = times_class()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                         max_new_tokens=new_tokens,
                         min_new_tokens=new_tokens, do_sample=False,
                         streamer=timer)
    torch.cuda.synchronize()
    total = time.perf_counter() - t0
    if out.shape[1] != ids.shape[1] + new_tokens:
        raise RuntimeError(f"generated {out.shape[1] - ids.shape[1]} tokens, "
                           f"not {new_tokens}")
    if len(timer.times) < new_tokens:
        raise RuntimeError(f"the streamer saw {len(timer.times)} puts for "
                           f"{new_tokens} tokens")
    first = timer.times[len(timer.times) - new_tokens]  # after the prompt's
    return (first - t0) * 1e3, total * 1e3


def peer_runs(size, model, runs, new_tokens, vocab, a, log):
    """The peer's runs of one model (module doc): result dicts."""
    import torch
    times_class = streamer_class()
    config = model.generation_config
    config.cache_implementation = "static"
    if config.pad_token_id is None:
        config.pad_token_id = config.eos_token_id
    forward = model.forward
    fullgraph = True
    if a.peer_compile == "forward":
        # generate() would compile the model's __call__ too (transformers
        # >= 4.47 with a static cache): the forward compiled here is the
        # one.
        config.disable_compile = True
        model.forward = torch.compile(forward, mode="reduce-overhead",
                                      fullgraph=True)
    else:
        from transformers import CompileConfig
        config.disable_compile = False
        config.compile_config = CompileConfig(fullgraph=True,
                                              mode="reduce-overhead")
    out = []
    for batch, prompt in runs:
        label = f"{PEER} {size} {batch} x {prompt}"
        ids = torch.tensor(prompt_ids(batch, prompt, vocab),
                           device=model.device)
        try:
            t0 = time.time()
            try:
                peer_generate(model, ids, new_tokens, times_class)
            except Exception as e:
                if not fullgraph or a.peer_compile != "forward":
                    raise
                log(f"{label}: fullgraph compile failed "
                    f"({type(e).__name__}: {str(e).splitlines()[0][:200]}); "
                    "compiling with fullgraph=False")
                torch._dynamo.reset()
                fullgraph = False
                model.forward = torch.compile(forward, mode="reduce-overhead",
                                              fullgraph=False)
                t0 = time.time()
                peer_generate(model, ids, new_tokens, times_class)
            compile_s = time.time() - t0
            for _ in range(a.peer_warmup - 1):
                peer_generate(model, ids, new_tokens, times_class)
            timed = [peer_generate(model, ids, new_tokens, times_class)
                     for _ in range(a.peer_iters)]
        except Exception as e:  # reported, the other runs still go
            log(f"FAIL {label}: {type(e).__name__}: "
                f"{str(e).splitlines()[0][:300] if str(e) else ''}")
            continue
        ttft = statistics.median(t for t, _ in timed)
        mpt = statistics.median((total - t) / (new_tokens - 1)
                                for t, total in timed)
        out.append(dict(system=PEER + ("" if fullgraph else " (no fullgraph)")
                        + (" (generate)" if a.peer_compile == "generate"
                           else ""),
                        batch=batch, prompt=prompt, ttft_ms=ttft,
                        ms_per_token=mpt, compile_s=compile_s, command=None,
                        tp=1))
        log(f"{label}: ttft {ttft:.2f} ms, {mpt:.3f} ms/token (first call "
            f"{compile_s:.1f} s)")
    model.forward = forward
    return out


def add_speedups(results):
    """Each result's `speedup`: the tp 1 run's ms/token (same model,
    system, batch and prompt) over its own; None without that run."""
    base = {(r["model"], r["system"], r["batch"], r["prompt"]):
            r["ms_per_token"] for r in results if r.get("tp", 1) == 1}
    for r in results:
        ms = base.get((r["model"], r["system"], r["batch"], r["prompt"]))
        r["speedup"] = ms / r["ms_per_token"] if ms else None


def target_lines(results, batch, prompt):
    """Whether each TP_TARGETS speed-up is met at `batch` x `prompt`."""
    out = []
    for r in results:
        need = TP_TARGETS.get(r.get("tp", 1))
        if need is None or r["system"] != "weft" or r["batch"] != batch \
                or r["prompt"] != prompt:
            continue
        if r["speedup"] is None:
            out.append(f"{r['model']} tp {r['tp']} at {batch} x {prompt}: "
                       "no tp 1 run to compare with")
            continue
        out.append(f"{r['model']} tp {r['tp']} at {batch} x {prompt}: "
                   f"{r['speedup']:.2f}x tp 1's decode speed (target "
                   f"{need}x: {'met' if r['speedup'] >= need else 'NOT met'})")
    return out


def planner_rows(index, results, card, new_tokens):
    """weft's runs beside the planner's prediction for the same model, tp,
    batch and prompt (cases.json `planner_decode`, the card's topology)."""
    rows = []
    topology = C.planner_topology(card)
    for r in results:
        if r["system"] != "weft":
            continue
        p = C.planner_prediction(index, topology,
                                 C.BENCH_MODELS[r["model"]], r.get("tp", 1),
                                 r["batch"], r["prompt"], new_tokens)
        if p:
            rows.append(dict(model=r["model"], tp=r.get("tp", 1),
                             batch=r["batch"], prompt=r["prompt"],
                             gen=new_tokens, topology=topology,
                             predicted_ms=p["decode_ms"],
                             measured_ms=r["ms_per_token"],
                             error=p["decode_ms"] / r["ms_per_token"] - 1,
                             command=p["command"]))
    return rows


def main(argv=None):
    a = parse_args(argv)
    C.setup_gpu_env()
    import torch
    import transformers
    import fill_weights
    lines = []

    def log(line):
        print(line, flush=True)
        lines.append(line)

    index = C.read_index()
    gpus = torch.cuda.device_count()
    if not gpus:
        raise SystemExit("bench/decode.py: torch sees no CUDA device")
    card = torch.cuda.get_device_name(0)
    command = "python3 bench/decode.py " + " ".join(
        shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
    bw = measure_bandwidth()
    log(f"{gpus} x {card}, torch {torch.__version__}, transformers "
        f"{transformers.__version__}: HBM copy {bw / 1e9:.0f} GB/s")
    generation = index.get("generation_bench", [])
    weft_plan = runs_of(a.prompts, a.batches, a.prompts[0])
    peer_plan = runs_of(a.peer_prompts, a.peer_batches, a.prompts[0])
    results = []
    for size in a.models:
        name = C.BENCH_MODELS[size]
        path = os.path.join(C.model_dir(name), "model.onnx")
        if not os.path.exists(path):
            log(f"FAIL {size}: {path} missing (gpu-prepare without "
                "--no-bench)")
            continue
        t0 = time.time()
        try:
            model = fill_weights.fill(path, C.SEED, "cuda", quiet=True,
                                      attn="sdpa")
        except Exception as e:
            log(f"FAIL {size}: filling the weights: {type(e).__name__}: {e}")
            continue
        cfg = {k: getattr(model.config, k) for k in (
            "hidden_size", "intermediate_size", "vocab_size",
            "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads")}
        log(f"{size}: weights filled in {time.time() - t0:.1f} s")
        runs = []
        if "peer" in a.systems:
            model = model.to(torch.bfloat16).eval()
            runs += peer_runs(size, model, peer_plan, a.new_tokens,
                              cfg["vocab_size"], a, log)
        del model
        gc.collect()
        torch._dynamo.reset()
        torch.cuda.empty_cache()
        for tp in a.tp if "weft" in a.systems else []:
            case = C.find_generation(generation, name, tp)
            if tp > gpus:
                log(f"SKIP weft {size} tp {tp}: needs {tp} GPUs, {gpus} "
                    "present")
                continue
            if case is None and tp > 1:
                log(f"FAIL weft {size} tp {tp}: no tp {tp} generation "
                    "artifact in cases.json (scripts/gpu-prepare "
                    "--multi-gpu)")
                continue
            runs += weft_runs(size, case, weft_plan, a.new_tokens,
                              cfg["vocab_size"], a, log)
            for variant in a.weft_variants:
                runs += weft_runs(size, case, weft_plan, a.new_tokens,
                                  cfg["vocab_size"], a, log, variant)
        for r in runs:
            # tp ranks each read their share of the weights and KV cache.
            floor = floor_ms(cfg, r["batch"], r["prompt"], a.new_tokens,
                             bw) / r.get("tp", 1)
            r.update(model=size, new_tokens=a.new_tokens, floor_ms=floor,
                     fraction=floor / r["ms_per_token"],
                     tokens_per_s=r["batch"] * 1e3 / r["ms_per_token"])
        results += runs
    add_speedups(results)
    by_tp = a.tp != [1]
    date = datetime.date.today().isoformat()
    log("")
    log(f"Measured {date} on {gpus} x {card} (HBM copy {bw / 1e9:.0f} GB/s; "
        f"torch {torch.__version__}, transformers "
        f"{transformers.__version__}), `{command}`:")
    log("")
    # With --tp: a tp column after the system, the speed-up last.
    log("| date | card | model | system | " + ("tp | " if by_tp else "") +
        "batch x prompt | new tokens | ttft ms | ms/token | decode tokens/s "
        "| floor ms/token | of floor | compile s |"
        + (" vs tp 1 |" if by_tp else ""))
    log("| --- " * (12 + 2 * by_tp) + "|")
    for r in results:
        comp = f"{r['compile_s']:.0f}" if r["compile_s"] else ""
        speedup = f"{r['speedup']:.2f}x" if r["speedup"] else ""
        log(f"| {date} | {card} | {r['model']} | {r['system']} | "
            + (f"{r['tp']} | " if by_tp else "") +
            f"{r['batch']} x {r['prompt']} | {r['new_tokens']} | "
            f"{r['ttft_ms']:.1f} | {r['ms_per_token']:.2f} | "
            f"{r['tokens_per_s']:.0f} | {r['floor_ms']:.2f} | "
            f"{r['fraction']:.0%} | {comp} |"
            + (f" {speedup} |" if by_tp else ""))
    targets = target_lines(results, 1, a.prompts[0]) if by_tp else []
    if targets:
        log("")
        for line in targets:
            log(line)
    planner = planner_rows(index, results, card, a.new_tokens)
    if planner:
        log("")
        command = re.sub(r"--tp \d+", "--tp T", re.sub(
            r"--batch \d+", "--batch B", planner[0]["command"]))
        log(f"The planner's decode predictions (`{command}`, B and T those "
            "of each row) against weft:")
        log("")
        log("| date | card | model | tp | batch x prompt + gen | predicted "
            "decode (ms/token) | measured (ms/token) | error |")
        log("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for row in planner:
            log(f"| {date} | {card} | llama-{row['model']} (bf16) | "
                f"{row['tp']} | {row['batch']} x {row['prompt']} + "
                f"{row['gen']} | {row['predicted_ms']:.2f} | "
                f"{row['measured_ms']:.2f} | {row['error']:+.0%} |")
    out = os.environ.get("OUT")
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "decode.json"), "w") as f:
            json.dump(dict(date=date, card=card, gpus=gpus, command=command,
                           torch=torch.__version__,
                           transformers=transformers.__version__,
                           hbm_bytes_per_s=bw, results=results,
                           targets=targets, planner=planner), f, indent=1)
        with open(os.path.join(out, "decode.md"), "w") as f:
            f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
