#!/usr/bin/env python3
"""Checks `weft compile` numerically against onnxruntime.

  python check_against_ort.py MODEL.onnx --dim batch=2 --dim seq=12 \
      [--emit import|mlir|artifact] [--dtype f32|f16|bf16] [--tol T]
      [--seed 0] [--keep DIR] [--nproc] [--reference REF.onnx]
      [--expect-mismatch] [--mutate NAME,...|all]

Makes random valid inputs for the model (token ids below the vocabulary size,
read from the embedding table the ids index; an attention_mask of ones with
some zeros on the right for padding), runs the model in onnxruntime, compiles
it with `weft compile` (the binary named by $WEFT, else `weft` on PATH),
evaluates the printed module with weft_eval.py (or, with --emit artifact,
writes an artifact and runs it with `weft-run`, named by $WEFT_RUN; with
--nproc, each rank as a process, `weft-run --nproc TPxPPxDP`, whose outputs
must equal bit for bit those of the ranks as threads), and compares every
output with the reference by two relative errors:

    max   = max|out - ref| / max|ref|
    rms   = ||out - ref||_2 / ||ref||_2

In f32 the max error must be <= --tol (default 1e-4). In bf16 and f16 the
tolerance is derived from the precision itself (docs/testing.md): the
reference is also run in that precision (lowp_reference.py: onnxruntime on
a copy of the model whose parameters and node outputs are rounded to bf16
or f16), its own errors e_ref against the f32 run are measured, and weft's
errors may be at most LOWP_FACTOR times them (each never below 1e-4):

    max <= LOWP_FACTOR * e_ref(max)   and   rms <= LOWP_FACTOR * e_ref(rms)

--tol replaces that rule with a fixed bound on the max error. Prints each
output's errors and limits; exits 1 on a mismatch.

--reference REF.onnx takes the reference (f32 and low precision) from REF
instead of MODEL. --expect-mismatch inverts the verdict: exit 0 only when
the check fails. --mutate compiles instead each named variant of MODEL
that test/e2e/mutate.py writes ("all": every one that applies) and checks
it against MODEL: each must fail the check (its error above the limit),
and must pass it against its own reference (weft computed the variant
faithfully, so the check, not the compile, told them apart); one line per
variant, exit 1 if any variant passed the check against MODEL.
"""

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lowp_reference  # noqa: E402
import weft_eval  # noqa: E402

F32_TOL = 1e-4
# weft's errors in bf16 and f16 may be this many times the low-precision
# reference's own (docs/testing.md: how it was chosen).
LOWP_FACTOR = 2.0

_ONNX_TO_NP = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16,
               6: np.int32, 7: np.int64, 9: np.bool_, 10: np.float16,
               11: np.float64, 12: np.uint32, 13: np.uint64}

# Ops that carry token ids through unchanged in value (so a Gather of a
# table by their output is still an embedding lookup by the ids).
_ID_PASSTHROUGH = {"Reshape", "Cast", "Unsqueeze", "Squeeze", "Flatten",
                   "Identity", "View", "Expand"}


def find_vocab(model, ids_name):
    """The first dim of the initializer a Gather indexes with the ids."""
    inits = {t.name: t for t in model.graph.initializer}
    consts = {}
    for n in model.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    consts[n.output[0]] = a.t
    tables = dict(inits)
    tables.update(consts)
    reach = {ids_name}
    changed = True
    while changed:
        changed = False
        for n in model.graph.node:
            if n.op_type in _ID_PASSTHROUGH and n.input and n.input[0] in reach:
                for o in n.output:
                    if o not in reach:
                        reach.add(o)
                        changed = True
    sizes = []
    for n in model.graph.node:
        if (n.op_type == "Gather" and len(n.input) >= 2 and
                n.input[1] in reach and n.input[0] in tables):
            axis = 0
            for a in n.attribute:
                if a.name == "axis":
                    axis = a.i
            if axis == 0 and len(tables[n.input[0]].dims) == 2:
                sizes.append(int(tables[n.input[0]].dims[0]))
    return min(sizes) if sizes else None


