#!/usr/bin/env python3
"""The GPU machine's test (scripts/gpu-test runs it from the repository
root): runs every case that scripts/gpu-prepare compiled into dist/gpu with
dist/gpu/bin/weft-run on the CUDA backend and checks it against an
independent reference.

  gpu_test.py [--only SUBSTRING ...] [--skip-kernel-tests] [--keep-outputs]
              [--weft dist/gpu/bin/weft-generate]
              [--weft-serve dist/gpu/bin/weft-serve]

Steps: fill the weights of the make_llama.py models (fill_weights.py, seeded
Hugging Face init on the GPU); run the kernel test binaries that were
bundled, and test/gpu/run_codegen_kernels.py on the generated ELEMENTWISE
kernels that gpu-prepare put in dist/gpu/codegen-check; check each generated Llama f32 graph against the Hugging Face model
itself (onnxruntime vs torch f32: the graph means what LlamaForCausalLM
computes); then run each case. f32 cases must match onnxruntime (CPU) on the
same ONNX model and inputs within max|out - ref| / max|ref| <= 1e-4 (weft's
f32 GEMMs are true f32). bf16 cases are checked as the CPU suite checks
bf16 (test/e2e/check_against_ort.py, docs/testing.md): LlamaForCausalLM in
bfloat16 (eager, same weights) is the low-precision reference, its own
errors against LlamaForCausalLM in float32 by two measures (max|d|/max|ref|
and ||d||/||ref||) are e_ref, and weft's errors against float32 may be at
most BF16_FACTOR (2) times them; and the top-1 token must agree with torch
bf16's at >= 95% of the positions whose reference top-1 leads by at least
1% of max|ref| (random weights make near-ties that rounding flips). The
mutation cases (cases.py MUTANT_BASES: make_llama.py --mutate graphs, run
with their base's weights) are checked against their base's references
and must FAIL that rule; one that passes is a FAIL line. Layouts needing
more GPUs than present are SKIPped. Last, the generation artifacts
(cases.json `generation`) are checked by generate_check.py: `weft
generate` and `weft serve` (greedy, and seeded sampling) against
transformers' greedy generation with its KV cache, and the artifacts of
several GPUs (gpu-prepare --multi-gpu) against the one-GPU artifact. One
PASS/FAIL/SKIP line per case, then `N passed, N failed, N skipped`; the
exit status is 1 if anything failed.
With $OUT set, the log goes to $OUT/gpu-test.log and the results to
$OUT/gpu-test.json.
"""
import argparse
import copy
import json
import os
import shlex
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import cases as C  # noqa: E402
import generate_check  # noqa: E402

# --- the commands (flags may change: edit them here) -------------------------
# One case: {weft_run} {backend} {artifact} {inputs} {outputs} {model_dir}
# are filled in.
RUN = ("{weft_run} {artifact} --backend {backend} --inputs {inputs} "
       "--outputs {outputs} --model-dir {model_dir}")
# Appended for an artifact of N > 1 ranks on the GPUs: one process per GPU.
NPROC = " --nproc {nproc}"
# Kernel test binaries (in dist/gpu/bin), run when bundled, with the GPUs
# they need at least.
KERNEL_TESTS = [
    ("weft-cuda-tests", [], 1),
    ("weft-nccl-test", [], 2),
]
# The generated ELEMENTWISE kernels against the CPU interpreter's outputs:
# {python} {script} {cases} are filled in (cases: DIST/codegen-check).
CODEGEN_SCRIPT = os.path.join(ROOT, "test", "gpu", "run_codegen_kernels.py")
CODEGEN = "{python} {script} {cases}"
RUN_TIMEOUT = 300  # seconds, per weft-run
# Tolerances.
F32_TOL = 1e-4
BF16_FACTOR = 2.0  # x torch bf16's own errors against torch f32, as the
# CPU suite's LOWP_FACTOR (test/e2e/check_against_ort.py; docs/testing.md)
BF16_TOP1 = 0.95
TOP1_SLACK = 0.05  # below torch bf16's own top-1 agreement with torch f32
TOP1_MARGIN = 1e-2  # of max|ref|: positions with a clear reference top-1
# ------------------------------------------------------------------------------


