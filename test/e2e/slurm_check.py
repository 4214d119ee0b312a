#!/usr/bin/env python3
"""Submits the batch scripts of `weft launch --slurm` to a real Slurm, a
private one on this host (test/slurm/local-slurm: two nodes, 127.0.0.1 and
127.0.0.2), and checks what the jobs do:

  slurm_check.py --weft WEFT --local-slurm SCRIPT --fixtures DIR --work DIR

  - `weft run` of a tp 2 x pp 2 artifact, 2 ranks on each node, submitted
    with `sbatch --wait`: its outputs match onnxruntime's;
  - `weft serve` of a pp 2 SmolLM2 artifact, a rank on each node: rank 0
    answers /health, and a chat completion through the openai client has
    the text of `weft generate --chat`; `scancel` ends the job within 30 s
    with every rank exiting 0 (rank 0 shuts down gracefully and stops the
    other);
  - `weft launch --slurm --dp 2` of the one-rank SmolLM2 artifact: one job
    of two replicas, one on each node, each answering a chat completion
    with `weft generate --chat`'s text, then the same scancel.
Slurm is stopped whatever happens (and by its watcher if this process is
killed). Prints "ok: ..." lines; exits 1 on the first failure, with the job's
output and the daemons' logs.
"""
import argparse
import glob
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_against_ort  # noqa: E402


class Failure(Exception):
    pass


def ok(msg):
    print("ok: " + msg, flush=True)


def run(cmd, timeout=120, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       **kw)
    if r.returncode != 0:
        raise Failure("%s exited %d:\n%s%s" % (" ".join(cmd), r.returncode,
                                              r.stdout, r.stderr))
    return r.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def launch_script(args, artifact, path, log, ranks_per_node, options, rest):
    """Writes `weft launch --slurm`'s batch script for `artifact` to `path`,
    the job's output going to `log`."""
    run([args.weft, "launch", artifact, "--slurm", "--partition", "debug",
         "--ranks-per-node", str(ranks_per_node), "--weft", args.weft,
         "--rendezvous-port", str(free_port()), "--log", log, "-o", path] +
        options + ["--"] + rest)
    return path


def submit(script, log, wait=False):
    """sbatch's job id for `script` (whose output goes to `log`)."""
    cmd = ["sbatch", "--parsable"] + (["--wait"] if wait else []) + [script]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                       cwd=os.path.dirname(script))
    job = r.stdout.strip().split(";")[0]
    if r.returncode != 0:
        raise Failure("sbatch%s exited %d:\n%s%s\nthe script:\n%s\nthe job "
                      "said:\n%s" % (" --wait" if wait else "", r.returncode,
                                     r.stdout, r.stderr, read(script),
                                     read(log)))
    return job


def job_field(job, name):
    out = run(["scontrol", "show", "job", job])
    m = re.search(r"\b%s=(\S+)" % name, out)
    return m.group(1) if m else None


def in_queue(job):
    return job in run(["squeue", "-h", "-o", "%i"]).split()


def task_exits(state, job, step):
    """{rank: what slurmstepd logged of its end} for step `job.step`."""
    out = {}
    pat = re.compile(r"\[%s\.%s\] task (\d+) \(\d+\) exited(.*)" % (job, step))
    for f in glob.glob(os.path.join(state, "log", "slurmd-*.log")):
        for line in read(f).splitlines():
            m = pat.search(line)
            if m:
                out[int(m.group(1))] = m.group(2).strip(" .")
    return out


def check_run(args, work):
    """weft run, tp 2 x pp 2, 2 ranks a node, against onnxruntime."""
    import onnx
    model = os.path.join(args.fixtures, "hf", "gpt2_dynamo.onnx")
    art = os.path.join(work, "gpt2-tp2pp2")
    run([args.weft, "compile", model, "--quiet", "-o", art, "--target", "cpu",
         "--tp", "2", "--pp", "2", "--microbatches", "2", "--topology",
         "dgx-h100", "--dim", "batch=4", "--dim", "seq=12"])
    feeds = check_against_ort.make_inputs(
        onnx.load(model, load_external_data=False), {"batch": 4, "seq": 12},
        np.random.default_rng(0))
    ref = check_against_ort.run_ort(model, feeds)
    ins, outs = os.path.join(work, "inputs.npz"), os.path.join(work, "out.npz")
    np.savez(ins, **feeds)

    log = os.path.join(work, "run.log")
    script = launch_script(args, art, os.path.join(work, "run.sbatch"), log,
                           2, ["--command", "run"],
                           ["--inputs", ins, "--outputs", outs])
    start = time.monotonic()
    job = submit(script, log, wait=True)
    took = time.monotonic() - start
    nodes = job_field(job, "NodeList")
    if job_field(job, "NumNodes") != "2" or job_field(job, "NumTasks") != "4":
        raise Failure("job %s ran on %s nodes (%s), %s tasks; expected 2 "
                      "nodes, 4 tasks" % (job, job_field(job, "NumNodes"),
                                          nodes, job_field(job, "NumTasks")))
    with np.load(outs) as z:
        got = {k: z[k] for k in z.files}
    if set(got) != set(ref):
        raise Failure("outputs %s, onnxruntime has %s" % (sorted(got),
                                                          sorted(ref)))
    for name in sorted(ref):
        err, detail = check_against_ort.rel_error(got[name], ref[name])
        if err > 1e-4:
            raise Failure("output '%s' rel error %.3e > 1e-4 (%s)"
                          % (name, err, detail))
        ok("weft run: 4 ranks on 2 nodes (%s), sbatch --wait in %.1f s: "
           "output '%s' matches onnxruntime (rel error %.1e)"
           % (nodes, took, name, err))


