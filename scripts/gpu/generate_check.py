#!/usr/bin/env python3
"""Checks `weft generate` and `weft serve` on the CUDA backend against
Hugging Face transformers, on the GPU machine: the generation artifacts
that scripts/gpu-prepare compiled for testing (cases.json `generation`:
the tiny Llama, bf16, random weights, on one GPU and, with `gpu-prepare
--multi-gpu`, at tp 2, tp 4, pp 2 and tp 2 x pp 2). scripts/gpu-test
runs it after its other cases, scripts/gpu-multi for the layouts of
several GPUs.

Alone, from the repository root:

  generate_check.py [--dist dist/gpu] [--weft dist/gpu/bin/weft-generate]
                    [--weft-serve dist/gpu/bin/weft-serve] [--no-serve]
                    [--backend cuda|cpu] [--only SUBSTRING ...]

Alone it fills the model's weights first (fill_weights.py, seed
cases.SEED: the same weights gpu-test fills). Then, per model, its
artifacts, the one-GPU artifact first:

- greedy: PROMPT_LENS prompts of seeded random ids (packed into prefills,
  one longer than the largest prompt bucket, a padded decode batch) are
  generated together by one `weft generate --json --prompt-file`
  (NEW_TOKENS each, --ignore-eos, temperature 0), ranks as threads; for an
  artifact of several ranks again as processes (`--nproc N`). Then `weft
  serve` (unless --no-serve) answers the same prompts, sent at once as
  completions of token ids (temperature 0, ignore_eos, return_token_ids),
  ranks as threads and, for several ranks, as processes (`weft serve
  --nproc N`). Every run is checked, prompt by prompt (one PASS/FAIL line
  each):
  - against LlamaForCausalLM in bfloat16 on the GPU, same weights,
    generating greedily with its KV cache, one prompt at a time: until
    the first disagreement weft's token must be transformers' top-1; at a
    disagreement transformers' logit for its top-1 may lead its logit for
    weft's token by less than MARGIN (bf16 rounding), else the prompt
    fails. After a disagreement the two continue from different prefixes,
    so the comparison ends there;
  - against the one-GPU artifact's `weft generate` ids (every run but
    that one; the rule of the multi-GPU layouts "where the numerics
    allow"): equal until the first difference; there transformers'
    bfloat16 logits after the prefix both runs share (the prompt and the
    ids before it, one forward pass) must put the two ids less than MARGIN
    apart, a near-tie that another summation order (the all-reduce of the
    ranks' partial sums, another batch size's GEMM) may flip in bf16;
    else the prompt fails. The comparison ends there too.
- sampling: the same prompts with SAMPLING's temperature, top_k, top_p and
  seed, generated twice (ranks as threads): the ids must be the same both
  times, and differ from the greedy ones somewhere (the sampler samples).

An artifact needing more GPUs than torch.cuda.device_count() is SKIPped.
--backend cpu runs the same checks on CPU ranks where torch is absent
(the build machine): the weights are make_llama.py --write-weights's
(numpy, seeded) and the reference is onnxruntime on the f32 graph with
those weights rounded to bf16 (as prepare.py --check-cpu), greedy without
a cache (the whole sequence again for every token); its f32 logits take
the place of transformers' in both rules.

The exit status is 1 if anything failed.
"""
import argparse
import concurrent.futures as cf
import http.client
import inspect
import json
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

# --- the commands (flags may change: edit them here) -------------------------
GENERATE = ("{weft} {artifact} --backend {backend} --model-dir "
            "{model_dir} --prompt-file {prompts} --max-tokens {tokens} "
            "--ignore-eos --json")
GREEDY = " --temperature 0"
SAMPLE = " --temperature 0.8 --top-k 40 --top-p 0.9 --seed 7"
# Appended for ranks as processes (docs/cli.md, `weft generate ...
# [--nproc N]`, `weft serve ... [--nproc N]`).
NPROC = " --nproc {nproc}"
# weft serve of one artifact on a free port, its model named "m"; a small
# KV cache (the default is 16 GiB per rank on CUDA).
SERVE = ("{weft_serve} {artifact} --backend {backend} --model-dir "
         "{model_dir} --port 0 --served-model-name m --kv-cache-gib 1")
