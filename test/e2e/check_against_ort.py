#!/usr/bin/env python3
"""Checks `weft compile` numerically against onnxruntime.

  python check_against_ort.py MODEL.onnx --dim batch=2 --dim seq=12 \
      [--emit import|mlir|artifact] [--dtype f32|f16|bf16] [--tol 1e-4]
      [--seed 0] [--keep DIR] [--nproc]

Makes random valid inputs for the model (token ids below the vocabulary size,
read from the embedding table the ids index; an attention_mask of ones with
some zeros on the right for padding), runs the model in onnxruntime, compiles
it with `weft compile` (the binary named by $WEFT, else `weft` on PATH),
evaluates the printed module with weft_eval.py (or, with --emit artifact,
writes an artifact and runs it with `weft-run`, named by $WEFT_RUN; with
--nproc, each rank as a process, `weft-run --nproc TPxPPxDP`, whose outputs
must equal bit for bit those of the ranks as threads), and requires

    max|out - ref| / max|ref| <= tol

for every output.  Prints the error of each output; exits 1 on a mismatch.
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
import weft_eval  # noqa: E402

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
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
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


def run_artifact(args, feeds, work):
    """Compiles an artifact and runs it; returns the outputs or None."""
    art = os.path.join(work, "model.weft")
    cmd = [weft_binary(), "compile", args.model, "--quiet", "-o", art,
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
    p.add_argument("--tol", type=float, default=1e-4)
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
    ref = run_ort(args.model, feeds)

    work = args.keep or tempfile.mkdtemp(prefix="weft-e2e-")
    os.makedirs(work, exist_ok=True)
    if args.emit == "artifact":
        got = run_artifact(args, feeds, work)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        if got is None:
            return 1
        return compare(args, got, ref)
    mlir_path = os.path.join(work, "module.%s.mlir" % args.emit)
    cmd = [weft_binary(), "compile", args.model, "--emit=%s" % args.emit,
           "--quiet", "-o", mlir_path]
    for d in args.dim:
        cmd += ["--dim", d]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print("FAIL: weft compile exited %d:\n%s%s" % (r.returncode, r.stdout,
                                                       r.stderr))
        return 1

    with open(mlir_path) as f:
        mod = weft_eval.parse_module(f.read())
    try:
        outs, _ = weft_eval.evaluate(mod, feeds,
                                     weft_eval.WeightSource(args.model))
    except weft_eval.EvalError as e:
        print("FAIL: weft_eval: %s" % e)
        return 1
    got = dict(zip(weft_eval.output_names(mod), outs))
    if args.keep:
        np.savez(os.path.join(work, "inputs.npz"), **feeds)
        np.savez(os.path.join(work, "reference.npz"), **ref)
        np.savez(os.path.join(work, "outputs.%s.npz" % args.emit), **got)
    else:
        shutil.rmtree(work, ignore_errors=True)

    return compare(args, got, ref)


def compare(args, got, ref):
    base = os.path.basename(args.model)
    failed = False
    if set(got) != set(ref):
        print("FAIL: %s --emit %s: outputs %s, reference has %s"
              % (base, args.emit, sorted(got), sorted(ref)))
        failed = True
    for name in sorted(set(got) & set(ref)):
        err, detail = rel_error(got[name], ref[name])
        ok = err <= args.tol
        failed |= not ok
        print("%s: %s --emit %s: output '%s' rel error %.3e (tol %.0e) %s"
              % ("ok" if ok else "FAIL", base, args.emit, name, err, args.tol,
                 detail))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
