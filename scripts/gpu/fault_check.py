#!/usr/bin/env python3
"""A rank that fails mid-decode, on the GPU machine (scripts/gpu-multi runs
it after gpu-prepare --multi-gpu): every rank must stop within the
timeout with an error naming the rank, and `weft serve` must answer 503
and end the requests in flight with an error. The artifacts are the tiny
Llama's of several ranks (cases.json `generation`, tiny_bf16.LAYOUT.generate).

  fault_check.py [--dist dist/gpu] [--weft dist/gpu/bin/weft-generate]
                 [--weft-serve dist/gpu/bin/weft-serve] [--backend cuda|cpu]
                 [--layouts tp2,tp2pp2] [--checks generate,serve,serve-threads]
                 [--timeout 20]

Per layout (SKIPped where it needs more GPUs than torch sees), as
test/e2e/serve_check.py's rank-failure check does on CPU ranks:

- generate: `weft generate --nproc N` of prompts run one at a time
  (--kv-cache-blocks holds one sequence), NEW_TOKENS each, so that nearly
  all of its time is decode steps. A clean run first gives its length and
  the engine's part of it (ttft_ms and ms_per_token of the last prompt;
  more prompts until that part lasts MIN_ENGINE_S); the same command again
  has its last rank killed (SIGKILL) halfway through the engine's part.
  The command must exit non-zero within --timeout (+ SLACK_S) with a
  `error: ... rank K` line, print no result, and leave no rank running.
- serve: `weft serve --nproc N --max-num-seqs 1` with STREAMS streamed
  completions in flight (one decoding, the others queued); once a stream
  has STARTED_TOKENS tokens, the last rank is killed. Every stream must
  end, the decoding one with an error; /health (polled on a kept-alive
  connection) must answer 503; the server must exit non-zero naming the
  rank within --timeout (+ SLACK_S), and leave no rank running.
- serve-threads: the same server with ranks as threads, which no signal
  can kill one by one: the runtime's test hook (WEFT_TEST_FAIL_REPLICA=0
  WEFT_TEST_FAIL_AFTER_STEPS=FAIL_AFTER_STEPS, docs/serving.md) fails rank
  0's step mid-decode; the same checks, the error being that step's.

--backend cpu runs them on CPU ranks (numpy weights, as
generate_check.py --backend cpu). One PASS/FAIL/SKIP line per check, then
`N passed, N failed, N skipped`; exit status 1 if anything failed.
"""
import argparse
import http.client
import json
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import cases as C  # noqa: E402
import generate_check as G  # noqa: E402

# --- the commands (flags may change: edit them here) -------------------------
GENERATE = ("{weft} {artifact} --backend {backend} --model-dir {model_dir} "
            "--prompt-file {prompts} --max-tokens {tokens} --ignore-eos "
            "--json --temperature 0 --kv-cache-blocks {blocks} --nproc "
            "{nproc} --timeout {timeout}")
SERVE = ("{weft_serve} {artifact} --backend {backend} --model-dir "
         "{model_dir} --port 0 --served-model-name m --kv-cache-gib 1 "
         "--max-num-seqs 1 --timeout {timeout}")
NPROC = " --nproc {nproc}"
FAIL_ENV = {"WEFT_TEST_FAIL_REPLICA": "0"}  # + WEFT_TEST_FAIL_AFTER_STEPS
# -----------------------------------------------------------------------------
MODEL = "tiny_bf16"
LAYOUTS = ["tp2", "tp2pp2"]
CHECKS = ["generate", "serve", "serve-threads"]
PROMPT_LEN = 16
NEW_TOKENS = 200
PROMPTS = 8  # the first calibration run's; more if it is too short
MAX_PROMPTS = 4096
MIN_ENGINE_S = 3.0  # seconds of engine time the fault lands in the middle of
STREAMS = 8
STARTED_TOKENS = 3  # a stream's tokens before the kill: it is decoding
FAIL_AFTER_STEPS = 30  # serve-threads: a prefill, then 29 decode steps
SLACK_S = 30  # beyond --timeout, for the processes to be reaped
HEALTH_POLL_S = 0.05
PROMPT_SEED = 3