RUN_TIMEOUT = 300  # seconds, per weft generate
SERVE_START_TIMEOUT = 300  # seconds until weft serve says it is ready
# -----------------------------------------------------------------------------
PROMPT_LENS = [1, 9, 31, 77, 128, 150]  # tokens; 150 > the largest bucket
NEW_TOKENS = 24
MARGIN = 0.1  # transformers' logit of its top-1 over that of weft's token
PROMPT_SEED = 11


class Report:
    """PASS/FAIL/SKIP lines and their count (gpu_test.Log has the same
    result())."""

    def __init__(self):
        self.results = []

    def __call__(self, line=""):
        print(line, flush=True)

    def result(self, status, name, detail):
        self.results.append(dict(status=status, name=name, detail=detail))
        print(f"{status} {name}: {detail}", flush=True)


def prompt_ids(vocab, lens=PROMPT_LENS, seed=PROMPT_SEED):
    """Seeded random token ids, one list per prompt length."""
    import numpy as np
    rng = np.random.default_rng(seed)
    return [rng.integers(0, vocab, n).tolist() for n in lens]


def run_weft(cmd, count):
    """Runs one `weft generate --json`; returns (list of `count` objects,
    None) or (None, what went wrong)."""
    try:
        r = subprocess.run(shlex.split(cmd), capture_output=True, text=True,
                           timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {RUN_TIMEOUT} s: {cmd}"
    except OSError as e:
        return None, f"{e}: {cmd}"
    if r.returncode:
        tail = (r.stderr or r.stdout).strip().splitlines()[-5:]
        return None, (f"exit {r.returncode}: {cmd}\n      "
                      + "\n      ".join(tail))
    try:
        out = [json.loads(line) for line in r.stdout.splitlines()
               if line.startswith("{")]
    except json.JSONDecodeError as e:
        return None, f"output is not JSON lines ({e}): {cmd}"
    if len(out) != count or not all("ids" in o for o in out):
        return None, (f"{len(out)} JSON objects with ids for {count} "
                      f"prompts: {cmd}")
    return out, None


class Server:
    """A `weft serve` process started from `cmd` (with --port 0): its port
    once it listens, its output lines."""

    def __init__(self, cmd, env=None, start_timeout=SERVE_START_TIMEOUT):
        self.cmd = cmd
        self.proc = subprocess.Popen(
            shlex.split(cmd), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
            env=dict(os.environ, **(env or {})))
        self.lines, self.port = [], None
        ready = threading.Event()

        def pump():
            for line in self.proc.stdout:
                self.lines.append(line)
                m = re.search(r"listening on http://[^:]+:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                if re.search(r": ready \(", line):
                    ready.set()
            ready.set()

        self.pump = threading.Thread(target=pump, daemon=True)
        self.pump.start()
        if not ready.wait(start_timeout) or self.port is None or \
                self.proc.poll() is not None:
            self.kill()
            raise RuntimeError(f"weft serve did not start: {cmd}\n      "
                               + "      ".join(self.lines[-8:]))

    def request(self, method, path, body=None, timeout=RUN_TIMEOUT):
        """(status, parsed JSON or raw bytes) of one HTTP request."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                          timeout=timeout)
        try:
            conn.request(method, path, body=body,
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            data = r.read()
        finally:
            conn.close()
        try:
            return r.status, json.loads(data)
        except ValueError:
            return r.status, data

    def output(self):
        self.pump.join(10)
        return "".join(self.lines)

    def stop(self, wait=60):
        """SIGTERM, as an orchestrator stops it; after `wait` seconds,
        SIGKILL. Returns the exit status (None: killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(wait)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def completion(server, ids, tokens):
    """The greedy completion of prompt `ids` by `server`: its token ids."""
    body = json.dumps({"model": "m", "prompt": ids, "max_tokens": tokens,
                       "temperature": 0, "ignore_eos": True,
                       "return_token_ids": True})
    status, obj = server.request("POST", "/v1/completions", body)
    if status != 200 or not isinstance(obj, dict):
        raise RuntimeError(f"HTTP {status}: {str(obj)[:300]}")
    return obj["choices"][0]["token_ids"]


def serve_greedy(cmd, prompts, tokens):
    """Every prompt sent at once to one `weft serve` (cmd): (a list of id
    lists, None) or (None, what went wrong)."""
    try:
        server = Server(cmd)
    except (RuntimeError, OSError) as e:
        return None, str(e)
    try:
        with cf.ThreadPoolExecutor(len(prompts)) as pool:
            out = list(pool.map(lambda ids: completion(server, ids, tokens),
                                prompts))
    except Exception as e:  # reported with the server's output
        server.kill()
        return None, (f"{type(e).__name__}: {e}: {cmd}\n      "
                      + "      ".join(server.output().splitlines(True)[-5:]))
    code = server.stop()
    if code != 0:
        return None, (f"exit {code} after SIGTERM: {cmd}\n      "
                      + "      ".join(server.output().splitlines(True)[-5:]))
    return out, None


class TorchReference:
    """transformers' model (bf16 on the GPU) as the reference."""
    name = "transformers"

    def __init__(self, model):
        self.model = model
        self.vocab = model.config.vocab_size

    def greedy(self, ids, tokens):
        return hf_greedy(self.model, ids, tokens)

    def next_logits(self, ids):
        """The logits (float32, on the CPU) of the token after `ids`."""
        import torch
        with torch.no_grad():
            out = self.model(input_ids=torch.tensor([ids],
                                                    device=self.model.device),
                             use_cache=False)
        return out.logits[0, -1].float().cpu()


class OrtReference:
    """onnxruntime on an f32 graph, greedy without a cache (--backend cpu,
    where torch may be absent)."""
    name = "onnxruntime"

    def __init__(self, path):
        import onnxruntime as ort
        self.sess = ort.InferenceSession(path,
                                         providers=["CPUExecutionProvider"])
        self.vocab = self.sess.get_outputs()[0].shape[-1]

    def next_logits(self, ids):
        import numpy as np
        return self.sess.run(None, {"input_ids": np.array([ids],
                                                          np.int64)})[0][0, -1]

    def greedy(self, ids, tokens):
        out, logits = [], []
        for _ in range(tokens):
            last = self.next_logits(list(ids) + out)
            logits.append(last)
            out.append(int(last.argmax()))
        return out, logits


def numpy_weights(preset, scratch, seed=7):
    """make_llama.py graphs of `preset` with seeded numpy weights in
    `scratch`: (the bf16 model's directory, for weft's --model-dir; the
    f32 graph with the same weights, rounded to bf16, for OrtReference).
    The same seed in both dtypes gives the bf16 file the f32 values
    rounded."""
    import numpy as np
    make = os.path.join(os.path.dirname(os.path.dirname(HERE)), "test",
                        "models", "make_llama.py")
    dirs = {}
    for dtype in ("bf16", "f32"):
        d = os.path.join(scratch, f"{preset}_{dtype}")
        r = subprocess.run([sys.executable, make, "--preset", preset,
                            "--dtype", dtype, "-o", d, "--write-weights",
                            "--seed", str(seed)], capture_output=True,
                           text=True)
        if r.returncode:
            raise RuntimeError(f"make_llama.py failed: {r.stderr.strip()}")
        dirs[dtype] = d
    path = os.path.join(dirs["f32"], "model.weights")
    raw = np.fromfile(path, np.uint32)
    raw = (raw + 0x7FFF + ((raw >> 16) & 1)) & 0xFFFF0000
    raw.tofile(path)
    return dirs["bf16"], os.path.join(dirs["f32"], "model.onnx")


def hf_greedy(model, ids, tokens):
    """transformers' greedy continuation of `ids` with its KV cache: (the
    tokens, each step's logits as float32 on the CPU)."""
    import torch
    # The cache argument and output field: `past_key_values` until
    # transformers 5.2x named them `cache`.
    params = inspect.signature(type(model).forward).parameters
    key = "cache" if "cache" in params else "past_key_values"
    out_ids, logits = [], []
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids], device=model.device),
                    use_cache=True)
        for step in range(tokens):
            last = out.logits[0, -1].float()
            token = int(last.argmax())
            out_ids.append(token)
            logits.append(last.cpu())
            if step + 1 < tokens:
                out = model(input_ids=torch.tensor([[token]],
                                                   device=model.device),
                            use_cache=True, **{key: getattr(out, key)})
    return out_ids, logits


def compare(got, ref, ref_logits, margin=MARGIN, name="transformers"):
    """(tokens agreed, ok, detail) of weft's ids `got` against the
    reference's (`name`'s) greedy ids `ref` and its logits at each step."""
    if len(got) != len(ref):
        return 0, False, f"{len(got)} tokens, expected {len(ref)}"
    vocab = len(ref_logits[0])
    for i, (g, r) in enumerate(zip(got, ref)):
        if g == r:
            continue
        if not 0 <= g < vocab:
            return i, False, f"token {i}: id {g} is outside the vocabulary"
        lead = float(ref_logits[i][r] - ref_logits[i][g])
        ok = lead < margin
        return i, ok, (f"{i}/{len(ref)} agreed; at token {i} weft {g}, "
                       f"{name} {r} leading it by {lead:.4f} "
                       f"({'under' if ok else 'not under'} {margin})")
    return len(ref), True, f"{len(ref)}/{len(ref)} agreed"


def compare_runs(got, base, prompt, next_logits, margin=MARGIN):
    """(tokens equal, ok, detail) of weft's ids `got` against the one-GPU
    artifact's `base` for the same prompt: equal, or at the first
    difference within `margin` of each other in the reference's logits
    after the prefix both share (next_logits(ids))."""
    if len(got) != len(base):
        return 0, False, f"{len(got)} tokens, the 1-GPU run {len(base)}"
    for i, (g, b) in enumerate(zip(got, base)):
        if g == b:
            continue
        logits = next_logits(list(prompt) + list(base[:i]))
        if not 0 <= g < len(logits):
            return i, False, f"token {i}: id {g} is outside the vocabulary"
        gap = abs(float(logits[b] - logits[g]))
        ok = gap < margin
        return i, ok, (f"{i}/{len(base)} as the 1-GPU run; at token {i} {g} "
                       f"where it has {b}, {gap:.4f} apart in the "
                       f"reference's logits ({'under' if ok else 'not under'}"
                       f" {margin})")
    return len(base), True, f"{len(base)}/{len(base)} as the 1-GPU run"


def check_run(label, got, prompts, refs, ref, baseline, log):
    """One result line per prompt of one greedy run: against the reference
    (refs: its greedy ids and logits per prompt) and, given the one-GPU
    run's ids `baseline`, against those."""
    for i, (ids, out, (ref_ids, logits)) in enumerate(zip(prompts, got,
                                                          refs)):
        _, ok, detail = compare(out, ref_ids, logits, name=ref.name)
        if baseline is not None:
            _, same, vs = compare_runs(out, baseline[i], ids,
                                       ref.next_logits)
            ok = ok and same
            detail += f"; {vs}"
        log.result("PASS" if ok else "FAIL",
                   f"{label} prompt {i} ({len(ids)} tokens)", detail)


def ranks_of(case):
    return case.get("tp", 1) * case.get("pp", 1)


def check_case(case, ref, log, opts, gpus, prompts, refs, baseline=None,
               model_dir=None):
    """The greedy and sampling checks of one generation case against `ref`
    (refs: its greedy ids and logits for `prompts`) and the one-GPU run's
    ids `baseline`; results go to log.result. Returns the greedy ids of
    `weft generate` with ranks as threads, or None."""
    name = f"generate {case['name']}"
    ranks = ranks_of(case)
    if case.get("compile_error"):
        log.result("FAIL", name, "did not compile: " + case["compile_error"])
        return None
    if ranks > gpus:
        log.result("SKIP", name, f"needs {ranks} GPUs, {gpus} present")
        return None
    if not os.access(shlex.split(opts.weft)[0], os.X_OK):
        log.result("FAIL", name, f"{opts.weft} is missing: the runtime "
                   "bundle (scripts/gpu-bundle) must hold weft with its "
                   "generate command")
        return None
    artifact = C.artifact_dir(case["name"], opts.dist)
    model_dir = model_dir or C.model_dir(case["model"], opts.dist)
    modes = [("threads", "")]
    if ranks > 1:
        modes.append(("processes", NPROC.format(nproc=ranks)))
    suffix = lambda mode: f", ranks as {mode}" if ranks > 1 else ""  # noqa
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "prompts.jsonl")
        with open(path, "w") as f:
            for ids in prompts:
                f.write(json.dumps({"prompt_ids": ids}) + "\n")
        cmd = GENERATE.format(
            weft=opts.weft, artifact=artifact, backend=opts.backend,
            prompts=path, tokens=NEW_TOKENS, model_dir=model_dir)
        greedy = {}
        for mode, extra in modes:
            t0 = time.time()
            out, err = run_weft(cmd + GREEDY + extra, len(prompts))
            if err:
                log.result("FAIL", f"{name} greedy{suffix(mode)}", err)
                continue
            log(f"    {cmd + GREEDY + extra} ({time.time() - t0:.1f} s)")
            greedy[mode] = [o["ids"] for o in out]
            check_run(f"{name} greedy{suffix(mode)}", greedy[mode], prompts,
                      refs, ref, baseline, log)
        if len(greedy) == 2:
            same = greedy["threads"] == greedy["processes"]
            log(f"    ranks as threads and as processes gave "
                f"{'identical' if same else 'DIFFERENT'} ids")
        if not getattr(opts, "no_serve", False):
            serve = SERVE.format(
                weft_serve=getattr(opts, "weft_serve", None) or
                os.path.join(opts.dist, "bin", "weft-serve"),
                artifact=artifact, backend=opts.backend, model_dir=model_dir)
            for mode, extra in modes:
                label = f"serve {case['name']} greedy{suffix(mode)}"
                t0 = time.time()
                got, err = serve_greedy(serve + extra, prompts, NEW_TOKENS)
                if err:
                    log.result("FAIL", label, err)
                    continue
                log(f"    {serve + extra}: {len(prompts)} completions at "
                    f"once ({time.time() - t0:.1f} s)")
                check_run(label, got, prompts, refs, ref,
                          baseline if baseline is not None
                          else greedy.get("threads"), log)
        runs = []
        for _ in range(2):
            out, err = run_weft(cmd + SAMPLE, len(prompts))
            if err:
                log.result("FAIL", f"{name} sampling", err)
                return greedy.get("threads")
            runs.append([o["ids"] for o in out])
        same = runs[0] == runs[1]
        lengths = all(len(ids) == NEW_TOKENS for ids in runs[0])
        differs = "threads" not in greedy or runs[0] != greedy["threads"]
        ok = same and lengths and differs
        detail = (f"{'identical' if same else 'DIFFERENT'} ids in two runs "
                  f"({len(prompts)} prompts x {NEW_TOKENS} tokens, "
                  f"{SAMPLE.strip()})")
        if not lengths:
            detail += f"; not {NEW_TOKENS} tokens each"
        if not differs:
            detail += "; the same ids as greedy"
        log.result("PASS" if ok else "FAIL", f"{name} sampling", detail)
    return greedy.get("threads")