class Log:
    """Prints and keeps every line (for $OUT/gpu-test.log)."""

    def __init__(self):
        self.lines, self.results = [], []

    def __call__(self, line=""):
        print(line, flush=True)
        self.lines.append(line)

    def result(self, status, name, detail):
        self.results.append(dict(status=status, name=name, detail=detail))
        self(f"{status} {name}: {detail}")

    def save(self):
        out = os.environ.get("OUT")
        if not out:
            return
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "gpu-test.log"), "w") as f:
            f.write("\n".join(self.lines) + "\n")
        with open(os.path.join(out, "gpu-test.json"), "w") as f:
            json.dump(self.results, f, indent=1)


def gpu_count():
    """(count, name of GPU 0) as torch sees them, else nvidia-smi."""
    try:
        import torch
        n = torch.cuda.device_count()
        return n, torch.cuda.get_device_name(0) if n else "no GPU"
    except ImportError:
        pass
    try:
        r = subprocess.run(["nvidia-smi", "-L"], capture_output=True,
                           text=True)
    except OSError:
        return 0, "no GPU"
    gpus = [line for line in r.stdout.splitlines() if line.startswith("GPU ")]
    return len(gpus), gpus[0] if gpus else "no GPU"


def _error(got, ref, norm):
    """norm(got - ref) / norm(ref) in float64: inf for a shape mismatch,
    nan for non-finite outputs."""
    got, ref = got.astype(np.float64), ref.astype(np.float64)
    if got.shape != ref.shape:
        return float("inf")
    if not np.isfinite(got).all():
        return float("nan")
    return float(norm(got - ref) / max(norm(ref), 1e-30))


def rel_err(got, ref):
    """max|got - ref| / max|ref|."""
    return _error(got, ref, lambda x: np.abs(x).max())


def rms_err(got, ref):
    """||got - ref||_2 / ||ref||_2."""
    return _error(got, ref, lambda x: np.sqrt((x ** 2).sum()))


def bf16_verdict(got, ref_bf16, exact):
    """The bf16 rule: (passed, detail, error / limit, the largest of the
    two measures). torch bf16's own errors against torch f32 (e_ref, max
    and rms measures) times BF16_FACTOR (at least F32_TOL) bound weft's
    errors against torch f32; at the positions where torch f32's top-1
    token is clear, weft's must agree with it as often as torch bf16's
    does, less TOP1_SLACK (and at least BF16_TOP1, unless torch bf16 itself
    falls below that). The two round at different points, so neither is
    the other's reference: both are held to torch f32."""
    own = rel_err(ref_bf16, exact), rms_err(ref_bf16, exact)
    mine = rel_err(got, exact), rms_err(got, exact)
    limit = [max(BF16_FACTOR * e, F32_TOL) for e in own]
    ratio = max(m / l for m, l in zip(mine, limit))
    if not np.isfinite(ratio):
        ratio = float("inf")
    agree, clear, raw = top1(got, exact)
    own_agree = top1(ref_bf16, exact)[0]
    need = min(BF16_TOP1, own_agree - TOP1_SLACK)
    ok = ratio <= 1.0 and agree >= need
    detail = (f"vs torch f32: weft bf16 {mine[0]:.2e} / {mine[1]:.2e} "
              f"(max / rms), torch bf16 {own[0]:.2e} / {own[1]:.2e}, "
              f"limits {limit[0]:.2e} / {limit[1]:.2e} ({BF16_FACTOR:g} x), "
              f"error / limit {ratio:.2f}; weft vs torch bf16 "
              f"{rel_err(got, ref_bf16):.2e}; top-1 as torch f32's "
              f"{agree:.3f} at {clear} clear positions (torch bf16 "
              f"{own_agree:.3f}, min {need:.3f}; {raw:.3f} at all)")
    return ok, detail, ratio


