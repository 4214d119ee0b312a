#!/usr/bin/env python3
"""Runs ONNX's backend node tests through `weft compile` and `weft-run`.

    python run_node_tests.py [--filter REGEX] [--json PATH]
        [--allowlist PATH | --write-allowlist PATH]
        [--ops-doc PATH | --check-ops-doc PATH]

Selects every node test of the installed onnx package whose nodes are all op
types that `weft compile --list-ops` claims (default domain) and whose model
imports opset 13 to 23 of the default domain. Each test is compiled
(`weft compile model.onnx -o DIR --quiet`, symbolic input dims bound from the
test data), run on every data set (`weft-run DIR --inputs in.npz --outputs
out.npz`) and its outputs compared with the expected ones: floats to rtol 1e-3
and atol 1e-5 (the backend's defaults; NaNs must be where expected), integers
and booleans exactly, shapes and dtypes exactly. Each test ends as one of

    pass, fail (wrong outputs), compile-refused (weft compile exits 1 or 2
    with a `weft: error:` message), compile-error (weft compile crashes,
    times out or exits non-zero without saying why), run-error (weft-run
    fails, times out or writes no or the wrong outputs).

Tools: $WEFT (default build/bin/weft of this checkout) and $WEFT_RUN (default
weft-run beside $WEFT).

Where the tests come from: onnx/backend/test/data/node/test_*/ (model.onnx,
test_data_set_*/input_*.pb and output_*.pb) when the package ships it; onnx
1.20 and later build node tests in memory instead
(onnx.backend.test.loader.load_model_tests(kind="node"), which draws its
random data from numpy's global generator: it is seeded with 0 first, so the
data are the same on every run). The selected ones are then written in the
same layout to a scratch directory (--data-dir overrides the source).

--allowlist PATH checks that every selected test ends as expected: a listed
test must pass, an unlisted one must be refused with a message. It exits 1
on anything else: a listed test that does not pass, a test with wrong
outputs, a run error or a compile error (listed or not), and a test that
passes but is not listed (the list must name every passing test, so that
each stays enforced). The last line is always "N passed, M failed" (tests
that ended as expected / did not). --write-allowlist PATH writes the names
of the passing tests. --ops-doc PATH writes the supported-ops table
(docs/ops.md) with each op's test counts; --check-ops-doc PATH exits 1 if
that file is not what --ops-doc would write now.
"""

import argparse
import collections
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import numpy_helper

SRC_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
MIN_OPSET, MAX_OPSET = 13, 23
# Ops that exist from a later opset than MIN_OPSET.
OP_MIN_OPSET = {"RMSNormalization": 23, "RotaryEmbedding": 23}
RTOL, ATOL = 1e-3, 1e-5
STATUSES = ["pass", "fail", "compile-refused", "compile-error", "run-error"]


def default_tools():
    weft = os.environ.get("WEFT") or os.path.join(SRC_ROOT, "build", "bin",
                                                  "weft")
    weft_run = os.environ.get("WEFT_RUN") or os.path.join(
        os.path.dirname(weft), "weft-run")
    return weft, weft_run


def claimed_ops(weft):
    out = subprocess.run([weft, "compile", "--list-ops"], check=True,
                         capture_output=True, text=True).stdout
    return sorted(set(out.split()))


def default_opset(model):
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return imp.version
    return None


def op_types(model):
    """The (domain, op_type) of every node, in subgraphs too."""
    found = set()

    def visit(graph):
        for node in graph.node:
            found.add((node.domain, node.op_type))
            for a in node.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    visit(a.g)
                for g in a.graphs:
                    visit(g)

    visit(model.graph)
    return found


def selected(model, ops):
    """Whether weft claims every node of `model` at its opset."""
    opset = default_opset(model)
    if opset is None or not MIN_OPSET <= opset <= MAX_OPSET:
        return False
    return all(d in ("", "ai.onnx") and t in ops for d, t in op_types(model))


#===-----------------------------------------------------------------------===#
# Finding the tests
#===-----------------------------------------------------------------------===#


def shipped_node_dir():
    d = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data",
                     "node")
    return d if os.path.isdir(d) else None


def discover_on_disk(node_dir, ops, name_re):
    """[(name, test_dir)] of the selected tests under node_dir."""
    tests = []
    for name in sorted(os.listdir(node_dir)):
        test_dir = os.path.join(node_dir, name)
        path = os.path.join(test_dir, "model.onnx")
        if not name.startswith("test_") or not os.path.isfile(path):
            continue
        if name_re and not name_re.search(name):
            continue
        if selected(onnx.load(path, load_external_data=False), ops):
            tests.append((name, test_dir))
    return tests


