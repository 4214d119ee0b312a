#!/usr/bin/env python3
"""Prepares the GPU machine's test and benchmark inputs on the build machine
(scripts/gpu-prepare runs it): generates the models' graphs, compiles every
case of scripts/gpu/cases.py with `weft compile` into dist/gpu/artifacts/,
writes the input .npz files and dist/gpu/cases.json. Weights of the
make_llama.py graphs are not written: fill_weights.py makes them there.
weft-codegen-gpu-check (built beside weft with the CUDA toolkit) writes the
generated ELEMENTWISE kernels' cases into dist/gpu/codegen-check for
test/gpu/run_codegen_kernels.py (--no-codegen-check leaves them out).
Generation artifacts (`weft compile --generate`: the tiny Llama for
generate_check.py, the 1b and 8b shapes for bench/decode.py and, with
serving buckets, for bench/serve_gpu.py) are compiled too and listed under
`generation`, `generation_bench` and `generation_serve`.

  prepare.py [--weft build/bin/weft] [--no-bench] [--check-cpu [SUBSTRING ...]]
             [--weft-run build/bin/weft-run] [--gen-max-seq N]
             [--codegen-check build/bin/weft-codegen-gpu-check]
             [--no-codegen-check] [--full-node] [--multi-gpu [tiny]]

--multi-gpu adds the generation artifacts of several GPUs (cases.py
multi_gpu_cases: the tiny model at tp 2, tp 4, pp 2 and tp 2 x pp 2, the
8b's benchmark and serving artifacts at tp 1, 2 and 4, also with
--no-bench) compiled with `--tp N --pp M` beside `--generate`, and the
planner's decode predictions for the 8b at those tp degrees (`weft plan
... --json`, cases.json `planner_decode`), which bench/decode.py --tp sets
beside its measurements. scripts/gpu-multi runs them on a machine of 2 or
4 GPUs. `--multi-gpu tiny` makes only the tiny model's, for trying
generate_check.py and fault_check.py on CPU ranks (--backend cpu).

--check-cpu runs every f32 case that can run here (the small models, and
the tiny Llama with numpy random weights in a scratch directory, read via
weft-run --model-dir) on the CPU backend against onnxruntime, and the tiny
bf16 Llama against onnxruntime's f32 run of the same bf16-rounded weights
under check_against_ort.py's bf16 rule (twice the error of that run in
bf16, lowp_reference.py): a check that the artifacts are sound before they
travel. The tiny bf16 mutants (cases.py MUTANT_BASES) must fail that rule
against the unmutated reference. Substrings after --check-cpu limit it to
the cases whose name contains one.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import cases as C  # noqa: E402

MODELS_DIR = os.path.join(ROOT, "test", "models")
E2E_DIR = os.path.join(ROOT, "test", "e2e")


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def target_flags(weft):
    """--target sm_90a where this weft compile has the option."""
    r = run([weft, "compile", "--help"])
    has = re.search(r"^\s*--target\b", r.stdout + r.stderr, re.MULTILINE)
    return ["--target", "sm_90a"] if has else []


def generate_models(out, bench):
    """Every model the cases use, as out/models/NAME/model.onnx."""
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        r = run([py, os.path.join(MODELS_DIR, "make_transformers.py"), tmp,
                 "--only", *C.SMALL])
        if r.returncode:
            raise SystemExit("make_transformers.py failed:\n" + r.stderr)
        for name in C.SMALL:
            d = C.model_dir(name, out)
            os.makedirs(d)
            shutil.move(os.path.join(tmp, name + ".onnx"),
                        os.path.join(d, "model.onnx"))
    llama = {m: (p, d) for m, p, d, *_ in C.LLAMA}
    if bench:
        for model, preset in C.BENCH_PRESET.items():
            llama[model] = (preset, "bf16")
    mutants = {name: (preset, "bf16", mutation)
               for name, _, preset, mutation in C.mutant_models()}
    jobs = [(name, preset, dtype, None)
            for name, (preset, dtype) in sorted(llama.items())]
    jobs += [(name, preset, dtype, m)
             for name, (preset, dtype, m) in sorted(mutants.items())]
    for name, preset, dtype, mutation in jobs:
        r = run([py, os.path.join(MODELS_DIR, "make_llama.py"), "--preset",
                 preset, "--dtype", dtype, "-o", C.model_dir(name, out)]
                + (["--mutate", mutation] if mutation else []))
        if r.returncode:
            raise SystemExit(f"make_llama.py {preset} {dtype} {mutation or ''}"
                             f" failed:\n" + r.stderr)
        print(r.stdout.strip())


def vocab_of(model_path):
    import onnx
    m = onnx.load(model_path, load_external_data=False)
    return m.graph.output[0].type.tensor_type.shape.dim[2].dim_value, \
        [i.name for i in m.graph.input]


def write_inputs(model, batch, seq, out):
    """Seeded input_ids (and an attention_mask with padding, for BERT)."""
    path = C.inputs_path(model, batch, seq, out)
    if os.path.exists(path):
        return path
    vocab, names = vocab_of(os.path.join(C.model_dir(model, out),
                                         "model.onnx"))
    rng = np.random.default_rng(batch * 1000 + seq)
    feeds = {"input_ids": rng.integers(0, min(vocab, 32000), (batch, seq),
                                       dtype=np.int64)}
    if "attention_mask" in names:
        mask = np.ones((batch, seq), np.int64)
        mask[0, seq // 2:] = 0
        feeds["attention_mask"] = mask
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez(path, **feeds)
    return path


def compile_case(weft, flags, case, out):
    """weft compile of one case; returns (argv, error or None)."""
    model = os.path.join(C.model_dir(case["model"], out), "model.onnx")
    art = C.artifact_dir(case["name"], out)
    os.makedirs(os.path.dirname(art), exist_ok=True)  # weft makes no parents
    argv = [weft, "compile", model, "--dim", f"batch={case['batch']}",
            "--dim", f"seq={case['seq']}", "--tp", str(case["tp"]),
            "--pp", str(case.get("pp", 1)), "--topology",
            case.get("topology", C.TOPOLOGY),
            *flags, "-o", art, "--quiet"]
    if case.get("dtype") == "bf16":
        # A bf16 graph keeps Hugging Face's f32 islands (the norms'
        # statistics); --dtype bf16 computes the rest in bf16 as torch does.
        argv[-3:-3] = ["--dtype", "bf16"]
    r = run(argv)
    shown = " ".join(os.path.relpath(a, ROOT) if a.startswith(ROOT) else a
                     for a in argv)
    if r.returncode:
        return shown, (r.stderr.strip() or f"exit {r.returncode}")
    return shown, None


def compile_generation(weft, flags, case, out):
    """weft compile --generate of one generation case; returns (argv, error
    or None)."""
    model = os.path.join(C.model_dir(case["model"], out), "model.onnx")
    art = C.artifact_dir(case["name"], out)
    os.makedirs(os.path.dirname(art), exist_ok=True)
    join = lambda xs: ",".join(str(x) for x in xs)
    argv = [weft, "compile", model, "--generate",
            "--max-seq", str(case["max_seq"]),
            "--prompt-buckets", join(case["prompt_buckets"]),
            "--batch-buckets", join(case["batch_buckets"]),
            "--block-size", str(case["block_size"]),
            *(["--prefill-rows", str(case["prefill_rows"])]
              if "prefill_rows" in case else []),
            # docs/generation.md: `weft compile --generate ... [--tp N]
            # [--pp M]`; the topology (4 GPUs of a node) holds tp 4.
            *(["--tp", str(case["tp"])] if case.get("tp", 1) > 1 else []),
            *(["--pp", str(case["pp"])] if case.get("pp", 1) > 1 else []),
            "--dtype", case["dtype"], "--topology", C.TOPOLOGY,
            *flags, "-o", art, "--quiet"]
    r = run(argv)
    shown = " ".join(os.path.relpath(a, ROOT) if a.startswith(ROOT) else a
                     for a in argv)
    if r.returncode:
        return shown, (r.stderr.strip() or f"exit {r.returncode}")
    return shown, None


def plan_decode(weft, out):
    """The planner's decode time per token of GEN_MULTI_MODEL at each tp of
    bench/decode.py --tp, on each PLANNER_TOPOLOGIES topology: (entries for
    cases.json `planner_decode`, errors)."""
    model = os.path.join(C.model_dir(C.GEN_MULTI_MODEL, out), "model.onnx")
    entries, errors = [], []
    for topology in sorted(set(C.PLANNER_TOPOLOGIES.values())):
        for tp in [1] + C.GEN_MULTI_TP:
            for batch in C.PLANNER_BATCHES:
                argv = [weft, "plan", model, "--topology", topology,
                        "--batch", str(batch), "--prompt",
                        str(C.PLANNER_PROMPT), "--gen", str(C.PLANNER_GEN),
                        "--dtype", "bf16", "--tp", str(tp), "--pp", "1",
                        "--dp", "1", "--microbatches", "1", "--json"]
                shown = " ".join(os.path.relpath(a, ROOT)
                                 if a.startswith(ROOT) else a for a in argv)
                r = run(argv)
                try:
                    layout = json.loads(r.stdout)["layouts"][0]
                    ok = r.returncode == 0 and layout["fits"]
                except (ValueError, KeyError, IndexError):
                    ok = False
                if not ok:
                    errors.append(f"{shown}: exit {r.returncode}: "
                                  + (r.stderr.strip() or r.stdout[:300]))
                    continue
                entries.append(dict(
                    topology=topology, model=C.GEN_MULTI_MODEL, tp=tp,
                    batch=batch, prompt=C.PLANNER_PROMPT, gen=C.PLANNER_GEN,
                    decode_ms=layout["decode_s_per_token"] * 1e3,
                    command=shown))
    return entries, errors


def prepare_codegen_check(tool, out):
    """weft-codegen-gpu-check's cases (the kernel module as cubin and PTX,
    random inputs, the CPU interpreter's outputs, cases.json) into
    out/codegen-check; returns (the cases.json entry, error or None)."""
    where = C.codegen_check_dir(out)
    if not os.access(tool, os.X_OK):
        return None, (f"{tool} is not built (it is built with the CUDA "
                      "toolkit, WEFT_ENABLE_CUDA; --no-codegen-check leaves "
                      "the codegen kernel check out)")
    r = run([tool, where])
    if r.returncode:
        return None, (f"{tool} failed (exit {r.returncode}): "
                      + (r.stderr or r.stdout).strip())
    with open(os.path.join(where, "cases.json")) as f:
        cases = len(json.load(f))
    return {"dir": os.path.basename(where), "cases": cases}, None


def tree_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f))
               for d, _, files in os.walk(path) for f in files)


def rel_err(got, ref):
    return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30))


def check_cpu(weft_run, index, out, only=None):
    """Runs the f32-checkable cases, the tiny bf16 Llama and its mutants on
    the CPU backend here."""
    sys.path.insert(0, E2E_DIR)
    import check_against_ort as cao
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        # The tiny Llama graphs with numpy weights (same seed for both
        # dtypes: bf16 holds the f32 values rounded; a mutant declares its
        # base's parameters and reads its base's weights).
        weights = {}
        for model in ("tiny_f32", "tiny_bf16"):
            d = os.path.join(scratch, model)
            dtype = model.split("_")[1]
            r = run([sys.executable, os.path.join(MODELS_DIR, "make_llama.py"),
                     "--preset", "tiny", "--dtype", dtype, "-o", d,
                     "--write-weights", "--seed", "7"])
            if r.returncode:
                raise SystemExit(r.stderr)
            weights[model] = d
        # f32 weights equal to the bf16 ones, for the bf16 reference.
        ref_bf16 = os.path.join(scratch, "tiny_f32_rounded")
        shutil.copytree(weights["tiny_f32"], ref_bf16)
        raw = np.fromfile(os.path.join(ref_bf16, "model.weights"), np.uint32)
        raw = (raw + 0x7FFF + ((raw >> 16) & 1)) & 0xFFFF0000
        raw.tofile(os.path.join(ref_bf16, "model.weights"))
        refs = {}
        for case in index["cases"]:
            if case.get("compile_error"):
                continue
            if only and not any(x in case["name"] for x in only):
                continue
            if case["kind"] == "llama" and case["preset"] != "tiny":
                continue
            base = C.weights_model(case)
            if case["kind"] == "small":
                model_dir, ref_dir = C.model_dir(case["model"], out), None
            else:
                model_dir = weights[base]
                ref_dir = ref_bf16 if case["dtype"] == "bf16" else model_dir
            ref_dir = ref_dir or model_dir
            inputs = C.inputs_path(base, case["batch"], case["seq"], out)
            got_path = os.path.join(scratch, case["name"] + ".npz")
            r = run([weft_run, C.artifact_dir(case["name"], out), "--inputs",
                     inputs, "--outputs", got_path, "--model-dir", model_dir])
            if r.returncode:
                results.append((case["name"], False, r.stderr.strip()))
                continue
            key = (ref_dir, inputs, case["dtype"])
            feeds = dict(np.load(inputs))
            if key not in refs:
                refs[key] = cao.Reference(os.path.join(ref_dir, "model.onnx"),
                                          feeds, case["dtype"], None)
            ref = refs[key]
            name = sorted(ref.f32)[0]
            got = np.load(got_path)[name].astype(np.float32)
            ok, text, ratio = ref.check(name, got)
            if case.get("mutation"):
                ok = not ok
                verdict = ("fails the rule, as it must" if ok else
                           "PASSED the rule")
                text = (f"mutation {case['mutation']}: error / limit "
                        f"{ratio:.2f}, {verdict}; {text}")
            results.append((case["name"], ok, text))
    failed = 0
    for name, ok, detail in results:
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'} cpu {name}: {detail}")
    print(f"cpu check: {len(results) - failed} passed, {failed} failed")
    return failed == 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weft", default=os.path.join(ROOT, "build", "bin", "weft"))
    p.add_argument("--weft-run",
                   default=os.path.join(ROOT, "build", "bin", "weft-run"))
    p.add_argument("--out", default=os.path.join(ROOT, C.DIST))
    p.add_argument("--no-bench", action="store_true",
                   help="skip the benchmark artifacts (1b and 8b, bf16)")
    p.add_argument("--full-node", action="store_true",
                   help="also the 8-GPU layouts of the 8b model (tp 8, "
                   "tp 4 x pp 2, tp 2 x pp 4), for an 8-GPU machine")
    p.add_argument("--multi-gpu", nargs="?", const="all",
                   choices=["all", "tiny"],
                   help="also the generation artifacts of several GPUs (the "
                   "tiny model at tp 2, tp 4, pp 2, tp 2 x pp 2; the 8b's "
                   "benchmark and serving artifacts at tp 1, 2 and 4) and "
                   "the planner's tp decode predictions, for "
                   "scripts/gpu-multi on 2 or 4 GPUs; `tiny`: only the tiny "
                   "model's")
    p.add_argument("--check-cpu", nargs="*", metavar="SUBSTRING",
                   help="run the f32-checkable cases, the tiny bf16 Llama "
                   "and its mutants on the CPU backend (those whose name "
                   "contains a SUBSTRING, if given)")
    p.add_argument("--codegen-check", metavar="PATH",
                   help="weft-codegen-gpu-check (default: beside --weft)")
    p.add_argument("--no-codegen-check", action="store_true",
                   help="leave out the generated kernels' cases for "
                   "test/gpu/run_codegen_kernels.py")
    p.add_argument("--gen-max-seq", type=int, metavar="N",
                   help="compile the 1b and 8b generation artifacts for N "
                   f"tokens instead of {C.GEN_BENCH_MAX_SEQ} (prompt buckets "
                   "above N are dropped)")
    a = p.parse_args(argv)
    for tool in [a.weft] + ([a.weft_run] if a.check_cpu is not None
                            else []):
        if not os.access(tool, os.X_OK):
            p.error(f"{tool}: not an executable (build weft first)")
    start = time.time()
    out = os.path.abspath(a.out)
    for sub in ("models", "artifacts", "inputs"):
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
    shutil.rmtree(C.codegen_check_dir(out), ignore_errors=True)
    os.makedirs(out, exist_ok=True)
    flags = target_flags(a.weft)
    generate_models(out, not a.no_bench or a.full_node or
                    a.multi_gpu == "all")
    index = {"topology": C.TOPOLOGY, "target_flags": flags,
             "commit": run(["git", "-C", ROOT, "rev-parse", "--short",
                            "HEAD"]).stdout.strip(),
             "cases": C.test_cases(),
             "bench": [] if a.no_bench else C.bench_cases()}
    index["generation"] = C.generation_cases()
    index["generation_bench"] = [] if a.no_bench else C.generation_cases(
        bench=True, bench_max_seq=a.gen_max_seq)
    index["generation_serve"] = [] if a.no_bench else C.serve_cases()
    if a.full_node:
        tests, bench = C.full_node_cases()
        index["cases"] += tests
        index["bench"] += bench
    if a.multi_gpu:
        extra_cases = C.multi_gpu_cases(a.gen_max_seq)
        if a.multi_gpu == "tiny":
            extra_cases = {"generation": extra_cases["generation"]}
        for key, extra in extra_cases.items():
            have = {c["name"] for c in index[key]}
            index[key] += [c for c in extra if c["name"] not in have]
    failed = 0
    compiled = {}  # a full-node artifact serves a test and a benchmark case
    for case in index["cases"] + index["bench"]:
        write_inputs(C.weights_model(case), case["batch"], case["seq"], out)
        if case["name"] in compiled:
            case["compile"], err = compiled[case["name"]]
            if err:
                case["compile_error"] = err
            continue
        t0 = time.time()
        case["compile"], err = compile_case(a.weft, flags, case, out)
        compiled[case["name"]] = (case["compile"], err)
        if err:
            case["compile_error"] = err
            failed += 1
        print(f"{'FAIL' if err else 'ok  '} compile {case['name']} "
              f"({time.time() - t0:.1f} s)" + (f": {err}" if err else ""),
              flush=True)
    for case in (index["generation"] + index["generation_bench"] +
                 index["generation_serve"]):
        t0 = time.time()
        case["compile"], err = compile_generation(a.weft, flags, case, out)
        size = ""
        if err:
            case["compile_error"] = err
            failed += 1
        else:  # no weights travel: plans (rotary tables in them), kernels
            mib = tree_bytes(C.artifact_dir(case["name"], out)) / 2**20
            size = f", {mib:.2f} MiB"
        print(f"{'FAIL' if err else 'ok  '} compile {case['name']} "
              f"({time.time() - t0:.1f} s{size})"
              + (f": {err}" if err else ""), flush=True)
    if a.multi_gpu == "all":
        t0 = time.time()
        index["planner_decode"], errors = plan_decode(a.weft, out)
        failed += len(errors)
        for err in errors:
            print(f"FAIL plan {err}", flush=True)
        print(f"{'FAIL' if errors else 'ok  '} plan: "
              f"{len(index['planner_decode'])} decode predictions "
              f"({time.time() - t0:.1f} s)", flush=True)
    codegen_ok = True
    if a.no_codegen_check:
        index["codegen_check"] = {"skipped": "--no-codegen-check"}
    else:
        t0 = time.time()
        tool = a.codegen_check or os.path.join(os.path.dirname(a.weft),
                                               "weft-codegen-gpu-check")
        entry, err = prepare_codegen_check(tool, out)
        index["codegen_check"] = entry or {"error": err}
        codegen_ok = not err
        detail = err or (f"{entry['cases']} cases, "
                         f"{tree_bytes(C.codegen_check_dir(out)) / 2**20:.1f}"
                         " MiB")
        print(f"{'FAIL' if err else 'ok  '} codegen check "
              f"({time.time() - t0:.1f} s): {detail}", flush=True)
    C.write_index(os.path.join(out, "cases.json"), index)
    size = tree_bytes(out)
    generation = (len(index["generation"]) + len(index["generation_bench"]) +
                  len(index["generation_serve"]))
    print(f"{out}: {len(index['cases'])} test, {len(index['bench'])} "
          f"benchmark and {generation} generation artifacts, "
          f"{failed} failed to compile; "
          f"{size / 2**20:.1f} MiB in all ({time.time() - start:.0f} s); "
          f"target flags: {' '.join(flags) or '(none)'}")
    ok = failed == 0 and codegen_ok
    if a.check_cpu is not None:
        ok = check_cpu(a.weft_run, index, out, a.check_cpu) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