def top1(got, ref):
    """(agreement of the top-1 token at the positions where the reference's
    best logit leads its second by at least TOP1_MARGIN of max|ref|, the
    number of such positions, the agreement over all positions). Random
    weights give near-ties that bf16 rounding alone may flip."""
    same = got.argmax(-1) == ref.argmax(-1)
    top2 = np.sort(ref, axis=-1)[..., -2:]
    clear = (top2[..., 1] - top2[..., 0]) >= TOP1_MARGIN * np.abs(ref).max()
    agree = float(same[clear].mean()) if clear.any() else 1.0
    return agree, int(clear.sum()), float(same.mean())


class References:
    """onnxruntime sessions and torch models, built once each."""

    def __init__(self, log, dist):
        self.log, self.dist = log, dist
        self.ort, self.torch_models, self.cache = {}, {}, {}
        self.filled = False

    def onnxruntime(self, model, inputs):
        key = ("ort", model, inputs)
        if key not in self.cache:
            import onnxruntime as ort
            if model not in self.ort:
                path = os.path.join(C.model_dir(model, self.dist),
                                    "model.onnx")
                opts = ort.SessionOptions()
                opts.graph_optimization_level = \
                    ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
                self.ort[model] = ort.InferenceSession(
                    path, opts, providers=["CPUExecutionProvider"])
            sess = self.ort[model]
            feeds = dict(np.load(inputs))
            self.cache[key] = sess.run(None, feeds)[0]
        return self.cache[key]

    def torch(self, preset, dtype, inputs):
        """LlamaForCausalLM logits (float32 numpy) in `dtype`."""
        key = ("torch", preset, dtype, inputs)
        if key not in self.cache:
            import torch
            model = self.torch_models[(preset, dtype)]
            ids = torch.from_numpy(np.load(inputs)["input_ids"]).cuda()
            with torch.no_grad():
                out = model(input_ids=ids, use_cache=False).logits
            self.cache[key] = out.float().cpu().numpy()
        return self.cache[key]


def fill_models(index, log, refs):
    """Writes model.weights of every make_llama.py model the cases use and
    keeps the torch models (f32 and bf16) for the references."""
    import torch
    import fill_weights
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    by_preset = {}
    for case in index["cases"] + index.get("generation", []):
        if case["kind"] in ("llama", "generate"):
            # A mutant reads its base's weights (weft-run --model-dir).
            by_preset.setdefault(case["preset"], set()).add(
                C.weights_model(case))
    ok = True
    for preset, models in sorted(by_preset.items()):
        model = None
        for name in sorted(models):
            path = os.path.join(C.model_dir(name, refs.dist), "model.onnx")
            t0 = time.time()
            try:
                model = fill_weights.fill(path, C.SEED, "cuda", model=model,
                                          quiet=True)
                log.result("PASS", f"fill {name}",
                           f"{time.time() - t0:.1f} s")
            except Exception as e:  # every failure is reported, not raised
                log.result("FAIL", f"fill {name}", f"{type(e).__name__}: {e}")
                ok = False
        if model is not None:
            refs.torch_models[(preset, "f32")] = model
            bf16 = copy.deepcopy(model).to(torch.bfloat16)
            refs.torch_models[(preset, "bf16")] = bf16.eval()
    refs.filled = ok
    return ok