def _serialize(value, type_proto, name):
    if type_proto.HasField("sequence_type"):
        return numpy_helper.from_list(value, name).SerializeToString()
    if type_proto.HasField("optional_type"):
        return numpy_helper.from_optional(value, name).SerializeToString()
    if isinstance(value, onnx.TensorProto):
        return value.SerializeToString()
    return numpy_helper.from_array(np.asarray(value), name).SerializeToString()


def materialize_in_memory(out_dir, ops, name_re):
    """Writes the selected in-memory node tests to out_dir in the on-disk
    layout; returns [(name, test_dir)]."""
    import warnings

    from onnx.backend.test.loader import load_model_tests

    # The node tests draw their data from numpy's global generator while the
    # test modules are imported: seed it so that every run sees the same data.
    np.random.seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cases = load_model_tests(kind="node")
    tests = []
    for case in sorted(cases, key=lambda c: c.name):
        if name_re and not name_re.search(case.name):
            continue
        if not selected(case.model, ops):
            continue
        test_dir = os.path.join(out_dir, case.name)
        os.makedirs(test_dir)
        with open(os.path.join(test_dir, "model.onnx"), "wb") as f:
            f.write(case.model.SerializeToString())
        graph = case.model.graph
        for i, (inputs, outputs) in enumerate(case.data_sets):
            ds = os.path.join(test_dir, f"test_data_set_{i}")
            os.makedirs(ds)
            for kind, values, infos in (("input", inputs, graph.input),
                                        ("output", outputs, graph.output)):
                for j, value in enumerate(values):
                    with open(os.path.join(ds, f"{kind}_{j}.pb"), "wb") as f:
                        f.write(_serialize(value, infos[j].type, infos[j].name))
        tests.append((case.name, test_dir))
    return tests


#===-----------------------------------------------------------------------===#
# Running one test (in a worker process)
#===-----------------------------------------------------------------------===#


def first_error_line(text, strip):
    """The first line that says 'error', else the first non-empty one, with
    scratch paths removed so that reasons are the same on every run."""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    pick = next((l for l in lines if "error" in l.lower()),
                lines[0] if lines else "(no message)")
    for s in strip:
        pick = pick.replace(s + os.sep, "").replace(s, "")
    return pick


def load_pb(path):
    return numpy_helper.to_array(onnx.load_tensor(path))


def compare(name, got, want):
    """None if `got` matches `want`, else (short reason, details)."""
    if got.dtype != want.dtype:
        r = f"output '{name}': dtype {got.dtype}, expected {want.dtype}"
        return r, r
    if got.shape != want.shape:
        r = (f"output '{name}': shape {list(got.shape)}, expected "
             f"{list(want.shape)}")
        return r, r
    if want.dtype.kind in "fc" or want.dtype.kind == "V":
        if want.dtype.kind == "V":  # bfloat16 and friends
            got, want = got.astype(np.float32), want.astype(np.float32)
        g = got.astype(np.float64) if got.dtype.itemsize < 4 else got
        w = want.astype(np.float64) if want.dtype.itemsize < 4 else want
        gnan, wnan = np.isnan(g), np.isnan(w)
        if (gnan != wnan).any():
            r = f"output '{name}': NaN positions differ"
            return r, f"{r} ({int((gnan != wnan).sum())} of {w.size})"
        ok = np.isclose(g, w, rtol=RTOL, atol=ATOL, equal_nan=True)
        if ok.all():
            return None
        with np.errstate(invalid="ignore"):
            worst = float(np.nanmax(np.abs(g - w)[~ok]))
        r = f"output '{name}': values differ"
        return r, (f"{r} at {int((~ok).sum())} of {w.size} elements "
                   f"(max abs error {worst:.3g})")
    if np.array_equal(got, want):
        return None
    diff = int((got != want).sum()) if got.shape == want.shape else got.size
    r = f"output '{name}': values differ"
    return r, f"{r} at {diff} of {want.size} elements (exact compare)"