def processes():
    """pid -> parent pid of every process, from /proc."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        out[int(entry)] = int(stat[stat.rindex(")") + 2:].split()[1])
    return out


def alive(pid):
    """Whether `pid` runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] not in ("Z", "X")


def rank_processes(root):
    """Rank -> pid of every process below `root` whose environment has
    WEFT_RANK (what --nproc gives its ranks)."""
    parents = processes()
    below, todo = set(), [root]
    while todo:
        pid = todo.pop()
        kids = [p for p, pp in parents.items() if pp == pid]
        below.update(kids)
        todo += kids
    ranks = {}
    for pid in below:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0")
                           if b"=" in kv)
        except OSError:
            continue
        if b"WEFT_RANK" in env:
            ranks[int(env[b"WEFT_RANK"])] = pid
    return ranks


def wait_for_ranks(root, world, proc, timeout=60):
    """rank_processes(root) once all `world` ranks run, or None."""
    until = time.time() + timeout
    while time.time() < until and proc.poll() is None:
        ranks = rank_processes(root)
        if sorted(ranks) == list(range(world)):
            return ranks
        time.sleep(0.05)
    return None


def gone(pids, timeout=5.0):
    """The pids still running after `timeout` seconds."""
    until = time.time() + timeout
    while True:
        left = [p for p in pids if alive(p)]
        if not left or time.time() >= until:
            return left
        time.sleep(0.05)


def error_line(text, rank):
    """The first `error:` line naming rank `rank`, or None."""
    for line in text.splitlines():
        if "error:" in line and re.search(rf"\brank {rank}\b", line):
            return line.strip()
    return None


def prompts_file(path, count, vocab):
    import numpy as np
    rng = np.random.default_rng(PROMPT_SEED)
    with open(path, "w") as f:
        for _ in range(count):
            ids = rng.integers(0, vocab, PROMPT_LEN).tolist()
            f.write(json.dumps({"prompt_ids": ids}) + "\n")


def engine_seconds(objs):
    """The engine's time to the last token: the latest ttft_ms (counted
    from the engine's start) plus that prompt's decode."""
    return max(o["ttft_ms"] + o["ms_per_token"] * (len(o["ids"]) - 1)
               for o in objs) / 1e3


def exit_problems(code, opts, after):
    """What is wrong with the exit status `code` (None: still running) of a
    command that must fail within --timeout (+ SLACK_S) of `after`."""
    if code is None:
        return [f"still running {opts.timeout + SLACK_S} s after {after}"]
    return ["exit 0"] if code == 0 else []


def report(log, name, detail, problems, line):
    """A check's PASS (every rank gone, with the error `line`) or FAIL."""
    if problems:
        log.result("FAIL", name, detail + "; " + "; ".join(problems))
    else:
        log.result("PASS", name, f"{detail}, every rank gone; {line}")


