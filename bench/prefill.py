#!/usr/bin/env python3
"""Prefill latency of Llama-shaped models (bf16, random weights, no KV
cache, logits of every position) on the GPU machine: Hugging Face
transformers eager, torch.compile (mode default and reduce-overhead) and
weft (dist/gpu/bin/weft-run on the CUDA backend, 1 GPU and tensor parallel
2 and 4), against the card's measured roofline. Run from the repository
root after scripts/gpu-prepare and scripts/gpu-bundle (on the build
machine) and carrying dist/gpu:

  python3 bench/prefill.py [--models 1b,8b] [--batches 1,8]
      [--systems eager,compile,compile-ro,weft] [--tp 1,2,4] [--full-node]
      [--iters 20] [--warmup 5]

--full-node adds weft's 8-GPU layouts of the 8b model (tp 8, tp 4 x pp 2,
tp 2 x pp 4), compiled by `scripts/gpu-prepare --full-node`; each is
skipped where the machine has fewer GPUs.

The card's bf16 matmul rate (8192^3) and HBM copy bandwidth are measured
first, in the same run. A case's roofline floor is the larger of its
FLOPs over the matmul rate and its bytes (weights once, plus the bf16
logits written) over the bandwidth, divided by the GPU count for runs on
several GPUs; `of floor` is floor / measured. FLOPs: 2 per weight per
token for every projection and the LM head, plus causal attention's
2 * batch * seq^2 * hidden per layer. Prints a markdown table for
docs/perf.md and writes $OUT/prefill.json when $OUT is set.

torch.compile runs with dynamic=False, so each batch size compiles on its
own (reported as `compile s`); the 8b model's compiles take minutes: choose
models, batches and systems by flag to fit a call. weft's timing comes
from `weft-run ... --bench-iters N --bench-warmup W`, which prints
`weft-bench: median_ms=M iters=N` (CUDA events around whole runs).
"""
import argparse
import datetime
import gc
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts", "gpu"))
import cases as C  # noqa: E402

# --- weft's timing command (flags may change: edit them here) ----------------
WEFT_BENCH = (os.path.join(C.DIST, "bin", "weft-run") +
              " {artifact} --backend cuda --inputs {inputs} --outputs {outputs}"
              " --model-dir {model_dir} --bench-iters {iters}"
              " --bench-warmup {warmup}")
WEFT_NPROC = " --nproc {nproc}"
WEFT_LINE = re.compile(r"weft-bench:.*?median_ms=([0-9.eE+-]+)")
WEFT_TIMEOUT = 600
# -------------------------------------------------------------------------------

SYSTEMS = ["eager", "compile", "compile-ro", "weft"]


def csv(kind, choices=None):
    def parse(text):
        items = [kind(x) for x in text.split(",") if x]
        if not items:
            raise argparse.ArgumentTypeError("empty list")
        for x in items:
            if choices and x not in choices:
                raise argparse.ArgumentTypeError(
                    f"'{x}' is not one of {', '.join(map(str, choices))}")
        return items
    return parse


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=csv(str, list(C.BENCH_MODELS)),
                   default=["1b", "8b"])
    p.add_argument("--batches", type=csv(int), default=C.BENCH_BATCHES)
    p.add_argument("--seq", type=int, default=C.BENCH_SEQ)
    p.add_argument("--systems", type=csv(str, SYSTEMS), default=SYSTEMS)
    p.add_argument("--tp", type=csv(int, C.BENCH_TP), default=C.BENCH_TP,
                   help="weft's tensor-parallel degrees")
    p.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"],
                   help="the Hugging Face attention implementation")
    p.add_argument("--full-node", action="store_true",
                   help="also weft's 8-GPU layouts of the 8b model (tp 8, "
                   "tp 4 x pp 2, tp 2 x pp 4; gpu-prepare --full-node)")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    a = p.parse_args(argv)
    if a.iters < 1 or a.warmup < 0:
        p.error("--iters must be >= 1 and --warmup >= 0")
    for b in a.batches:
        if b < 1:
            p.error(f"--batches: {b} is not a positive batch size")
    return a