def run_test(name, test_dir, weft, weft_run, timeout, scratch):
    """Compiles and runs one test; returns its result dict."""
    start = time.monotonic()
    result = {"name": name, "status": "pass", "reason": "", "details": ""}
    work = tempfile.mkdtemp(prefix=name + ".", dir=scratch)
    strip = [work, test_dir]

    def left():
        return max(1.0, timeout - (time.monotonic() - start))

    def finish(status, reason, details=None):
        result.update(status=status, reason=reason,
                      details=details if details is not None else reason)
        return result

    try:
        model_path = os.path.join(test_dir, "model.onnx")
        model = onnx.load(model_path, load_external_data=False)
        # (index of its input_J.pb, graph input): empty-named optional inputs
        # and initializers listed as inputs are not fed.
        init_names = {t.name for t in model.graph.initializer}
        inputs = [(j, i) for j, i in enumerate(model.graph.input)
                  if i.name and i.name not in init_names]
        outputs = list(model.graph.output)
        data_sets = sorted(
            (d for d in os.listdir(test_dir) if d.startswith("test_data_set_")),
            key=lambda d: int(d.rsplit("_", 1)[1]))

        # Bind symbolic dims from the first data set's input shapes.
        dims = {}
        if data_sets:
            ds = os.path.join(test_dir, data_sets[0])
            for j, info in inputs:
                path = os.path.join(ds, f"input_{j}.pb")
                if not info.type.HasField("tensor_type") or not os.path.exists(
                        path):
                    continue
                shape = load_pb(path).shape
                for d, size in zip(info.type.tensor_type.shape.dim, shape):
                    if d.dim_param and d.dim_param not in dims:
                        dims[d.dim_param] = size
        art = os.path.join(work, "model.weft")
        cmd = [weft, "compile", model_path, "-o", art, "--quiet"]
        for k, v in sorted(dims.items()):
            cmd += ["--dim", f"{k}={v}"]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True,
                               timeout=left())
        except subprocess.TimeoutExpired:
            return finish("compile-error",
                          f"weft compile timed out after {timeout:g} s")
        if p.returncode != 0:
            line = first_error_line(p.stderr + p.stdout, strip)
            # The short reason drops the tool's prefix and the model's name.
            short = re.sub(r"^weft: error: ", "", line)
            short = re.sub(r"^model\.onnx(:\d+:\d+)?: (error: )?", "", short)
            if p.returncode < 0:
                line = short = (f"weft compile killed by signal "
                                f"{-p.returncode}: {short}")
                return finish("compile-error", short, line)
            # A refusal says why, in weft's form, and exits 1 or 2.
            if p.returncode not in (1, 2) or "weft: error: " not in p.stderr:
                return finish("compile-error",
                              f"weft compile exited {p.returncode} without "
                              f"a 'weft: error:' message: {short}")
            return finish("compile-refused", short, line)

        for ds_name in data_sets:
            ds = os.path.join(test_dir, ds_name)
            feeds = {}
            for j, info in inputs:
                path = os.path.join(ds, f"input_{j}.pb")
                if not os.path.exists(path):
                    break  # trailing optional inputs without data
                if not info.type.HasField("tensor_type"):
                    return finish("run-error",
                                  f"input '{info.name}' is not a tensor")
                feeds[info.name] = load_pb(path)
            in_npz = os.path.join(work, ds_name + ".in.npz")
            out_npz = os.path.join(work, ds_name + ".out.npz")
            np.savez(in_npz, **feeds)
            cmd = [weft_run, art, "--inputs", in_npz, "--outputs", out_npz]
            try:
                p = subprocess.run(cmd, capture_output=True, text=True,
                                   timeout=left())
            except subprocess.TimeoutExpired:
                return finish("run-error",
                              f"weft-run timed out after {timeout:g} s")
            except OSError as e:
                return finish("run-error", f"cannot run weft-run: {e.strerror}")
            if p.returncode != 0:
                why = first_error_line(p.stderr + p.stdout, strip)
                if p.returncode < 0:
                    why = f"weft-run killed by signal {-p.returncode}: {why}"
                return finish("run-error", why)
            try:
                with np.load(out_npz, allow_pickle=False) as z:
                    got = {k: z[k] for k in z.files}
            except Exception as e:  # noqa: BLE001 - any unreadable file
                return finish("run-error", f"cannot read the outputs: {e}")
            for j, info in enumerate(outputs):
                if info.name not in got:
                    return finish("run-error",
                                  f"output '{info.name}' is missing")
                want = load_pb(os.path.join(ds, f"output_{j}.pb"))
                bad = compare(info.name, got[info.name], np.asarray(want))
                if bad:
                    return finish("fail", bad[0],
                                  f"{ds_name}: {bad[1]}")
        return result
    except Exception as e:  # noqa: BLE001 - report, keep the run going
        return finish("run-error", f"harness: {type(e).__name__}: {e}")
    finally:
        result["seconds"] = round(time.monotonic() - start, 3)
        shutil.rmtree(work, ignore_errors=True)