def check_model(cases, ref, log, opts, gpus, model_dir=None):
    """check_case of every case of one model, the one-GPU artifact first:
    its greedy ids are the others' baseline."""
    cases = sorted(cases, key=lambda c: ranks_of(c) > 1)
    prompts = prompt_ids(ref.vocab)
    refs = [ref.greedy(ids, NEW_TOKENS) for ids in prompts]
    baseline = None
    for case in cases:
        if ranks_of(case) > 1 and baseline is None:
            log(f"    {case['name']}: no 1-GPU run to compare with (its "
                "case failed or was not selected); checked against the "
                "reference only")
        got = check_case(case, ref, log, opts, gpus, prompts, refs,
                         baseline, model_dir)
        if ranks_of(case) == 1 and got is not None:
            baseline = got


def add_weft_args(p):
    """--dist, --weft and --weft-serve, as this script and fault_check.py
    take them (weft_defaults fills in the bundle's binaries)."""
    p.add_argument("--dist", default=C.DIST,
                   help="what gpu-prepare and gpu-bundle made (dist/gpu)")
    p.add_argument("--weft", help="the generate command: weft-generate "
                   "(default DIST/bin/weft-generate), or 'PATH/weft generate'")
    p.add_argument("--weft-serve", help="the serve command: weft-serve "
                   "(default DIST/bin/weft-serve), or 'PATH/weft serve'")