def make_inputs(model, dims, rng):
    feeds = {}
    for inp in model.graph.input:
        tt = inp.type.tensor_type
        shape = []
        for d in tt.shape.dim:
            if d.dim_param:
                if d.dim_param not in dims:
                    raise SystemExit("input '%s' has dim '%s': bind it with "
                                     "--dim %s=N" % (inp.name, d.dim_param,
                                                     d.dim_param))
                shape.append(dims[d.dim_param])
            else:
                shape.append(d.dim_value)
        dtype = _ONNX_TO_NP.get(tt.elem_type)
        if dtype is None:
            raise SystemExit("unsupported input dtype %d" % tt.elem_type)
        name = inp.name
        if "mask" in name:
            # ones, then padding zeros on the right of some rows (never all)
            m = np.ones(shape, dtype=dtype)
            if len(shape) == 2:
                b, s = shape
                for r in range(b):
                    pad = (r * max(1, s // 4)) % s
                    if pad:
                        m[r, s - pad:] = 0
            feeds[name] = m
        elif np.issubdtype(dtype, np.integer):
            hi = None
            if "ids" in name or "input" in name:
                hi = find_vocab(model, name)
            if hi is None:
                hi = 2 if "type" in name else 256
            feeds[name] = rng.integers(0, hi, size=shape).astype(dtype)
        elif dtype == np.bool_:
            feeds[name] = np.ones(shape, dtype=np.bool_)
        else:
            feeds[name] = rng.standard_normal(shape).astype(dtype)
    return feeds


def run_ort(path, feeds):
    """Runs a model (a path, or a ModelProto) in onnxruntime on the CPU."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if not isinstance(path, str):
        path = path.SerializeToString()
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def weft_binary():
    w = os.environ.get("WEFT") or shutil.which("weft")
    if not w:
        raise SystemExit("cannot find weft: set $WEFT or put it on PATH")
    return w


def weft_run_binary():
    w = os.environ.get("WEFT_RUN") or shutil.which("weft-run")
    if not w:
        raise SystemExit("cannot find weft-run: set $WEFT_RUN or put it on PATH")
    return w


def run_artifact(args, feeds, work, model=None):
    """Compiles an artifact of `model` (default args.model) and runs it;
    returns the outputs or None."""
    art = os.path.join(work, "model.weft")
    cmd = [weft_binary(), "compile", model or args.model, "--quiet", "-o", art,
           "--dtype", args.dtype, "--tp", str(args.tp), "--pp", str(args.pp),
           "--dp", str(args.dp), "--microbatches", str(args.microbatches),
           "--topology", args.topology]
    for d in args.dim:
        cmd += ["--dim", d]
    if args.weft_launch:
        cmd += ["--target", "cpu"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print("FAIL: weft compile exited %d:\n%s%s" % (r.returncode, r.stdout,
                                                       r.stderr))
        return None
    ins, outs = os.path.join(work, "inputs.npz"), os.path.join(work, "out.npz")
    np.savez(ins, **feeds)
    if args.weft_launch:
        return run_launch_script(args, art, ins, outs, work)
    # $WEFT_LAUNCH (e.g. "mpirun -np 2") or --nproc runs the ranks as
    # processes.
    launch = os.environ.get("WEFT_LAUNCH", "").split()
    nproc = []
    if args.nproc:
        nproc = ["--nproc", str(args.tp * args.pp * args.dp)]
    r = subprocess.run(launch + [weft_run_binary(), art, "--inputs", ins,
                                 "--outputs", outs] + nproc,
                       capture_output=True, text=True)
    if r.returncode != 0:
        print("FAIL: weft-run exited %d:\n%s%s" % (r.returncode, r.stdout,
                                                   r.stderr))
        return None
    with np.load(outs) as z:
        got = {k: z[k] for k in z.files}
    if nproc:
        threads = os.path.join(work, "out_threads.npz")
        r = subprocess.run([weft_run_binary(), art, "--inputs", ins,
                            "--outputs", threads], capture_output=True,
                           text=True)
        if r.returncode != 0:
            print("FAIL: weft-run (ranks as threads) exited %d:\n%s%s"
                  % (r.returncode, r.stdout, r.stderr))
            return None
        with np.load(threads) as z:
            for k in z.files:
                if z[k].tobytes() != got[k].tobytes():
                    print("FAIL: output '%s' of the ranks as processes differs "
                          "from that of the ranks as threads" % k)
                    return None
        print("ok: outputs of %d processes equal those of the threads"
              % (args.tp * args.pp * args.dp))
    return got


def run_launch_script(args, art, ins, outs, work):
    """Writes the launch with `weft launch ART --command run ARGS` and runs
    it with $WEFT_LAUNCH_SUBMIT (default bash; e.g. "sbatch --wait")."""
    script = os.path.join(work, "launch.sh")
    weft = os.path.abspath(shutil.which(weft_binary()) or weft_binary())
    cmd = ([weft, "launch", art, "-o", script, "--command", "run",
            "--weft", weft] + shlex.split(args.weft_launch) +
           ["--", "--inputs", ins, "--outputs", outs])
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print("FAIL: weft launch exited %d:\n%s" % (r.returncode, r.stderr))
        return None
    submit = shlex.split(os.environ.get("WEFT_LAUNCH_SUBMIT", "bash"))
    r = subprocess.run(submit + [script], capture_output=True, text=True,
                       cwd=work, timeout=600)
    if r.returncode != 0 or not os.path.exists(outs):
        print("FAIL: %s %s exited %d:\n%s%s" % (" ".join(submit), script,
                                                r.returncode, r.stdout,
                                                r.stderr))
        return None
    print("ok: ran the launch of weft launch %s" % args.weft_launch)
    with np.load(outs) as z:
        return {k: z[k] for k in z.files}


def rel_error(out, ref):
    out = np.asarray(out, np.float64)
    ref = np.asarray(ref, np.float64)
    if out.shape != ref.shape:
        return float("inf"), "shape %s vs reference %s" % (out.shape, ref.shape)
    nan_o, nan_r = np.isnan(out), np.isnan(ref)
    if (nan_o != nan_r).any():
        return float("inf"), "%d NaNs where the reference has %d" % (
            nan_o.sum(), nan_r.sum())
    ok = ~nan_r
    if not ok.any():
        return 0.0, ""
    inf_o, inf_r = np.isinf(out), np.isinf(ref)
    if (inf_o != inf_r).any() or (out[inf_r] != ref[inf_r]).any():
        return float("inf"), "infinities differ"
    fin = ok & ~inf_r
    if not fin.any():
        return 0.0, ""
    with np.errstate(invalid="ignore"):
        diff = np.where(fin, np.abs(out - ref), -1.0)
    worst = diff.max()
    scale = np.abs(ref[fin]).max()
    err = worst / scale if scale > 0 else worst
    where = np.unravel_index(np.argmax(diff), ref.shape)
    return float(err), "max |diff| %.3g at %s, max |ref| %.3g" % (
        worst, tuple(int(i) for i in where), scale)


def rms_error(out, ref):
    """||out - ref||_2 / ||ref||_2 over the reference's finite entries
    (rel_error reports NaNs, infinities and shapes)."""
    out = np.asarray(out, np.float64)
    ref = np.asarray(ref, np.float64)
    if out.shape != ref.shape:
        return float("inf")
    fin = np.isfinite(ref)
    if not np.isfinite(out[fin]).all():
        return float("inf")
    norm = np.sqrt((ref[fin] ** 2).sum())
    diff = np.sqrt(((out[fin] - ref[fin]) ** 2).sum())
    return float(diff / norm) if norm > 0 else float(diff)


class Reference:
    """The reference outputs of one model on the inputs, in f32 and, for a
    bf16 or f16 check, in that precision, with the limits they give."""

    def __init__(self, path, feeds, dtype, tol):
        import onnx
        self.path, self.dtype, self.tol = path, dtype, tol
        self.f32 = run_ort(path, feeds)
        self.lowp = None
        if dtype != "f32" and tol is None:
            model = onnx.load(path)
            self.lowp = run_ort(lowp_reference.lowp_model(model, dtype), feeds)

    def limits(self, name):
        """(max limit, rms limit or None, text saying where they come from)."""
        if self.lowp is None:
            tol = F32_TOL if self.tol is None else self.tol
            return tol, None, "tol %.0e" % tol
        e_max, _ = rel_error(self.lowp[name], self.f32[name])
        e_rms = rms_error(self.lowp[name], self.f32[name])
        lim_max = max(LOWP_FACTOR * e_max, F32_TOL)
        lim_rms = max(LOWP_FACTOR * e_rms, F32_TOL)
        return lim_max, lim_rms, ("%s reference's own %.2e / %.2e" %
                                  (self.dtype, e_max, e_rms))

    def check(self, name, out):
        """(passed, text, error / limit: the largest of the ratios) for one
        output."""
        err, detail = rel_error(out, self.f32[name])
        lim_max, lim_rms, where = self.limits(name)
        if lim_rms is None:
            ok = err <= lim_max
            return ok, "rel error %.3e (%s) %s" % (err, where, detail), \
                err / lim_max
        rms = rms_error(out, self.f32[name])
        ok = err <= lim_max and rms <= lim_rms
        return ok, ("error max %.3e rms %.3e (limits %.2e / %.2e = %g x %s) "
                    "%s" % (err, rms, lim_max, lim_rms, LOWP_FACTOR, where,
                            detail)), max(err / lim_max, rms / lim_rms)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--dim", action="append", default=[],
                   help="NAME=VALUE binding of a symbolic input dim")
    p.add_argument("--emit", choices=["import", "mlir", "artifact"],
                   default="mlir")
    p.add_argument("--dtype", choices=["f32", "f16", "bf16"], default="f32",
                   help="compute type (with --emit artifact)")
    p.add_argument("--tp", type=int, default=1,
                   help="tensor-parallel degree (with --emit artifact)")
    p.add_argument("--pp", type=int, default=1)
    p.add_argument("--dp", type=int, default=1)
    p.add_argument("--microbatches", type=int, default=1)
    p.add_argument("--topology", default="h100x4",
                   help="topology preset or file (with --emit artifact)")
    p.add_argument("--nproc", action="store_true",
                   help="run each rank as a process (weft-run --nproc)")
    p.add_argument("--weft-launch", metavar="ARGS",
                   help="(with --emit artifact) compile for the CPU and run "
                   "the script of `weft launch ARTIFACT ARGS --command run`, "
                   "with $WEFT_LAUNCH_SUBMIT (default bash)")
    p.add_argument("--tol", type=float,
                   help="fixed bound on the max error (default 1e-4 in f32; "
                   "in bf16 and f16 the derived rule)")
    p.add_argument("--reference", metavar="REF.onnx",
                   help="take the reference from this model")
    p.add_argument("--expect-mismatch", action="store_true",
                   help="exit 0 only when the check fails")
    p.add_argument("--mutate", metavar="NAME,...|all",
                   help="check mutate.py's variants of MODEL against MODEL: "
                   "each must fail")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", metavar="DIR",
                   help="write inputs, module, reference and outputs here")
    args = p.parse_args(argv)

    import onnx
    dims = {}
    for d in args.dim:
        k, _, v = d.partition("=")
        dims[k] = int(v)
    model = onnx.load(args.model, load_external_data=False)
    feeds = make_inputs(model, dims, np.random.default_rng(args.seed))
    ref = Reference(args.reference or args.model, feeds, args.dtype, args.tol)

    work = args.keep or tempfile.mkdtemp(prefix="weft-e2e-")
    os.makedirs(work, exist_ok=True)
    try:
        if args.mutate:
            return check_mutations(args, feeds, ref, work)
        got = weft_outputs(args, args.model, feeds, work)
        if got is None:
            return 1
        if args.keep:
            np.savez(os.path.join(work, "inputs.npz"), **feeds)
            np.savez(os.path.join(work, "reference.npz"), **ref.f32)
            np.savez(os.path.join(work, "outputs.%s.npz" % args.emit), **got)
        ok, _ = compare(args, got, ref)
        if args.expect_mismatch:
            print("%s: %s %s the check" % (
                "ok" if not ok else "FAIL", os.path.basename(args.model),
                "fails" if not ok else "passed"))
            return 0 if not ok else 1
        return 0 if ok else 1
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def weft_outputs(args, path, feeds, work):
    """weft's outputs for the model at `path` (an artifact run by weft-run,
    or the module evaluated by weft_eval.py); None after printing FAIL."""
    if args.emit == "artifact":
        return run_artifact(args, feeds, work, path)
    mlir_path = os.path.join(work, "module.%s.mlir" % args.emit)
    cmd = [weft_binary(), "compile", path, "--emit=%s" % args.emit,
           "--quiet", "-o", mlir_path]
    for d in args.dim:
        cmd += ["--dim", d]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print("FAIL: weft compile exited %d:\n%s%s" % (r.returncode, r.stdout,
                                                       r.stderr))
        return None
    with open(mlir_path) as f:
        mod = weft_eval.parse_module(f.read())
    try:
        outs, _ = weft_eval.evaluate(mod, feeds, weft_eval.WeightSource(path))
    except weft_eval.EvalError as e:
        print("FAIL: weft_eval: %s" % e)
        return None
    return dict(zip(weft_eval.output_names(mod), outs))


def check_mutations(args, feeds, ref, work):
    """Each mutation of args.model must fail the check against args.model's
    reference, and pass it against its own."""
    import onnx
    import mutate
    model = onnx.load(args.model)
    names = (mutate.applicable(model) if args.mutate == "all"
             else args.mutate.split(","))
    if not names:
        print("FAIL: no mutation applies to %s" % os.path.basename(args.model))
        return 1
    setting = "%s [%s %s%s%s%s]" % (
        os.path.basename(args.model), " ".join(args.dim), args.dtype,
        " tp %d" % args.tp if args.tp > 1 else "",
        " pp %d" % args.pp if args.pp > 1 else "",
        " --nproc" if args.nproc else "")
    failed = []
    for name in names:
        try:
            mutant = mutate.mutate(model, name)
        except mutate.NotApplicable as e:
            print("FAIL: mutation %s: %s" % (name, e))
            failed.append(name)
            continue
        path = os.path.join(work, "mutant-%s.onnx" % name)
        onnx.save(mutant, path)
        sub = os.path.join(work, name)
        os.makedirs(sub, exist_ok=True)
        got = weft_outputs(args, path, feeds, sub)
        if got is None:
            print("FAIL: mutation %s: weft did not run it, which proves "
                  "nothing about the check" % name)
            failed.append(name)
            continue
        own = Reference(path, feeds, args.dtype, args.tol)
        print("mutation %s against the original:" % name)
        passed, ratio = compare(args, got, ref, "  ")
        print("mutation %s against itself:" % name)
        faithful, own_ratio = compare(args, got, own, "  ")
        line = ("%s: mutation %s, error / limit %.2f against the original, "
                "%.2f against itself" % (setting, name, ratio, own_ratio))
        if not passed and faithful:
            print("ok: %s: fails the check" % line)
        else:
            failed.append(name)
            print("FAIL: %s: %s" % (line, "passed the check" if passed else
                                    "does not match its own reference"))
    if failed:
        print("FAIL: %s: %d of %d mutations not caught: %s"
              % (setting, len(failed), len(names), ", ".join(failed)))
        return 1
    print("ok: %s: all %d mutations fail the check (%s)"
          % (setting, len(names), ", ".join(names)))
    return 0


def compare(args, got, ref, indent=""):
    """Prints one line per output; returns (True when every output is within
    its limits, the largest error / limit)."""
    base = os.path.basename(args.model)
    what = "%s --emit %s%s" % (base, args.emit, "" if args.dtype == "f32"
                               else " --dtype %s" % args.dtype)
    failed, worst = False, 0.0
    if set(got) != set(ref.f32):
        print("%sFAIL: %s: outputs %s, reference has %s"
              % (indent, what, sorted(got), sorted(ref.f32)))
        failed, worst = True, float("inf")
    for name in sorted(set(got) & set(ref.f32)):
        ok, text, ratio = ref.check(name, got[name])
        failed |= not ok
        worst = max(worst, ratio)
        print("%s%s: %s: output '%s' %s" % (indent, "ok" if ok else "FAIL",
                                            what, name, text))
    return not failed, worst


if __name__ == "__main__":
    sys.exit(main())