#===-----------------------------------------------------------------------===#
# Reports
#===-----------------------------------------------------------------------===#


def read_allowlist(path):
    names = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                names.append(line)
    return names


def write_allowlist(path, results):
    passing = sorted(r["name"] for r in results if r["status"] == "pass")
    with open(path, "w") as f:
        f.write("# ONNX backend node tests that weft compiles and runs "
                "correctly today.\n"
                "# Checked by node-tests.test; regenerate with\n"
                "#   test/conformance/run_node_tests.py --write-allowlist "
                "test/conformance/allowlist.txt\n"
                "# once more tests pass. One test name per line, sorted.\n")
        for name in passing:
            f.write(name + "\n")


def write_ops_doc(path, ops, results, ops_of):
    counts = {op: collections.Counter() for op in ops}
    failing = {op: [] for op in ops}
    for r in results:
        for op in ops_of[r["name"]]:
            ok = r["status"] == "pass"
            counts[op]["pass" if ok else "bad"] += 1
            if not ok:
                failing[op].append(r)
    lines = [
        "# Supported ONNX ops",
        "",
        "Generated by `test/conformance/run_node_tests.py --ops-doc "
        "docs/ops.md` from",
        "the importer's op table (`weft compile --list-ops`) and a run of "
        "ONNX's backend",
        "node tests through `weft compile` and `weft-run`; do not edit by "
        "hand. All ops",
        "are in the default domain; models must import opset 13 to 23 of it. "
        "Shape-computing",
        "ops fold to constants once dims are bound, so they never reach the "
        "compiled graph.",
        "",
        "The counts are over the node tests that use only claimed ops at "
        "opsets 13 to 23;",
        "a test counts for every op its model contains (the `_expanded` "
        "tests contain",
        "several). Failing means wrong outputs, a refusal by `weft compile` "
        "or an error",
        "of `weft-run`; `test/conformance/node-tests.test` fails the build on "
        "anything but a",
        "pass or a refusal with a message, so every failing test listed below "
        "is refused.",
        "",
        "| op | opsets | node tests passed | node tests failed or refused |",
        "| --- | --- | --- | --- |",
    ]
    for op in ops:
        lo = OP_MIN_OPSET.get(op, MIN_OPSET)
        opsets = f"{lo}-{MAX_OPSET}" if lo < MAX_OPSET else f"{MAX_OPSET}"
        lines.append(f"| {op} | {opsets} | {counts[op]['pass']} | "
                     f"{counts[op]['bad']} |")
    untested = [op for op in ops if not counts[op]["pass"] + counts[op]["bad"]]
    if untested:
        lines += ["", "No selected node test uses " + ", ".join(untested) +
                  " (ONNX's tests of them are at older opsets)."]
    lines += ["", "## Failing node tests", ""]
    any_failing = False
    for op in ops:
        if not failing[op]:
            continue
        any_failing = True
        lines += [f"### {op}", ""]
        for r in sorted(failing[op], key=lambda r: r["name"]):
            reason = r["reason"].replace("|", "\\|").replace("`", "'")
            lines.append(f"- `{r['name']}`: {r['status']}: {reason}")
        lines.append("")
    if not any_failing:
        lines += ["None.", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines).rstrip("\n") + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--filter", help="only tests whose name matches REGEX")
    ap.add_argument("--allowlist", help="check: every listed test must pass")
    ap.add_argument("--write-allowlist", help="write the passing tests here")
    ap.add_argument("--ops-doc", help="write the supported-ops table here")
    ap.add_argument("--check-ops-doc", metavar="PATH",
                    help="check that PATH is the supported-ops table this "
                    "run writes")
    ap.add_argument("--json", help="write every result here")
    ap.add_argument("--data-dir", help="node tests in the on-disk layout "
                    "(default: the onnx package's, else built in memory)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes")
    ap.add_argument("--timeout", type=float, default=30,
                    help="seconds per test")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="print every test's result")
    args = ap.parse_args()
    if args.filter and (args.ops_doc or args.check_ops_doc or
                        args.write_allowlist):
        ap.error("--ops-doc, --check-ops-doc and --write-allowlist need every "
                 "test: drop --filter")

    weft, weft_run = default_tools()
    for tool in (weft, weft_run):
        if not os.access(tool, os.X_OK):
            print(f"run_node_tests: error: {tool} is not an executable "
                  "(set WEFT / WEFT_RUN)", file=sys.stderr)
            return 2
    ops = claimed_ops(weft)
    name_re = re.compile(args.filter) if args.filter else None

    scratch = tempfile.mkdtemp(prefix="weft-node-tests.")
    try:
        node_dir = args.data_dir or shipped_node_dir()
        if node_dir:
            tests = discover_on_disk(node_dir, set(ops), name_re)
        else:
            tests = materialize_in_memory(os.path.join(scratch, "node"),
                                          set(ops), name_re)
        ops_of = {}
        for name, test_dir in tests:
            model = onnx.load(os.path.join(test_dir, "model.onnx"),
                              load_external_data=False)
            ops_of[name] = sorted({t for _, t in op_types(model)})

        results = []
        with concurrent.futures.ProcessPoolExecutor(
                max_workers=max(1, args.jobs)) as pool:
            futures = [
                pool.submit(run_test, name, test_dir, weft, weft_run,
                            args.timeout, scratch) for name, test_dir in tests
            ]
            for fut in futures:
                r = fut.result()
                r["ops"] = ops_of[r["name"]]
                results.append(r)
                if args.verbose:
                    extra = f": {r['details']}" if r["details"] else ""
                    print(f"{r['status'].upper()}: {r['name']}{extra}",
                          flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    by_status = collections.Counter(r["status"] for r in results)
    print(f"{len(results)} node tests selected: " +
          ", ".join(f"{by_status[s]} {s}" for s in STATUSES))

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"onnx": onnx.__version__, "tests": results}, f,
                      indent=1, sort_keys=True)
            f.write("\n")
    if args.write_allowlist:
        write_allowlist(args.write_allowlist, results)
    if args.ops_doc:
        write_ops_doc(args.ops_doc, ops, results, ops_of)

    status = 0
    if args.check_ops_doc:
        status |= check_ops_doc(args.check_ops_doc, ops, results, ops_of)
    if args.allowlist:
        status |= check_outcomes(read_allowlist(args.allowlist), results,
                                 name_re)
    return status