def weft_defaults(a):
    a.weft = a.weft or os.path.join(a.dist, "bin", "weft-generate")
    a.weft_serve = a.weft_serve or os.path.join(a.dist, "bin", "weft-serve")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_weft_args(p)
    p.add_argument("--no-serve", action="store_true",
                   help="leave out the weft serve runs")
    p.add_argument("--backend", default="cuda", choices=["cuda", "cpu"],
                   help="cpu: CPU ranks against onnxruntime, with numpy "
                   "weights (no torch needed)")
    p.add_argument("--only", nargs="*", metavar="SUBSTRING",
                   help="only the cases whose name contains one of these")
    a = p.parse_args(argv)
    weft_defaults(a)
    C.setup_gpu_env()
    index = C.read_index(a.dist)
    log = Report()
    cases = [c for c in index.get("generation", [])
             if not a.only or any(s in c["name"] for s in a.only)]
    if not cases:
        log.result("FAIL", "generate", "no generation cases in cases.json "
                   "(gpu-prepare of this branch makes them)")
    by_model = {}
    for case in cases:
        by_model.setdefault(case["model"], []).append(case)
    if a.backend == "cuda":
        import torch
        import fill_weights
        gpus = torch.cuda.device_count()
        if not torch.cuda.is_available():
            log.result("FAIL", "generate", "torch sees no CUDA device")
            by_model = {}
        else:
            log(f"{gpus} x {torch.cuda.get_device_name(0)}")
    else:  # CPU ranks: any layout
        gpus = max(tp * pp for tp, pp in C.LAYOUTS.values())
    with tempfile.TemporaryDirectory() as scratch:
        for model, group in by_model.items():
            try:
                if a.backend == "cuda":
                    path = os.path.join(C.model_dir(model, a.dist),
                                        "model.onnx")
                    filled = fill_weights.fill(path, C.SEED, "cuda",
                                               quiet=True)
                    ref = TorchReference(filled.to(torch.bfloat16).eval())
                    model_dir = None
                else:
                    model_dir, path = numpy_weights(group[0]["preset"],
                                                    scratch)
                    ref = OrtReference(path)
            except Exception as e:  # reported, the other models still run
                log.result("FAIL", f"fill {model}",
                           f"{type(e).__name__}: {e}")
                continue
            check_model(group, ref, log, a, gpus, model_dir)
            del ref
    failed = sum(r["status"] == "FAIL" for r in log.results)
    passed = sum(r["status"] == "PASS" for r in log.results)
    skipped = sum(r["status"] == "SKIP" for r in log.results)
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