def run_kernel_tests(log, gpus, bin_dir):
    for name, args, need in KERNEL_TESTS:
        path = os.path.join(bin_dir, name)
        if not os.path.exists(path):
            log.result("SKIP", name, "not bundled")
            continue
        if gpus < need:
            log.result("SKIP", name, f"needs {need} GPUs, {gpus} present")
            continue
        t0 = time.time()
        try:
            r = subprocess.run([path] + args, capture_output=True, text=True,
                               timeout=RUN_TIMEOUT)
            tail = (r.stdout + r.stderr).strip().splitlines()[-15:]
            for line in tail:
                log("    " + line)
            status = "PASS" if r.returncode == 0 else "FAIL"
            log.result(status, name, f"exit {r.returncode}, "
                       f"{time.time() - t0:.1f} s")
        except subprocess.TimeoutExpired:
            log.result("FAIL", name, f"timed out after {RUN_TIMEOUT} s")


def run_codegen_kernels(index, log, dist, script=CODEGEN_SCRIPT):
    """run_codegen_kernels.py on what gpu-prepare wrote for it: one result,
    with its failures and summary logged."""
    name = "codegen kernels"
    entry = index.get("codegen_check")
    if entry is None:
        log.result("FAIL", name, "cases.json lists no codegen check: "
                   "dist/gpu predates it; rerun scripts/gpu-prepare")
        return
    if "skipped" in entry:
        log.result("SKIP", name, f"not prepared ({entry['skipped']})")
        return
    if "error" in entry:
        log.result("FAIL", name, "not prepared: " + entry["error"])
        return
    cases = os.path.join(dist, entry["dir"])
    if not os.path.isfile(os.path.join(cases, "cases.json")):
        log.result("FAIL", name, f"{cases}/cases.json is missing: carry "
                   "dist/gpu as scripts/gpu-prepare made it")
        return
    cmd = CODEGEN.format(python=shlex.quote(sys.executable),
                         script=shlex.quote(script),
                         cases=shlex.quote(cases))
    t0 = time.time()
    try:
        r = subprocess.run(shlex.split(cmd), capture_output=True, text=True,
                           timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        log.result("FAIL", name, f"timed out after {RUN_TIMEOUT} s: {cmd}")
        return
    # Every case prints a line, then the summary: the failures are logged,
    # the summary goes into the result.
    lines = (r.stdout + r.stderr).strip().splitlines()
    summary = lines.pop() if lines else "no output"
    shown = [line for line in lines if not line.startswith("PASS ")]
    for line in shown[:40]:
        log("    " + line)
    if len(shown) > 40:
        log(f"    ... {len(shown) - 40} more lines")
    status = "PASS" if r.returncode == 0 else "FAIL"
    log.result(status, name, f"{entry['cases']} cases, exit {r.returncode}, "
               f"{time.time() - t0:.1f} s: {summary}"
               + ("" if r.returncode == 0 else f"; {cmd}"))


def check_graphs(index, log, refs):
    """The generated f32 graphs against the Hugging Face model."""
    seen = set()
    for case in index["cases"]:
        if case["kind"] != "llama" or case["dtype"] != "f32" or \
                case["model"] in seen:
            continue
        seen.add(case["model"])
        name = f"graph {case['model']} (onnxruntime vs HF torch f32)"
        if (case["preset"], "f32") not in refs.torch_models:
            log.result("FAIL", name, "no torch model (fill failed)")
            continue
        inputs = C.inputs_path(case["model"], case["batch"], case["seq"],
                               refs.dist)
        try:
            ort_out = refs.onnxruntime(case["model"], inputs)
            hf = refs.torch(case["preset"], "f32", inputs)
            err = rel_err(ort_out, hf)
            log.result("PASS" if err <= F32_TOL else "FAIL", name,
                       f"rel err {err:.2e} (tol {F32_TOL:g})")
        except Exception as e:
            log.result("FAIL", name, f"{type(e).__name__}: {e}")


def run_case(case, log, refs, gpus, keep_dir, opts):
    name = f"{case['name']} ({case['dtype']}, tp{case['tp']} pp{case['pp']}, "\
           f"{case['batch']}x{case['seq']})"
    ranks = case["tp"] * case["pp"]
    if ranks > gpus:
        log.result("SKIP", name, f"needs {ranks} GPUs, {gpus} present")
        return
    if case.get("compile_error"):
        log.result("FAIL", name, "did not compile: " + case["compile_error"])
        return
    if case["reference"] == "torch" and not refs.torch_models:
        log.result("SKIP", name, "no torch reference (no GPU)")
        return
    if case["kind"] == "llama" and not refs.filled:
        log.result("SKIP", name, "weights are filled on the GPU only")
        return
    # A mutant reads its base's weights and inputs.
    base = C.weights_model(case)
    inputs = C.inputs_path(base, case["batch"], case["seq"], opts.dist)
    outputs = os.path.join(keep_dir, case["name"] + ".out.npz")
    cmd = RUN.format(weft_run=opts.weft_run, backend=opts.backend,
                     artifact=C.artifact_dir(case["name"], opts.dist),
                     inputs=inputs, outputs=outputs,
                     model_dir=C.model_dir(base, opts.dist))
    if ranks > 1 and opts.backend == "cuda":
        cmd += NPROC.format(nproc=ranks)
    t0 = time.time()
    try:
        r = subprocess.run(shlex.split(cmd), capture_output=True, text=True,
                           timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        log.result("FAIL", name, f"timed out after {RUN_TIMEOUT} s: {cmd}")
        return
    wall = time.time() - t0
    if r.returncode != 0:
        msg = (r.stderr or r.stdout).strip().splitlines()[-5:]
        log.result("FAIL", name, f"exit {r.returncode}: {cmd}\n      "
                   + "\n      ".join(msg))
        return
    try:
        got = np.load(outputs)
        got = got[got.files[0]] if len(got.files) == 1 else got["logits"]
        if case["reference"] == "ort":
            ref = refs.onnxruntime(case["model"], inputs)
            err = rel_err(got, ref)
            ok = err <= F32_TOL
            detail = f"rel err {err:.2e} (tol {F32_TOL:g}) vs onnxruntime"
        else:
            ref = refs.torch(case["preset"], "bf16", inputs)
            exact = refs.torch(case["preset"], "f32", inputs)
            ok, detail, _ = bf16_verdict(got, ref, exact)
            if case.get("mutation") and not np.isfinite(got).all():
                ok, detail = True, "non-finite outputs (a crash, not a check)"
            elif case.get("mutation"):
                # A wrong graph: the rule must tell it from the model.
                verdict = ("fails the bf16 rule, as it must" if not ok else
                           "PASSED the bf16 rule")
                detail = (f"mutation {case['mutation']} of {case['base']} "
                          f"{verdict}: {detail}")
                ok = not ok
            if case.get("mutation") and not np.isfinite(got).all():
                ok = False
    except Exception as e:
        log.result("FAIL", name, f"checking the outputs: "
                   f"{type(e).__name__}: {e}")
        return
    log.result("PASS" if ok else "FAIL", name, f"{detail}, {wall:.1f} s")


def run_generation(index, log, refs, opts, gpus):
    """generate_check.py's checks of every generation case, model by
    model (the one-GPU artifact first, the baseline of the others)."""
    by_model = {}
    for case in index.get("generation", []):
        by_model.setdefault(case["model"], []).append(case)
    for cases in by_model.values():
        names = [f"generate {case['name']}" for case in cases]
        model = refs.torch_models.get((cases[0]["preset"], "bf16"))
        if opts.backend != "cuda":
            for name in names:
                log.result("SKIP", name, "checked on the GPU only "
                           "(transformers on CUDA, weights filled there)")
        elif model is None or not refs.filled:
            for name in names:
                log.result("FAIL", name, "no torch reference (fill failed)")
        else:
            try:
                generate_check.check_model(
                    cases, generate_check.TorchReference(model), log, opts,
                    gpus)
            except Exception as e:  # every failure is reported, not raised
                log.result("FAIL", f"generate {cases[0]['model']}",
                           f"{type(e).__name__}: {e}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="*", metavar="SUBSTRING",
                   help="run only the cases whose name contains one of these")
    p.add_argument("--skip-kernel-tests", action="store_true",
                   help="skip the bundled kernel test binaries and "
                   "run_codegen_kernels.py")
    p.add_argument("--keep-outputs", metavar="DIR",
                   help="keep weft-run's output .npz files in DIR")
    p.add_argument("--dist", default=C.DIST,
                   help="what gpu-prepare and gpu-bundle made (dist/gpu)")
    p.add_argument("--weft-run", help="the runner (default DIST/bin/weft-run)")
    p.add_argument("--weft", help="the generate command (default "
                   "DIST/bin/weft-generate)")
    p.add_argument("--weft-serve", help="the serve command of the "
                   "generation checks (default DIST/bin/weft-serve)")
    p.add_argument("--backend", default="cuda", choices=["cuda", "cpu"],
                   help="cpu checks this script where there is no GPU: the "
                   "onnxruntime-referenced cases of the small models only, "
                   "ranks as threads")
    a = p.parse_args(argv)
    C.setup_gpu_env()
    index = C.read_index(a.dist)
    bin_dir = os.path.join(a.dist, "bin")
    a.weft_run = a.weft_run or os.path.join(bin_dir, "weft-run")
    a.weft = a.weft or os.path.join(bin_dir, "weft-generate")
    a.weft_serve = a.weft_serve or os.path.join(bin_dir, "weft-serve")
    if a.only:
        for key in ("cases", "generation"):
            index[key] = [c for c in index.get(key, [])
                          if any(s in c["name"] for s in a.only)]
    log = Log()
    start = time.time()
    gpus, card = gpu_count()
    log(f"gpu-test: commit {index['commit']}, {gpus} x {card}, backend "
        f"{a.backend}, target flags "
        f"{' '.join(index['target_flags']) or '(none)'}")
    if not os.access(a.weft_run, os.X_OK):
        log.result("FAIL", "weft-run", f"{a.weft_run} is missing: run "
                   "scripts/gpu-bundle on the build machine and carry dist/gpu")
    else:
        r = subprocess.run(["ldd", a.weft_run], capture_output=True, text=True)
        missing = [line.strip() for line in r.stdout.splitlines()
                   if "not found" in line]
        log.result("FAIL" if missing else "PASS", "weft-run libraries",
                   "; ".join(missing) or "all found")
    refs = References(log, a.dist)
    if a.backend == "cpu":
        gpus = max(C.LAYOUTS[x][0] * C.LAYOUTS[x][1] for x in C.LAYOUTS)
        if not a.skip_kernel_tests:
            log.result("SKIP", "codegen kernels", "needs a GPU")
    elif not gpus:
        log.result("FAIL", "GPUs", "no CUDA device visible")
    else:
        # A broken torch or transformers fails the steps that need them,
        # not the whole run.
        try:
            fill_models(index, log, refs)
        except Exception as e:
            log.result("FAIL", "fill", f"{type(e).__name__}: {e}")
        if not a.skip_kernel_tests:
            run_kernel_tests(log, gpus, bin_dir)
            run_codegen_kernels(index, log, a.dist)
        check_graphs(index, log, refs)
    keep = a.keep_outputs or os.path.join("/tmp", "weft-gpu-test")
    os.makedirs(keep, exist_ok=True)
    for case in index["cases"]:
        run_case(case, log, refs, gpus, keep, a)
    run_generation(index, log, refs, a, gpus)
    counts = {s: sum(r["status"] == s for r in log.results)
              for s in ("PASS", "FAIL", "SKIP")}
    log(f"gpu-test: {time.time() - start:.0f} s")
    log(f"{counts['PASS']} passed, {counts['FAIL']} failed, "
        f"{counts['SKIP']} skipped")
    log.save()
    return 1 if counts["FAIL"] else 0


if __name__ == "__main__":
    sys.exit(main())