def check_ops_doc(path, ops, results, ops_of):
    """0 if `path` is the table --ops-doc writes from these results."""
    fd, fresh = tempfile.mkstemp(suffix=".md")
    os.close(fd)
    try:
        write_ops_doc(fresh, ops, results, ops_of)
        with open(fresh) as f:
            want = f.read().splitlines()
    finally:
        os.unlink(fresh)
    try:
        with open(path) as f:
            have = f.read().splitlines()
    except OSError as e:
        print(f"FAIL: cannot read {path}: {e.strerror}")
        return 1
    if have == want:
        print(f"ok: {path} is current")
        return 0
    import difflib
    diff = list(difflib.unified_diff(have, want, path, "this run", n=0,
                                     lineterm=""))
    print(f"FAIL: {path} is stale; regenerate it with --ops-doc {path}:")
    for line in diff[:40]:
        print("  " + line)
    if len(diff) > 40:
        print(f"  ... {len(diff) - 40} more diff lines")
    return 1


def check_outcomes(listed, results, name_re):
    """Every listed test passes, every other one is refused with a message;
    prints one FAIL line per other outcome, then 'N passed, M failed'."""
    by_name = {r["name"]: r for r in results}
    if name_re:
        listed = [n for n in listed if name_re.search(n)]
    listed_set = set(listed)
    failed = []
    for name in listed:
        r = by_name.get(name)
        if r is None:
            failed.append(f"{name}: listed, but not a selected node test of "
                          f"onnx {onnx.__version__}")
        elif r["status"] != "pass":
            failed.append(f"{name}: listed, but {r['status']}: "
                          f"{r['details']}")
    for r in results:
        if r["name"] in listed_set:
            continue
        if r["status"] == "pass":
            failed.append(f"{r['name']}: passes but is not listed (add it: "
                          "--write-allowlist)")
        elif r["status"] != "compile-refused":
            failed.append(f"{r['name']}: {r['status']}: {r['details']}")
    for line in failed:
        print(f"FAIL: {line}")
    expected = sum(1 for r in results
                   if r["status"] == ("pass" if r["name"] in listed_set
                                      else "compile-refused"))
    print(f"{expected} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