def model_cost(cfg, batch, seq):
    """(FLOPs, bytes) of one prefill: see the module doc."""
    h, ff, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    layers = cfg["num_hidden_layers"]
    kv = cfg["num_key_value_heads"] * h // cfg["num_attention_heads"]
    per_layer = 2 * h * h + 2 * h * kv + 3 * h * ff
    proj = layers * per_layer + h * v
    weights = proj + v * h + (2 * layers + 1) * h  # + embedding and norms
    tokens = batch * seq
    flops = 2 * tokens * proj + layers * 2 * batch * seq * seq * h
    nbytes = 2 * weights + 2 * tokens * v
    return flops, nbytes


def cuda_median_ms(fn, iters, warmup):
    """Median of `iters` timed calls (CUDA events), after `warmup`."""
    import torch
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def measure_card(iters):
    """bf16 matmul TFLOP/s at 8192^3 and HBM copy bandwidth (bytes read +
    written per second) over 2 GiB."""
    import torch

    def matmul_ms(n):
        a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
        return cuda_median_ms(lambda: torch.matmul(a, b), iters, 5)

    def copy_ms(nbytes):
        src = torch.empty(nbytes, dtype=torch.uint8, device="cuda")
        dst = torch.empty_like(src)
        return cuda_median_ms(lambda: dst.copy_(src), iters, 3)

    n, nbytes = 8192, 2 << 30
    tflops = 2 * n ** 3 / (matmul_ms(n) * 1e-3) / 1e12
    bw = 2 * nbytes / (copy_ms(nbytes) * 1e-3)
    torch.cuda.empty_cache()
    return tflops, bw


def torch_runs(model, cfg, batches, seq, systems, iters, warmup, log):
    """Times the torch systems of one model; returns result dicts."""
    import torch
    out = []
    variants = {"eager": lambda m: m,
                "compile": lambda m: torch.compile(m, dynamic=False),
                "compile-ro": lambda m: torch.compile(
                    m, mode="reduce-overhead", dynamic=False)}
    for system in [s for s in SYSTEMS if s in systems and s in variants]:
        for batch in batches:
            torch._dynamo.reset()
            fn = variants[system](model)
            ids = torch.randint(0, cfg["vocab_size"], (batch, seq),
                                device="cuda")

            def step():
                with torch.no_grad():
                    return fn(input_ids=ids, use_cache=False).logits
            t0 = time.time()
            try:
                step()
                torch.cuda.synchronize()
                first = time.time() - t0
                ms = cuda_median_ms(step, iters, warmup)
            except Exception as e:  # reported, the others still run
                log(f"FAIL torch {system} batch {batch}: "
                    f"{type(e).__name__}: {e}")
                continue
            out.append(dict(system=f"torch {system}", batch=batch, gpus=1,
                            ms=ms, compile_s=first if system != "eager"
                            else None))
            log(f"torch {system:10s} batch {batch}: {ms:.3f} ms"
                + (f" (first call {first:.1f} s)" if system != "eager"
                   else ""))
    return out


def weft_runs(name, cases, batches, tps, iters, warmup, gpus, log,
              full_node=False):
    """weft's runs of `name`: the tensor-parallel degrees `tps`, and with
    `full_node` the 8-GPU layouts (cases.FULL_NODE_LAYOUTS) as well."""
    out = []
    for case in cases:
        pp = case.get("pp", 1)
        full = case["layout"] in C.FULL_NODE_LAYOUTS
        wanted = full_node if full else pp == 1 and case["tp"] in tps
        if case["model"] != name or case["batch"] not in batches or \
                not wanted:
            continue
        ranks = case["tp"] * pp
        system = "weft" if pp == 1 else f"weft tp{case['tp']}xpp{pp}"
        label = f"{system} tp{case['tp']} batch {case['batch']}"
        if ranks > gpus:
            log(f"SKIP {label}: needs {ranks} GPUs, {gpus} present")
            continue
        if case.get("compile_error"):
            log(f"FAIL {label}: did not compile: {case['compile_error']}")
            continue
        cmd = WEFT_BENCH.format(
            artifact=C.artifact_dir(case["name"]),
            inputs=C.inputs_path(case["model"], case["batch"], case["seq"]),
            outputs=os.path.join("/tmp", case["name"] + ".npz"),
            model_dir=C.model_dir(case["model"]), iters=iters, warmup=warmup)
        if ranks > 1:
            cmd += WEFT_NPROC.format(nproc=ranks)
        try:
            r = subprocess.run(shlex.split(cmd), capture_output=True,
                               text=True, timeout=WEFT_TIMEOUT)
        except subprocess.TimeoutExpired:
            log(f"FAIL {label}: timed out after {WEFT_TIMEOUT} s: {cmd}")
            continue
        m = WEFT_LINE.search(r.stdout + r.stderr)
        if r.returncode or not m:
            tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
            log(f"FAIL {label}: exit {r.returncode}"
                f"{'' if m else ', no weft-bench line'}: {cmd}\n    "
                + "\n    ".join(tail))
            continue
        ms = float(m.group(1))
        out.append(dict(system=system, batch=case["batch"], gpus=ranks,
                        ms=ms, compile_s=None, command=cmd))
        log(f"{label}: {ms:.3f} ms")
    return out


