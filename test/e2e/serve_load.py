#!/usr/bin/env python3
"""Drives bench/serve.py against `weft serve` (see serve-load.test):

  serve_load.py --weft WEFT --artifact DIR --bench bench/serve.py --out DIR
"""
import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def start(args, extra=()):
    proc = subprocess.Popen([args.weft, "serve", args.artifact, "--port", "0",
                             "--max-num-seqs", "64"] + list(extra),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    port, ready, lines = [None], threading.Event(), []

    def pump():
        for line in proc.stdout:
            lines.append(line)
            m = re.search(r"listening on http://[^:]+:(\d+)", line)
            if m:
                port[0] = int(m.group(1))
            if "ready" in line:
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(120) or port[0] is None or proc.poll() is not None:
        fail("weft serve did not start: " + "".join(lines))
    return proc, "http://127.0.0.1:%d" % port[0]


def bench(args, *flags):
    out = subprocess.run([sys.executable, args.bench, "--prompt-ids",
                          "--vocab-size", "256", "--input-len", "8",
                          "--output-len", "8", "--ignore-eos"] + list(flags),
                         capture_output=True, text=True)
    if out.returncode != 0:
        fail("bench/serve.py %s failed: %s%s" % (flags, out.stdout[-2000:],
                                                 out.stderr[-2000:]))
    return out.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weft", required=True)
    ap.add_argument("--artifact", required=True)
    ap.add_argument("--bench", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    a, url_a = start(args)
    b, url_b = start(args, ["--deterministic"])
    try:
        path = os.path.join(args.out, "load.json")
        bench(args, "--base-url", url_a, "--num-prompts", "1000",
              "--max-concurrency", "1000", "--json", path)
        s = json.load(open(path))["summary"]
        if s["completed"] != 1000 or s["failed"] or \
                s["total_output_tokens"] != 8000:
            fail("1000 streams: %s" % s)
        print("ok: 1000 concurrent streams: %d succeeded, peak concurrency %d"
              % (s["completed"], s["peak_concurrency"]))

        path = os.path.join(args.out, "ladder.json")
        bench(args, "--base-url", url_a, "--ladder", "--ladder-rates",
              "50,inf", "--num-prompts", "40", "--json", path)
        d = json.load(open(path))
        steps = [st["summary"] for st in d["steps"]]
        if len(steps) < 3 or steps[0]["num_prompts"] != 4 or \
                any(st["failed"] for st in steps):
            fail("ladder: %s" % json.dumps(d)[:1000])
        print("ok: ladder: smoke step of 4 prompts, then %d rates" %
              (len(steps) - 1))

        path = os.path.join(args.out, "compare.json")
        bench(args, "--compare", url_a, url_b, "--num-prompts", "40",
              "--request-rate", "100", "--json", path)
        d = json.load(open(path))
        runs = [d[k] for k in ("a", "b")] if "a" in d else d.get("runs", [])
        if len(runs) != 2 or any(r["summary"]["completed"] != 40 for r in runs):
            fail("compare: %s" % json.dumps(d)[:1000])
        print("ok: compare: both endpoints answered every request")
    finally:
        for p in (a, b):
            p.send_signal(signal.SIGTERM)
        for p in (a, b):
            if p.wait(60) != 0:
                fail("weft serve exited %d" % p.returncode)


if __name__ == "__main__":
    main()
