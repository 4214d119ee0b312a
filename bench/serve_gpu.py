#!/usr/bin/env python3
"""Serving throughput and latency of Llama-shaped models (bf16, random
weights) on the GPU machine: `weft serve` (the standalone weft-serve, CUDA
backend) under bench/serve.py's request stream, against transformers'
continuous batching (`generate_batch`), the serving peer available there.
Run from the repository root after scripts/gpu-prepare and
scripts/gpu-bundle on the build machine, carrying dist/gpu:

  python3 bench/serve_gpu.py [--models 1b,8b] [--peer-models 1b]
      [--num-prompts 256] [--input-len 512] [--output-len 128]
      [--rates 16,64,inf] [--moderate-rate 16] [--deterministic-models 1b]
      [--kv-cache-gib 40] [--max-num-seqs 256] [--schedules alternate,mixed]
      [--tp 1,2,4] [--dp 1,2,4] [--out-name serve_gpu]

For each model: the weights are filled (scripts/gpu/fill_weights.py, the
seed bench/decode.py uses), then
  weft: dist/gpu/bin/weft-serve ARTIFACT --backend cuda (the artifact
  `MODEL.serve`: max_seq 2048, prompt buckets 512 and 2048, batch buckets
  1..256) and bench/serve.py --prompt-ids --ignore-eos with --num-prompts
  requests of --input-len random token ids and --output-len new tokens:
  the ladder over --rates (after its smoke step of 4 prompts), whose last
  step (inf: every request at once) gives the saturation throughput, and
  the --moderate-rate step's TTFT and ITL p50/p99; the ladder and the
  moderate step once for each of --schedules (a server started with
  --schedule S each time, on the same artifact: 264 prefill rows, so that
  a mixed step carries 256 running sequences). With
  --deterministic-models, the moderate run again against a server started
  with --deterministic (which alternates), for what batch invariance costs.
  peer: LlamaForCausalLM (the same weights, SDPA attention) with
  generate_batch(inputs, GenerationConfig(max_new_tokens=N, do_sample=False,
  eos_token_id=-1)) on the same number of prompts of the same length
  (random ids of the same seed): output tokens / wall time of the call,
  after one untimed warm-up call of 8 prompts. generate_batch is offline
  (every request at once), so it compares with weft's inf step.

Several GPUs: --tp 1,2,4 serves the model's artifact at each
tensor-parallel degree (`MODEL.serve`, `MODEL.tpN.serve`: scripts/gpu-prepare
--multi-gpu compiles the 8b's at tp 2 and 4), ranks as threads, rank r on
GPU r; --dp 1,2,4 serves each of them as that many data-parallel replicas
of one process (`weft serve --dp N`, docs/serving.md: replica d's rank r
on GPU d x tp + r, a KV cache and a scheduler each, a request routed to
the replica with the fewest sequences), every (tp, dp) in the same run,
those needing more GPUs than present SKIPped. --kv-cache-gib and
--max-num-seqs are per rank and per replica, as weft serve takes them.
Each layout's saturation throughput (the ladder's last step) is then set
against the one-GPU server's (tp 1, one replica) of the same schedule in
a line of its own. The peer runs once per model; --deterministic only at
tp 1 with one replica.

Prints a markdown table for docs/perf.md and writes $OUT/NAME.json and
$OUT/NAME.md when $OUT is set (NAME: --out-name, default serve_gpu); the
JSON also after each layout, marked `partial`, for a run cut short.
"""
import argparse
import datetime
import gc
import json
import os
import shlex
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts", "gpu"))
import cases as C  # noqa: E402
import generate_check as G  # noqa: E402