def main(argv=None):
    a = parse_args(argv)
    C.setup_gpu_env()
    import torch
    sys.path.insert(0, os.path.join(ROOT, "scripts", "gpu"))
    import fill_weights
    lines = []

    def log(line):
        print(line, flush=True)
        lines.append(line)

    index = C.read_index()
    gpus = torch.cuda.device_count()
    if not gpus:
        raise SystemExit("bench/prefill.py: torch sees no CUDA device")
    card = torch.cuda.get_device_name(0)
    command = "python3 bench/prefill.py " + " ".join(
        shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
    tflops, bw = measure_card(a.iters)
    log(f"{gpus} x {card}, torch {torch.__version__}, HF attention "
        f"{a.attn}: bf16 matmul 8192^3 "
        f"{tflops:.0f} TFLOP/s, HBM copy {bw / 1e12:.2f} TB/s")
    results = []
    for size in a.models:
        name = C.BENCH_MODELS[size]
        path = os.path.join(C.model_dir(name), "model.onnx")
        if not os.path.exists(path):
            log(f"FAIL {size}: {path} missing (gpu-prepare without --no-bench)")
            continue
        t0 = time.time()
        model = fill_weights.fill(path, C.SEED, "cuda", quiet=True,
                                  attn=a.attn)
        cfg = {k: getattr(model.config, k) for k in (
            "hidden_size", "intermediate_size", "vocab_size",
            "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads")}
        log(f"{size}: weights filled in {time.time() - t0:.1f} s")
        model = model.to(torch.bfloat16)
        runs = torch_runs(model, cfg, a.batches, a.seq, a.systems, a.iters,
                          a.warmup, log)
        del model
        gc.collect()
        torch._dynamo.reset()
        torch.cuda.empty_cache()
        if "weft" in a.systems:
            runs += weft_runs(name, index.get("bench", []), a.batches, a.tp,
                              a.iters, a.warmup, gpus, log, a.full_node)
        for r in runs:
            flops, nbytes = model_cost(cfg, r["batch"], a.seq)
            floor = max(flops / (tflops * 1e12), nbytes / bw) * 1e3 / r["gpus"]
            r.update(model=size, seq=a.seq, floor_ms=floor,
                     fraction=floor / r["ms"],
                     tokens_per_s=r["batch"] * a.seq / (r["ms"] * 1e-3))
        results += runs
    date = datetime.date.today().isoformat()
    log("")
    log(f"Measured {date} on {gpus} x {card} (bf16 matmul {tflops:.0f} "
        f"TFLOP/s, HBM copy {bw / 1e12:.2f} TB/s), `{command}`:")
    log("")
    log("| date | card | model | batch x prompt | system | GPUs | median ms "
        "| tokens/s | roofline floor ms | of floor | compile s |")
    log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        comp = f"{r['compile_s']:.0f}" if r["compile_s"] else ""
        log(f"| {date} | {card} | {r['model']} | {r['batch']} x {r['seq']} | "
            f"{r['system']} | {r['gpus']} | {r['ms']:.2f} | "
            f"{r['tokens_per_s']:.0f} | {r['floor_ms']:.2f} | "
            f"{r['fraction']:.0%} | {comp} |")
    out = os.environ.get("OUT")
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "prefill.json"), "w") as f:
            json.dump(dict(date=date, card=card, gpus=gpus, command=command,
                           matmul_tflops=tflops, hbm_bytes_per_s=bw,
                           results=results), f, indent=1)
        with open(os.path.join(out, "prefill.md"), "w") as f:
            f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
