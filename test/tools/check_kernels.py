#!/usr/bin/env python3
"""Compiles a model for a GPU target and checks the artifact's kernel module.

  python check_kernels.py MODEL.onnx --target sm_90a --out DIR [--dim N=V]
      [other weft compile args...]

Runs `weft compile` (the binary named by $WEFT, else `weft` on PATH) into
DIR/<model>.<target>, then reads `weft inspect` and checks, independently of
weft's own code: the manifest's target; that the source, cubin and PTX files
hash (hashlib) to the manifest's SHA-256s; that the cubin is a CUDA ELF file
(magic, e_machine EM_CUDA); that the PTX targets the architecture's virtual
one; that every ELEMENTWISE step of every rank names a kernel that the
source defines and the PTX has an entry for; that every kernel is used; and
that no two kernels have the same text but for their names (deduplicated).
Prints `OK: ...` on success, every failure as `FAIL: ...` otherwise (exit 1).
"""

import argparse
import hashlib
import os
import re
import struct
import subprocess
import sys

EM_CUDA = 190


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--target", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--dim", action="append", default=[])
    a, rest = p.parse_known_args()
    for d in a.dim:
        rest += ["--dim", d]
    weft = os.environ.get("WEFT", "weft")
    name = os.path.basename(a.model).rsplit(".", 1)[0]
    art = os.path.join(a.out, f"{name}.{a.target}.weft")
    subprocess.run([weft, "compile", a.model, "--target", a.target, "-o", art,
                    "--quiet"] + rest, check=True)
    inspect = subprocess.run([weft, "inspect", art], check=True,
                             capture_output=True, text=True).stdout
    failures = []

    def fail(msg):
        failures.append(msg)

    if not re.search(rf", target {re.escape(a.target)},", inspect):
        fail(f"inspect does not say target {a.target}")
    files = dict(re.findall(r"^    (?:source|cubin |ptx   ) (\S+) sha256 ([0-9a-f]{64})$",
                            inspect, re.M))
    if len(files) != 3:
        fail(f"expected 3 kernel files in the manifest, found {files}")
    data = {}
    for f, digest in files.items():
        path = os.path.join(art, f)
        if not os.path.exists(path):
            fail(f"{f} is missing")
            continue
        data[f] = open(path, "rb").read()
        if hashlib.sha256(data[f]).hexdigest() != digest:
            fail(f"{f} does not hash to the manifest's sha256")
    source = next((d.decode() for f, d in data.items() if f.endswith(".cu")), "")
    cubin = next((d for f, d in data.items() if f.endswith(".cubin")), b"")
    ptx = next((d.decode() for f, d in data.items() if f.endswith(".ptx")), "")
    if cubin[:4] != b"\x7fELF":
        fail("the cubin does not start with the ELF magic")
    elif struct.unpack_from("<H", cubin, 18)[0] != EM_CUDA:
        fail("the cubin's e_machine is not EM_CUDA")
    if f".cubin" in "".join(files) and f"kernels.{a.target}.cubin" not in files:
        fail(f"the cubin is not named for {a.target}")
    cc = re.match(r"sm_(\d+)", a.target).group(1)
    if not re.search(rf"^\.target sm_{cc}$", ptx, re.M):
        fail(f"the PTX does not target sm_{cc} (compute_{cc})")

    defined = re.findall(r'^extern "C" __global__ void (\w+)\(', source, re.M)
    entries = set(re.findall(r"\.entry (\w+)\(", ptx))
    used = set()
    steps = 0
    for line in inspect.splitlines():
        m = re.match(r"\s+\d+ (\w+) .*", line)
        if not m:
            continue
        k = re.search(r" kernel (\w+)$", line)
        if m.group(1) == "ELEMENTWISE":
            steps += 1
            if not k:
                fail(f"an ELEMENTWISE step has no kernel: {line.strip()}")
                continue
            used.add(k.group(1))
        elif k:
            fail(f"a {m.group(1)} step names a kernel: {line.strip()}")
    for k in sorted(used):
        if k not in defined:
            fail(f"kernel {k} is not defined in the source")
        if k not in entries:
            fail(f"kernel {k} has no entry in the PTX")
    for k in defined:
        if k not in used:
            fail(f"kernel {k} is used by no step")
    # Kernel texts with their names blanked out: all different.
    bodies = re.split(r'^(?=// Runs )', source, flags=re.M)[1:]
    seen = {}
    for body in bodies:
        body = re.sub(r"^// Runs .*\n", "", body)
        kname = re.search(r"void (\w+)\(", body).group(1)
        key = body.replace(kname, "KERNEL")
        if key in seen:
            fail(f"kernels {seen[key]} and {kname} are the same")
        seen[key] = kname
    for msg in failures:
        print("FAIL:", msg)
    if failures:
        return 1
    print(f"OK: {a.target}, {steps} ELEMENTWISE steps, {len(defined)} kernels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