WEFT_SERVE = os.path.join(C.DIST, "bin", "weft-serve")
BENCH = os.path.join(ROOT, "bench", "serve.py")
PROMPT_SEED = 5


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sizes = lambda s: [x for x in s.split(",") if x]  # noqa: E731
    p.add_argument("--models", type=sizes, default=["1b", "8b"])
    p.add_argument("--peer-models", type=sizes, default=["1b"])
    p.add_argument("--deterministic-models", type=sizes, default=["1b"])
    p.add_argument("--num-prompts", type=int, default=256)
    p.add_argument("--input-len", type=int, default=512)
    p.add_argument("--output-len", type=int, default=128)
    p.add_argument("--rates", default="16,64,inf")
    p.add_argument("--moderate-rate", default="16")
    p.add_argument("--kv-cache-gib", type=float, default=40)
    p.add_argument("--max-num-seqs", type=int, default=256)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--schedules", type=sizes, default=["alternate"])
    p.add_argument("--tp", type=sizes, default=["1"],
                   help="tensor-parallel degrees of the served artifacts")
    p.add_argument("--dp", type=sizes, default=["1"],
                   help="data-parallel replicas of each (weft serve --dp)")
    p.add_argument("--out-name", default="serve_gpu",
                   help="$OUT/NAME.json and $OUT/NAME.md")
    a = p.parse_args(argv)
    for flag in ("tp", "dp"):
        try:
            values = [int(x) for x in getattr(a, flag)]
        except ValueError:
            values = [0]
        if any(v < 1 for v in values) or len(set(values)) != len(values):
            p.error(f"--{flag} {','.join(getattr(a, flag))}: positive "
                    "numbers, each once")
        setattr(a, flag, values)
    for s in a.schedules:
        if s not in ("prefill-first", "alternate", "mixed"):
            p.error(f"unknown schedule '{s}' (known: prefill-first, "
                    "alternate, mixed)")
    for s in a.models + a.peer_models:
        if s not in C.BENCH_MODELS:
            p.error(f"unknown model '{s}' (known: {', '.join(C.BENCH_MODELS)})")
    return a


class WeftServer(G.Server):
    """weft-serve of one benchmark artifact, on a free port; `url` is what
    bench/serve.py drives."""

    def __init__(self, artifact, model_dir, a, extra=()):
        super().__init__(shlex.join(
            [WEFT_SERVE, artifact, "--backend", "cuda", "--port", "0",
             "--model-dir", model_dir, "--served-model-name", "m",
             "--kv-cache-gib", str(a.kv_cache_gib),
             "--max-num-seqs", str(a.max_num_seqs),
             "--max-queue", "100000", *extra]), start_timeout=600)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self, log_path=None):
        super().stop(wait=120)
        if log_path:  # its output (WEFT_CUDA_PROFILE's tables among it)
            with open(log_path, "w") as f:
                f.write(self.output())


def bench(url, a, vocab, out_json, *flags):
    argv = [sys.executable, BENCH, "--base-url", url, "--prompt-ids",
            "--vocab-size", str(vocab), "--input-len", str(a.input_len),
            "--output-len", str(a.output_len), "--ignore-eos",
            "--num-prompts", str(a.num_prompts), "--seed", str(PROMPT_SEED),
            "--timeout", str(a.timeout), "--json", out_json, *flags]
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("bench/serve.py failed: " + r.stdout[-1500:] +
                           r.stderr[-1500:])
    with open(out_json) as f:
        return json.load(f), " ".join(shlex.quote(x) for x in argv[1:])


def peer_run(model, a, vocab, log):
    import torch
    from transformers import GenerationConfig
    g = torch.Generator().manual_seed(PROMPT_SEED)
    prompts = torch.randint(0, vocab, (a.num_prompts, a.input_len),
                            generator=g).tolist()
    cfg = GenerationConfig(max_new_tokens=a.output_len, do_sample=False,
                           eos_token_id=-1, pad_token_id=0)
    model.generate_batch(inputs=prompts[:8], generation_config=cfg,
                         progress_bar=False)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = model.generate_batch(inputs=prompts, generation_config=cfg,
                               progress_bar=False)
    torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    tokens = sum(len(o.generated_tokens) for o in out.values())
    log(f"peer: {len(out)} requests, {tokens} tokens in {wall:.1f} s")
    return dict(requests=len(out), output_tokens=tokens, wall_s=wall,
                output_throughput=tokens / wall)


def summary_row(s):
    pct = lambda m, q: s[m].get(q)  # noqa: E731
    return dict(rate=s["request_rate"], concurrency=s.get("max_concurrency"),
                completed=s["completed"],
                failed=s["failed"], output_throughput=s["output_throughput"],
                request_throughput=s["request_throughput"],
                ttft_p50=pct("ttft_ms", "p50"), ttft_p99=pct("ttft_ms", "p99"),
                itl_p50=pct("itl_ms", "p50"), itl_p99=pct("itl_ms", "p99"),
                tpot_p50=pct("tpot_ms", "p50"))


