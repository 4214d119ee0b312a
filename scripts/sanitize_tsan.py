#!/usr/bin/env python3
"""The ThreadSanitizer runs of scripts/sanitize tsan: weft's multi-rank
thread runtime built with -fsanitize=thread (--bin) on artifacts that the
main build's weft compiles (--weft), each run's outputs checked against the
main build's own run of the same artifact:

  - weft-run, a 4-rank tensor-parallel forward pass, ranks as threads;
  - weft-generate, a 2-rank generation of 4 prompts, batched;
  - weft-serve, 2 ranks answering 24 concurrent completions (12 streamed),
    then a SIGTERM shutdown; again with two replicas of them (--dp 2) and
    mixed steps (--schedule mixed); and the two replicas as four processes
    (--nproc 4: rank 0's process runs both schedulers, one over the link
    to the other replica's rank 0).

Prints a `tsan:` line per run; exits 1 when a run fails or differs.
ThreadSanitizer's reports go to stderr (scripts/sanitize reads them).
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    sys.stderr.write(r.stderr)
    if r.returncode != 0:
        sys.exit("tsan: FAILED (exit %d): %s\n%s" %
                 (r.returncode, " ".join(cmd), r.stdout + r.stderr))
    return r.stdout


def forward(args, work):
    model = os.path.join(work, "tiny")
    art = os.path.join(work, "tp4.weft")
    run([args.weft, "compile", os.path.join(model, "model.onnx"), "--dim",
         "batch=2", "--dim", "seq=16", "--tp", "4", "--topology", "h100x4",
         "--target", "cpu",
         "--quiet", "-o", art])
    ids = np.random.default_rng(0).integers(0, 256, (2, 16), dtype=np.int64)
    inputs = os.path.join(work, "ids.npz")
    np.savez(inputs, input_ids=ids)
    outs = {}
    for name, exe in (("tsan", os.path.join(args.bin, "weft-run")),
                      ("main", args.weft)):
        out = os.path.join(work, "out-%s.npz" % name)
        cmd = [exe] + ([] if name == "tsan" else ["run"])
        run(cmd + [art, "--inputs", inputs, "--outputs", out, "--threads",
                   "2"])
        with np.load(out) as z:
            outs[name] = {k: z[k] for k in z.files}
    # The TSan build has no BLAS: its GEMMs sum in another order.
    for k, v in outs["main"].items():
        err = float(np.max(np.abs(v - outs["tsan"][k])) / np.max(np.abs(v)))
        if not err <= 1e-5:
            sys.exit("tsan: FAILED: weft-run's output '%s' differs from the "
                     "main build's by %.3g (max|d|/max|ref|)" % (k, err))
    print("tsan: weft-run, 4 ranks as threads: outputs match the main "
          "build's (f32, %s)" % ", ".join(sorted(outs["main"])))


def generation_artifact(args, work):
    art = os.path.join(work, "gen.weft")
    run([args.weft, "compile", os.path.join(work, "tiny", "model.onnx"),
         "--generate", "--max-seq", "64", "--prompt-buckets", "16",
         "--batch-buckets", "1,4", "--tp", "2", "--topology", "h100x4",
         "--target", "cpu", "--quiet",
         "-o", art])
    return art


def generate(args, art):
    prompts = ["1,2,3,4", "5,6,7", "8,9,10,11,12", "13"]
    got = {}
    for name, exe in (("tsan", os.path.join(args.bin, "weft-generate")),
                      ("main", args.weft)):
        cmd = [exe] + ([] if name == "tsan" else ["generate"]) + [art]
        texts = []
        for p in prompts:
            out = run(cmd + ["--prompt-ids", p, "--max-tokens", "12",
                             "--temperature", "0.8", "--seed", "7", "--json"])
            texts.append(json.loads(out)["ids"])
        got[name] = texts
    if got["tsan"] != got["main"]:
        sys.exit("tsan: FAILED: weft-generate's tokens differ from the main "
                 "build's")
    print("tsan: weft-generate, 2 ranks: %d prompts, tokens equal the main "
          "build's" % len(prompts))


def serve(args, art, extra=("--max-num-seqs", "8"), label="2 ranks"):
    proc = subprocess.Popen(
        [os.path.join(args.bin, "weft-serve"), art, "--port", "0"] +
        list(extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    port, ready = [None], threading.Event()
    errors = []

    def pump_out():
        for line in proc.stdout:
            m = re.search(r"listening on http://[^:]+:(\d+)", line)
            if m:
                port[0] = int(m.group(1))
            if "ready" in line:
                ready.set()
        ready.set()

    def pump_err():
        for line in proc.stderr:
            errors.append(line)
            sys.stderr.write(line)

    threading.Thread(target=pump_out, daemon=True).start()
    err_thread = threading.Thread(target=pump_err, daemon=True)
    err_thread.start()
    if not ready.wait(300) or port[0] is None:
        proc.kill()
        sys.exit("tsan: FAILED: weft-serve did not start:\n" + "".join(errors))
    base = "http://127.0.0.1:%d/v1" % port[0]
    with urllib.request.urlopen(base + "/models", timeout=60) as r:
        model = json.load(r)["data"][0]["id"]
    url = base + "/completions"
    results, failures = [], []

    def request(i):
        body = {"model": model, "prompt": [1 + i % 50, 2, 3, 4 + i % 7],
                "max_tokens": 10, "temperature": 0.7, "seed": i,
                "stream": i % 2 == 0}
        req = urllib.request.Request(url, json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=300) as r:
                results.append(r.read())
        except Exception as e:  # noqa: BLE001 (reported below)
            failures.append("request %d: %s" % (i, e))

    threads = [threading.Thread(target=request, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()
        sys.exit("tsan: FAILED: weft-serve did not stop on SIGTERM")
    err_thread.join(10)
    if failures:
        sys.exit("tsan: FAILED: " + "; ".join(failures))
    if code != 0:
        sys.exit("tsan: FAILED: weft-serve exited %d:\n%s" %
                 (code, "".join(errors)))
    print("tsan: weft-serve, %s: %d concurrent requests answered, then "
          "a clean SIGTERM shutdown" % (label, len(results)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weft", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    run([sys.executable, os.path.join(ROOT, "test/models/make_llama.py"),
         "--preset", "tiny", "--vocab", "256", "-o",
         os.path.join(args.work, "tiny"), "--write-weights"])
    forward(args, args.work)
    art = generation_artifact(args, args.work)
    generate(args, art)
    serve(args, art)
    # Two replicas of the 2 ranks (4 rank threads, 2 scheduler threads
    # sharing the server), their steps mixing decodes and prompt chunks.
    serve(args, art, ["--max-num-seqs", "4", "--dp", "2", "--schedule",
                      "mixed"], "2 replicas (--dp 2) of 2 ranks, mixed steps")
    # The same replicas as 4 processes: rank 0's process runs both
    # schedulers, replica 1's over its link to rank 2.
    serve(args, art, ["--max-num-seqs", "4", "--dp", "2", "--nproc", "4"],
          "2 replicas (--dp 2) of 2 ranks as 4 processes (--nproc 4)")


if __name__ == "__main__":
    main()