def check_generate(case, opts, model_dir, vocab, log):
    """A rank of `weft generate --nproc N` killed mid-decode."""
    world = case["tp"] * case["pp"]
    name = f"fault generate {case['name']} --nproc {world}"
    blocks = math.ceil((PROMPT_LEN + NEW_TOKENS) / case["block_size"])
    # One sequence at a time: room for one, not two (whatever the engine
    # reserves beyond its prompt and new tokens, up to a block less).
    blocks = 2 * blocks - 1
    victim = world - 1
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "prompts.jsonl")
        count, engine, wall = PROMPTS, 0.0, 0.0
        for _ in range(2):
            prompts_file(path, count, vocab)
            cmd = GENERATE.format(
                weft=opts.weft, artifact=C.artifact_dir(case["name"],
                                                         opts.dist),
                backend=opts.backend, model_dir=model_dir, prompts=path,
                tokens=NEW_TOKENS, blocks=blocks, nproc=world,
                timeout=opts.timeout)
            t0 = time.time()
            objs, err = G.run_weft(cmd, count)
            wall = time.time() - t0
            if err:
                log.result("FAIL", name, f"the run without a fault failed: "
                           f"{err}")
                return
            engine = engine_seconds(objs)
            if engine >= MIN_ENGINE_S or count >= MAX_PROMPTS:
                break
            count = min(MAX_PROMPTS, math.ceil(count * 1.2 * MIN_ENGINE_S /
                                               max(engine, 1e-3)))
        start = max(wall - engine, 0.0)  # launch, load, until the engine
        kill_at = start + engine / 2
        log(f"    {cmd}: {count} prompts one at a time, {wall:.1f} s, the "
            f"engine {engine:.1f} s of it")
        # A run faster than the clean one (a machine less loaded) may end
        # before the kill: then again, killing twice as early.
        for attempt in range(3):
            t0 = time.time()
            proc = subprocess.Popen(shlex.split(cmd), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            outs = {}
            readers = [threading.Thread(target=lambda k, s: outs.update(
                {k: s.read()}), args=(k, s), daemon=True)
                for k, s in (("out", proc.stdout), ("err", proc.stderr))]
            for r in readers:
                r.start()
            ranks = wait_for_ranks(proc.pid, world, proc)
            if ranks is None:
                proc.kill()
                log.result("FAIL", name, f"its {world} rank processes were "
                           f"not found (exit {proc.poll()})")
                return
            time.sleep(max(0.0, t0 + kill_at - time.time()))
            killed = time.time()
            try:
                os.kill(ranks[victim], signal.SIGKILL)
                break
            except ProcessLookupError:
                proc.kill()
                proc.wait()
                if attempt == 2:
                    log.result("FAIL", name, f"rank {victim} had ended "
                               f"before the kill, {killed - t0:.1f} s in, "
                               f"three times")
                    return
                kill_at = start + (kill_at - start) / 2
                log(f"    rank {victim} had ended before the kill, "
                    f"{killed - t0:.1f} s in: again, killing at "
                    f"{kill_at:.1f} s")
        try:
            code = proc.wait(opts.timeout + SLACK_S)
        except subprocess.TimeoutExpired:
            code = None
            proc.kill()
        took = time.time() - killed
        for r in readers:
            r.join(10)
        left = gone(ranks.values())
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        line = error_line(outs.get("err", ""), victim)
        printed = [x for x in outs.get("out", "").splitlines()
                   if x.startswith("{")]
        problems = exit_problems(code, opts, "the kill")
        if line is None:
            problems.append(f"no error line naming rank {victim}: "
                            + " | ".join(outs.get("err", "").strip()
                                         .splitlines()[-3:]))
        if printed:
            problems.append(f"{len(printed)} results printed")
        if left:
            problems.append(f"ranks still running: {left}")
        detail = (f"rank {victim} of {world} killed {killed - t0:.1f} s in "
                  f"(the clean run: {wall:.1f} s, its engine from "
                  f"{start:.1f} s): exit {code} {took:.1f} s later")
        report(log, name, detail, problems, line)


class Stream(threading.Thread):
    """One streamed completion of prompt ids; outcome: finished, or error:
    WHY."""

    def __init__(self, port, ids, tokens):
        super().__init__(daemon=True)
        self.port, self.ids, self.tokens = port, ids, tokens
        self.count, self.outcome = 0, None

    def run(self):
        body = json.dumps({"model": "m", "prompt": self.ids,
                           "max_tokens": self.tokens, "temperature": 0,
                           "stream": True, "ignore_eos": True,
                           "return_token_ids": True})
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                              timeout=300)
            conn.request("POST", "/v1/completions", body=body,
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            if r.status != 200:
                self.outcome = f"error: HTTP {r.status}"
                return
            while True:
                line = r.readline()
                if not line:
                    self.outcome = "error: the stream was cut short"
                    return
                line = line.decode().strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    self.outcome = "finished"
                    return
                obj = json.loads(data)
                if "error" in obj:
                    self.outcome = f"error: {obj['error'].get('message')}"
                    return
                for c in obj.get("choices") or []:
                    self.count += len(c.get("token_ids") or [])
        except (OSError, http.client.HTTPException, ValueError) as e:
            self.outcome = f"error: {type(e).__name__}: {e}"


class HealthPoll(threading.Thread):
    """GET /health on one kept-alive connection every HEALTH_POLL_S until
    it fails: the statuses seen after `mark()`."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.seen, self.marked = port, [], False
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.first = self.get()

    def get(self):
        self.conn.request("GET", "/health")
        r = self.conn.getresponse()
        body = r.read()
        try:
            state = json.loads(body).get("status")
        except ValueError:
            state = None
        return r.status, state

    def mark(self):
        self.marked = True

    def run(self):
        while True:
            try:
                got = self.get()
            except (OSError, http.client.HTTPException):
                return
            if self.marked:
                self.seen.append(got)
            time.sleep(HEALTH_POLL_S)


def check_serve(case, opts, model_dir, vocab, log, threads=False):
    """`weft serve` with a rank killed (--nproc) or, ranks as threads, rank
    0's step failing mid-decode."""
    import numpy as np
    world = case["tp"] * case["pp"]
    victim = 0 if threads else world - 1
    how = ("ranks as threads, a step failing mid-decode" if threads else
           f"--nproc {world}, rank {victim} killed mid-decode")
    name = f"fault serve {case['name']} ({how})"
    cmd = SERVE.format(weft_serve=opts.weft_serve,
                       artifact=C.artifact_dir(case["name"], opts.dist),
                       backend=opts.backend, model_dir=model_dir,
                       timeout=opts.timeout)
    env = None
    if threads:
        env = dict(FAIL_ENV, WEFT_TEST_FAIL_AFTER_STEPS=str(FAIL_AFTER_STEPS))
    else:
        cmd += NPROC.format(nproc=world)
    try:
        server = G.Server(cmd, env=env)
    except (RuntimeError, OSError) as e:
        log.result("FAIL", name, str(e))
        return
    try:
        ranks = {} if threads else wait_for_ranks(server.proc.pid, world,
                                                  server.proc)
        if ranks is None:
            log.result("FAIL", name, f"its {world} rank processes were not "
                       "found")
            return
        health = HealthPoll(server.port)
        if threads:  # the step fails on its own: every answer counts
            health.mark()
        health.start()
        rng = np.random.default_rng(PROMPT_SEED)
        streams = [Stream(server.port,
                          rng.integers(0, vocab, PROMPT_LEN).tolist(),
                          NEW_TOKENS) for _ in range(STREAMS)]
        for s in streams:
            s.start()
        until = time.time() + 120
        while time.time() < until and not any(
                s.count >= STARTED_TOKENS for s in streams) and \
                server.proc.poll() is None:
            time.sleep(0.01)
        decoding = [s for s in streams if s.count >= STARTED_TOKENS and
                    s.outcome != "finished"]
        killed = time.time()
        if not threads:
            try:
                os.kill(ranks[victim], signal.SIGKILL)
            except ProcessLookupError:
                log.result("FAIL", name, f"rank {victim} had ended before "
                           "the kill")
                return
        health.mark()
        for s in streams:
            s.join(opts.timeout + SLACK_S)
        try:
            code = server.proc.wait(opts.timeout + SLACK_S)
        except subprocess.TimeoutExpired:
            code = None
        took = time.time() - killed
        health.join(5)
        output = server.output() if code is not None else "".join(
            server.lines)
    finally:
        server.kill()
    left = gone(ranks.values())
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    outcomes = [s.outcome for s in streams]
    errors = [o for o in outcomes if o and o.startswith("error")]
    statuses = sorted({f"{st} {state}" for st, state in health.seen})
    line = next((x.strip() for x in output.splitlines() if "error:" in x),
                None) if threads else error_line(output, victim)
    problems = []
    if health.first != (200, "ok"):
        problems.append(f"/health answered {health.first} before the fault")
    if not decoding:
        problems.append(f"no stream had {STARTED_TOKENS} tokens when the "
                        "fault came")
    if any(o is None for o in outcomes):
        problems.append(f"{outcomes.count(None)} streams still open")
    if any(not (s.outcome or "").startswith("error") for s in decoding):
        problems.append("the decoding stream did not end with an error: "
                        f"{[s.outcome for s in decoding]}")
    if not any(st == 503 for st, _ in health.seen):
        problems.append(f"/health never answered 503 after the fault "
                        f"(answers: {statuses or 'none'})")
    if any(st == 200 for st, _ in health.seen[-1:]):
        problems.append("/health answered 200 last")
    problems += exit_problems(code, opts, "the fault")
    if line is None:
        problems.append("no error line" + ("" if threads else
                                          f" naming rank {victim}"))
    if left:
        problems.append(f"ranks still running: {left}")
    detail = (f"{len(errors)} of {STREAMS} streams ended with an error, "
              f"{outcomes.count('finished')} finished; /health after the "
              f"fault: {', '.join(statuses) or 'none'}; exit {code} "
              f"{took:.1f} s after the fault")
    report(log, name, detail, problems, line)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    G.add_weft_args(p)
    p.add_argument("--backend", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--layouts", default=",".join(LAYOUTS),
                   help="layouts of the tiny model's generation artifact")
    p.add_argument("--checks", default=",".join(CHECKS),
                   help=f"some of {','.join(CHECKS)}")
    p.add_argument("--timeout", type=int, default=20,
                   help="weft's --timeout: how long a rank waits for another")
    a = p.parse_args(argv)
    a.layouts = [x for x in a.layouts.split(",") if x]
    a.checks = [x for x in a.checks.split(",") if x]
    for x in a.layouts:
        if x not in C.LAYOUTS or C.LAYOUTS[x] == (1, 1):
            p.error(f"--layouts: '{x}' is not a layout of several ranks")
    for x in a.checks:
        if x not in CHECKS:
            p.error(f"--checks: '{x}' is not one of {', '.join(CHECKS)}")
    G.weft_defaults(a)
    C.setup_gpu_env()
    index = C.read_index(a.dist)
    log = G.Report()
    if a.backend == "cuda":
        import torch
        gpus = torch.cuda.device_count()
    else:
        gpus = max(tp * pp for tp, pp in C.LAYOUTS.values())
    cases = []
    for layout in a.layouts:
        name = C.gen_name(MODEL, layout)
        case = next((c for c in index.get("generation", [])
                     if c["name"] == name), None)
        world = C.LAYOUTS[layout][0] * C.LAYOUTS[layout][1]
        if case is None:
            log.result("FAIL", f"fault {name}", "not in cases.json (run "
                       "scripts/gpu-prepare --multi-gpu)")
        elif case.get("compile_error"):
            log.result("FAIL", f"fault {name}", "did not compile: "
                       + case["compile_error"])
        elif world > gpus:
            log.result("SKIP", f"fault {name}", f"needs {world} GPUs, "
                       f"{gpus} present")
        else:
            cases.append(case)
    with tempfile.TemporaryDirectory() as scratch:
        model_dir, vocab = None, None
        if cases:
            try:
                if a.backend == "cuda":
                    import fill_weights
                    path = os.path.join(C.model_dir(MODEL, a.dist),
                                        "model.onnx")
                    vocab = fill_weights.fill(path, C.SEED, "cuda",
                                              quiet=True).config.vocab_size
                    model_dir = C.model_dir(MODEL, a.dist)
                else:
                    model_dir, path = G.numpy_weights(cases[0]["preset"],
                                                      scratch)
                    vocab = G.OrtReference(path).vocab
            except Exception as e:  # reported: nothing can run without
                log.result("FAIL", f"fill {MODEL}", f"{type(e).__name__}: {e}")
                cases = []
        for case in cases:
            if "generate" in a.checks:
                check_generate(case, a, model_dir, vocab, log)
            if "serve" in a.checks:
                check_serve(case, a, model_dir, vocab, log)
            if "serve-threads" in a.checks:
                check_serve(case, a, model_dir, vocab, log, threads=True)
    counts = {s: sum(r["status"] == s for r in log.results)
              for s in ("PASS", "FAIL", "SKIP")}
    print(f"{counts['PASS']} passed, {counts['FAIL']} failed, "
          f"{counts['SKIP']} skipped")
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