def layout_label(tp, dp):
    """How a layout reads in the log and the table: '' for one GPU."""
    return (f" tp {tp}" if tp > 1 else "") + (f" dp {dp}" if dp > 1 else "")


def weft_runs(artifact, name, size, schedule, a, vocab, scratch, log,
              extra=(), tag=""):
    """The ladder and the moderate step against one weft-serve started with
    --schedule SCHEDULE (and `extra` flags); returns their summaries and
    commands."""
    runs = {}
    srv = WeftServer(artifact, C.model_dir(name), a,
                     ["--schedule", schedule, *extra])
    log(f"{size}{tag}: {srv.cmd}")
    try:
        ladder, cmd = bench(srv.url, a, vocab, os.path.join(
            scratch, f"ladder_{size}{tag.replace(' ', '_')}_{schedule}"
            ".json"), "--ladder",
            "--ladder-rates", a.rates, "--saturation-gain", "0")
        runs["ladder"] = [summary_row(st["summary"]) for st in ladder["steps"]]
        runs["ladder_command"] = cmd
        for row in runs["ladder"]:
            log(f"{size}{tag} weft {schedule} rate {row['rate']}: "
                f"{row['output_throughput']:.0f} tok/s, TTFT p50 "
                f"{row['ttft_p50']} p99 {row['ttft_p99']} ms, ITL p50 "
                f"{row['itl_p50']} p99 {row['itl_p99']} ms, failed "
                f"{row['failed']}")
        moderate, cmd = bench(srv.url, a, vocab, os.path.join(
            scratch, f"moderate_{size}{tag.replace(' ', '_')}_{schedule}"
            ".json"), "--request-rate",
            a.moderate_rate)
        runs["moderate"] = summary_row(moderate["summary"])
        runs["moderate_command"] = cmd
    finally:
        srv.stop(os.path.join(scratch, f"server_{size}"
                              f"{tag.replace(' ', '_')}_{schedule}.log"))
    return runs


def saturation_lines(results, schedules):
    """Each layout's saturation throughput (its ladder's last step) against
    the one-GPU server's (tp 1, one replica) of the same model and
    schedule: one line each."""
    out = []
    for schedule in schedules:
        base = {e["model"]: e[schedule]["ladder"][-1]["output_throughput"]
                for e in results if (e.get("tp", 1), e.get("dp", 1)) ==
                (1, 1) and e.get(schedule, {}).get("ladder")}
        for e in results:
            tp, dp = e.get("tp", 1), e.get("dp", 1)
            ladder = e.get(schedule, {}).get("ladder")
            if (tp, dp) == (1, 1) or not ladder:
                continue
            got = ladder[-1]["output_throughput"]
            line = (f"{e['model']} weft {schedule}{layout_label(tp, dp)} at "
                    f"saturation: {got:.0f} output tok/s on {tp * dp} GPUs")
            if e["model"] in base:
                line += (f", {got / base[e['model']]:.2f}x the one-GPU "
                         f"server's {base[e['model']]:.0f}")
            out.append(line)
    return out