def check_failures(args, work):
    """A rank of the tp 2 x pp 2 weft run killed, or hung, once connected:
    the job fails within seconds (srun --kill-on-bad-exit, the others' wait
    timing out), and its output names the rank."""
    art = os.path.join(work, "gpt2-tp2pp2")
    ins = os.path.join(work, "inputs.npz")
    for mode in ["kill", "hang"]:
        outs = os.path.join(work, "fail-%s.npz" % mode)
        log = os.path.join(work, "fail-%s.log" % mode)
        script = launch_script(args, art,
                               os.path.join(work, "fail-%s.sbatch" % mode),
                               log, 2, ["--command", "run"],
                               ["--inputs", ins, "--outputs", outs,
                                "--timeout", "5"])
        env = dict(os.environ, WEFT_TEST_FAIL_RANK="3",
                   WEFT_TEST_FAIL_MODE=mode)
        start = time.monotonic()
        r = subprocess.run(["sbatch", "--parsable", "--wait", script],
                           capture_output=True, text=True, timeout=300,
                           cwd=work, env=env)
        took = time.monotonic() - start
        job = r.stdout.strip().split(";")[0]
        text = read(log)
        if r.returncode == 0 or "rank 3" not in text:
            raise Failure("a rank %s: sbatch --wait exited %d; the job said:"
                          "\n%s" % (mode, r.returncode, text))
        if os.path.exists(outs):
            raise Failure("a rank %s: the outputs were written" % mode)
        if took > 60:
            raise Failure("a rank %s: the job took %.0f s to end" % (mode,
                                                                    took))
        line = next(l for l in text.splitlines() if "rank 3" in l)
        # sbatch --wait may return while slurmctld still has the job
        # COMPLETING: read its final state.
        state = job_field(job, "JobState")
        deadline = time.monotonic() + 30
        while state == "COMPLETING" and time.monotonic() < deadline:
            time.sleep(0.2)
            state = job_field(job, "JobState")
        ok("a rank %s: job %s %s in %.1f s, no output; it says: %s"
           % ("killed" if mode == "kill" else "hung", job, state, took,
              line.strip()))


