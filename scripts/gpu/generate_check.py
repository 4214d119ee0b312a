#!/usr/bin/env python3
"""Checks `weft generate` on the CUDA backend against Hugging Face
transformers, on the GPU machine: the generation artifacts that
scripts/gpu-prepare compiled for testing (cases.json `generation`: the tiny
Llama, bf16, random weights). scripts/gpu-test runs it after its other
cases.

Alone, from the repository root:

  generate_check.py [--dist dist/gpu] [--weft dist/gpu/bin/weft-generate]
                    [--backend cuda] [--only SUBSTRING ...]

Alone it fills the model's weights first (fill_weights.py, seed
cases.SEED: the same weights gpu-test fills). Then, per artifact:

- greedy: PROMPT_LENS prompts of seeded random ids (packed into prefills,
  one longer than the largest prompt bucket, a padded decode batch) are
  generated together by one `weft generate --json --prompt-file`
  (NEW_TOKENS each, --ignore-eos, temperature 0). Each is compared with
  LlamaForCausalLM in bfloat16 on the GPU, same weights, generating
  greedily with its KV cache, one prompt at a time: until the first
  disagreement weft's token must be transformers' top-1; at a
  disagreement transformers' logit for its top-1 may lead its logit for
  weft's token by less than MARGIN (bf16 rounding), else the prompt
  fails. After a disagreement the two continue from different prefixes,
  so the comparison ends there. One PASS/FAIL line per prompt with the
  tokens that agreed.
- sampling: the same prompts with SAMPLING's temperature, top_k, top_p and
  seed, generated twice: the ids must be the same both times, and differ
  from the greedy ones somewhere (the sampler samples).

The exit status is 1 if anything failed.
"""
import argparse
import inspect
import json
import os
import shlex
import subprocess
import sys
import tempfile
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
RUN_TIMEOUT = 300  # seconds, per weft generate
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


def compare(got, ref, ref_logits, margin=MARGIN):
    """(tokens agreed, ok, detail) of weft's ids `got` against the
    reference's greedy ids `ref` and its logits at each step."""
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
                       f"transformers {r} leading it by {lead:.4f} "
                       f"({'under' if ok else 'not under'} {margin})")
    return len(ref), True, f"{len(ref)}/{len(ref)} agreed"


def check_case(case, model, log, opts):
    """Runs the greedy and sampling checks of one generation case with the
    bf16 reference `model`; results go to log.result."""
    name = f"generate {case['name']}"
    if case.get("compile_error"):
        log.result("FAIL", name, "did not compile: " + case["compile_error"])
        return
    if not os.access(opts.weft, os.X_OK):
        log.result("FAIL", name, f"{opts.weft} is missing: the runtime "
                   "bundle (scripts/gpu-bundle) must hold weft with its "
                   "generate command")
        return
    vocab = model.config.vocab_size
    prompts = prompt_ids(vocab)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "prompts.jsonl")
        with open(path, "w") as f:
            for ids in prompts:
                f.write(json.dumps({"prompt_ids": ids}) + "\n")
        cmd = GENERATE.format(
            weft=opts.weft, artifact=C.artifact_dir(case["name"], opts.dist),
            backend=opts.backend, prompts=path, tokens=NEW_TOKENS,
            model_dir=C.model_dir(case["model"], opts.dist))
        t0 = time.time()
        greedy, err = run_weft(cmd + GREEDY, len(prompts))
        if err:
            log.result("FAIL", f"{name} greedy", err)
        else:
            log(f"    {cmd + GREEDY} ({time.time() - t0:.1f} s)")
            for i, (ids, out) in enumerate(zip(prompts, greedy)):
                ref, logits = hf_greedy(model, ids, NEW_TOKENS)
                agreed, ok, detail = compare(out["ids"], ref, logits)
                log.result("PASS" if ok else "FAIL",
                           f"{name} greedy prompt {i} ({len(ids)} tokens)",
                           detail)
        runs = []
        for _ in range(2):
            out, err = run_weft(cmd + SAMPLE, len(prompts))
            if err:
                log.result("FAIL", f"{name} sampling", err)
                return
            runs.append([o["ids"] for o in out])
        same = runs[0] == runs[1]
        lengths = all(len(ids) == NEW_TOKENS for ids in runs[0])
        differs = greedy is None or \
            runs[0] != [o["ids"] for o in greedy]
        ok = same and lengths and differs
        detail = (f"{'identical' if same else 'DIFFERENT'} ids in two runs "
                  f"({len(prompts)} prompts x {NEW_TOKENS} tokens, "
                  f"{SAMPLE.strip()})")
        if not lengths:
            detail += f"; not {NEW_TOKENS} tokens each"
        if not differs:
            detail += "; the same ids as greedy"
        log.result("PASS" if ok else "FAIL", f"{name} sampling", detail)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dist", default=C.DIST,
                   help="what gpu-prepare and gpu-bundle made (dist/gpu)")
    p.add_argument("--weft", help="the generate command: weft-generate "
                   "(default DIST/bin/weft-generate), or 'PATH/weft generate'")
    p.add_argument("--backend", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--only", nargs="*", metavar="SUBSTRING",
                   help="only the cases whose name contains one of these")
    a = p.parse_args(argv)
    a.weft = a.weft or os.path.join(a.dist, "bin", "weft-generate")
    C.setup_gpu_env()
    index = C.read_index(a.dist)
    log = Report()
    cases = [c for c in index.get("generation", [])
             if not a.only or any(s in c["name"] for s in a.only)]
    if not cases:
        log.result("FAIL", "generate", "no generation cases in cases.json "
                   "(gpu-prepare of this branch makes them)")
    import torch
    import fill_weights
    if not torch.cuda.is_available():
        log.result("FAIL", "generate", "torch sees no CUDA device")
        cases = []
    for case in cases:
        path = os.path.join(C.model_dir(case["model"], a.dist), "model.onnx")
        try:
            model = fill_weights.fill(path, C.SEED, "cuda", quiet=True)
        except Exception as e:  # reported, the other cases still run
            log.result("FAIL", f"fill {case['model']}",
                       f"{type(e).__name__}: {e}")
            continue
        check_case(case, model.to(torch.bfloat16).eval(), log, a)
        del model
    failed = sum(r["status"] == "FAIL" for r in log.results)
    passed = sum(r["status"] == "PASS" for r in log.results)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