def main(argv=None):
    a = parse_args(argv)
    C.setup_gpu_env()
    import torch
    import transformers
    import fill_weights
    out_dir = os.environ.get("OUT")
    lines, results = [], []

    def log(line):
        print(line, flush=True)
        lines.append(line)

    card = torch.cuda.get_device_name(0)
    gpus = torch.cuda.device_count()
    command = "python3 bench/serve_gpu.py " + " ".join(
        shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
    log(f"{card}, torch {torch.__version__}, transformers "
        f"{transformers.__version__}")
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    scratch = out_dir or "/tmp"
    for size in a.models:
        name = C.BENCH_MODELS[size]
        path = os.path.join(C.model_dir(name), "model.onnx")
        t0 = time.time()
        model = fill_weights.fill(path, C.SEED, "cuda", quiet=True,
                                  attn="sdpa")
        vocab = model.config.vocab_size
        log(f"{size}: weights filled in {time.time() - t0:.1f} s")
        peer = None
        if size in a.peer_models:
            try:
                model = model.to(torch.bfloat16).eval()
                peer = peer_run(model, a, vocab, log)
            except Exception as e:  # noqa: BLE001
                log(f"FAIL peer {size}: {type(e).__name__}: {e}")
        del model
        gc.collect()
        torch.cuda.empty_cache()
        for tp in a.tp:
            artifact = C.artifact_dir(C.gen_name(name, C.layout_name(tp),
                                                 "serve"))
            for dp in a.dp:
                tag = layout_label(tp, dp)
                if tp * dp > gpus:
                    log(f"SKIP weft {size}{tag}: needs {tp * dp} GPUs, "
                        f"{gpus} present")
                    continue
                entry = dict(model=size, tp=tp, dp=dp)
                if peer and not any(e["model"] == size and "peer" in e
                                    for e in results):
                    entry["peer"] = peer
                if not os.path.isdir(artifact):
                    log(f"FAIL weft {size}{tag}: {artifact} is missing "
                        "(scripts/gpu-prepare --multi-gpu makes the tp "
                        "artifacts)")
                else:
                    replicas = ["--dp", str(dp)] if dp > 1 else []
                    try:
                        for schedule in a.schedules:
                            entry[schedule] = weft_runs(
                                artifact, name, size, schedule, a, vocab,
                                scratch, log, replicas, tag)
                        if size in a.deterministic_models and \
                                (tp, dp) == (1, 1):
                            srv = WeftServer(artifact, C.model_dir(name), a,
                                             ["--deterministic"])
                            try:
                                det, _ = bench(srv.url, a, vocab,
                                               os.path.join(
                                                   scratch,
                                                   f"det_{size}.json"),
                                               "--request-rate",
                                               a.moderate_rate)
                                entry["deterministic"] = summary_row(
                                    det["summary"])
                            finally:
                                srv.stop()
                    except Exception as e:  # noqa: BLE001
                        log(f"FAIL weft {size}{tag}: {type(e).__name__}: "
                            f"{e}")
                results.append(entry)
                log(json.dumps(entry))
                if out_dir:  # so far, should a later layout not finish
                    with open(os.path.join(out_dir, f"{a.out_name}.json"),
                              "w") as fh:
                        json.dump(dict(command=command, card=card, gpus=gpus,
                                       results=results, log=lines,
                                       partial=True), fh, indent=1)
    date = datetime.date.today().isoformat()
    md = [f"`{command}` ({date}, {card})", "",
          "| model | system | load | output tok/s | TTFT p50 / p99 ms | "
          "ITL p50 / p99 ms |", "|---|---|---|---|---|---|"]
    f = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731

    def md_row(model, system, load, row):
        md.append(f"| {model} | {system} | {load} | "
                  f"{row['output_throughput']:.0f} | {f(row['ttft_p50'])} / "
                  f"{f(row['ttft_p99'])} | {f(row['itl_p50'])} / "
                  f"{f(row['itl_p99'])} |")

    for e in results:
        for schedule in a.schedules:
            runs = e.get(schedule, {})
            system = f"weft {schedule}" + layout_label(e.get("tp", 1),
                                                       e.get("dp", 1))
            for row in runs.get("ladder", []):
                md_row(e["model"], system,
                       f"{row['completed']} prompts, {row['concurrency']} at "
                       f"a time" if row.get("concurrency") else
                       f"rate {row['rate']}", row)
            if "moderate" in runs:
                md_row(e["model"], system, f"rate {runs['moderate']['rate']}",
                       runs["moderate"])
        if "deterministic" in e:
            md_row(e["model"], "weft alternate --deterministic",
                   f"rate {e['deterministic']['rate']}", e["deterministic"])
        if "peer" in e:
            md.append(f"| {e['model']} | transformers generate_batch | "
                      f"offline | {e['peer']['output_throughput']:.0f} | - | "
                      f"- |")
    scaling = saturation_lines(results, a.schedules)
    if scaling:
        md += [""] + scaling
    log("\n".join(md))
    if out_dir:
        with open(os.path.join(out_dir, f"{a.out_name}.json"), "w") as fh:
            json.dump(dict(command=command, date=date, card=card, gpus=gpus,
                           results=results, log=lines), fh, indent=1)
        with open(os.path.join(out_dir, f"{a.out_name}.md"), "w") as fh:
            fh.write("\n".join(md) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