def wait_serving(job, log, port, timeout=180):
    """Returns once rank 0's log says it listens on `port` and is ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = read(log)
        if re.search(r"listening on http://[^ ]+:%d\b" % port, text) and \
                "ready" in text:
            return
        if not in_queue(job):
            raise Failure("the serve job %s ended before serving (%s)"
                          % (job, job_field(job, "JobState")))
        time.sleep(0.5)
    raise Failure("weft serve did not become ready within %d s" % timeout)


def metric(text, name, labels):
    """The value of `name{...labels...}` in Prometheus text, else 0."""
    for line in text.splitlines():
        if line.startswith(name + "{") and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def check_serve(args, work, state, dp=1):
    """weft serve, a rank on each node: pp 2, or with dp 2 two one-rank
    replicas (one job, rank 0 routing by queue depth); scancel stops it
    cleanly."""
    import openai
    art = os.path.join(work, "smol-pp2" if dp == 1 else "smol")
    run([args.weft, "compile", os.path.join(args.fixtures, "smollm2",
                                            "model.onnx"),
         "--generate", "--max-seq", "128", "--prompt-buckets", "16,64",
         "--batch-buckets", "1,4", "--tokenizer",
         os.path.join(args.fixtures, "smollm2"), "--target", "cpu",
         "--quiet", "-o", art] +
        (["--pp", "2", "--topology", "h100x4"] if dp == 1 else []))
    question = "What is the capital of France?"
    ref = run([args.weft, "generate", art, "--prompt", question,
               "--max-tokens", "24", "--json", "--chat"])
    ref = json.loads(ref.splitlines()[0])["text"]

    port = free_port()
    log = os.path.join(work, "serve%d.log" % dp)
    options = ["--port", str(port)] + (["--dp", str(dp)] if dp > 1 else [])
    script = launch_script(args, art, os.path.join(work, "serve%d.sbatch" % dp),
                           log, 1, options, ["--shutdown-grace", "5"])
    job = submit(script, log)
    try:
        wait_serving(job, log, port)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/health")
        status = conn.getresponse().status
        conn.close()
        if status != 200:
            raise Failure("/health answered %d" % status)
        client = openai.OpenAI(base_url="http://127.0.0.1:%d/v1" % port,
                               api_key="none", max_retries=0, timeout=120)
        # An idle server takes turns: with dp 2, one request per replica.
        for _ in range(dp):
            r = client.chat.completions.create(
                model=client.models.list().data[0].id, max_tokens=24,
                temperature=0, messages=[{"role": "user",
                                          "content": question}])
            text = r.choices[0].message.content
            if text != ref:
                raise Failure("chat text %r != weft generate's %r"
                              % (text, ref))
        if dp == 1:
            ok("weft serve: 2 ranks on %s, /health 200, the chat completion "
               "equals weft generate --chat: %r"
               % (job_field(job, "NodeList"), text))
        else:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/metrics")
            metrics = conn.getresponse().read().decode()
            conn.close()
            served = [metric(metrics, "weft:replica_requests_total",
                             'replica="%d"' % d) for d in range(dp)]
            if min(served) < 1:
                raise Failure("requests per replica: %s" % served)
            ok("weft serve --dp %d: a replica on each of %s, each answered "
               "a chat completion equal to weft generate --chat"
               % (dp, job_field(job, "NodeList")))
    except Exception:
        subprocess.run(["scancel", job], timeout=30)
        raise
    run(["scancel", job])
    start = time.monotonic()
    while in_queue(job):
        if time.monotonic() - start > 30:
            raise Failure("job %s still in the queue 30 s after scancel"
                          % job)
        time.sleep(0.2)
    took = time.monotonic() - start
    exits = task_exits(state, job, 0)
    if exits != {0: "with exit code 0", 1: "with exit code 0"}:
        raise Failure("after scancel, the ranks' ends: %s (expected exit "
                      "code 0 for ranks 0 and 1)" % exits)
    if "shutting down" not in read(log):
        raise Failure("rank 0 did not shut down gracefully")
    ok("scancel: job %s %s after %.1f s, rank 0 shut down gracefully, "
       "both ranks exited 0" % (job, job_field(job, "JobState"), took))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weft", required=True)
    ap.add_argument("--local-slurm", required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    args.weft = shutil.which(args.weft) or args.weft
    args.weft = os.path.abspath(args.weft)
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    # A short state path: slurmd's sockets there must fit sun_path. No
    # variable of a Slurm job this runs in may reach the private Slurm.
    state = tempfile.mkdtemp(prefix="weft-slurm-")
    for var in [v for v in os.environ if v.startswith("SLURM_")]:
        del os.environ[var]
    failed = None
    try:
        out = run([args.local_slurm, "start", state, "--nodes", "2",
                   "--cpus", "2", "--until-exit", str(os.getpid())],
                  timeout=180)
        os.environ["SLURM_CONF"] = re.search(r"SLURM_CONF=(\S+)",
                                             out).group(1)
        ok("a private Slurm: %s" % " ".join(
            run(["sinfo", "-h", "-N", "-o", "%N:%T"]).split()))
        check_run(args, work)
        check_failures(args, work)
        check_serve(args, work, state)
        check_serve(args, work, state, dp=2)
    except (Failure, subprocess.TimeoutExpired) as e:
        failed = str(e)
    except Exception:  # noqa: BLE001
        failed = traceback.format_exc()
    finally:
        stop = subprocess.run([args.local_slurm, "stop", state],
                              capture_output=True, text=True, timeout=120)
        if stop.returncode != 0:
            failed = (failed or "") + "\nlocal-slurm stop: " + stop.stderr
    if failed:
        # On stderr: lit shows it whether or not FileCheck matched.
        print("FAIL: " + failed, file=sys.stderr)
        # The jobs' output, and the daemons' logs kept next to it.
        logs = os.path.join(work, "slurm-logs")
        shutil.rmtree(logs, ignore_errors=True)
        if os.path.isdir(os.path.join(state, "log")):
            shutil.copytree(os.path.join(state, "log"), logs)
        for f in sorted(glob.glob(os.path.join(work, "*.log")) +
                        glob.glob(os.path.join(logs, "*.log"))):
            print("--- %s (last 20 lines):\n%s"
                  % (f, "\n".join(read(f).splitlines()[-20:])),
                  file=sys.stderr)
    shutil.rmtree(state, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
