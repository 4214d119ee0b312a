#!/usr/bin/env python3
"""Checks `weft plan` output against what it must satisfy.

  check_plan.py json PLAN.json OBJECTIVE   the layouts: degrees multiply to
      the GPUs, divide the batch, fit iff memory <= capacity, memory totals
      add up, those that fit ranked by OBJECTIVE, every rejection has a reason
  check_plan.py weights PLAN.json INSPECT.txt   the planner's per-stage
      weight bytes of its single layout equal each rank's in `weft inspect`
  check_plan.py svg FILE   well-formed SVG with the frontier drawn
  check_plan.py auto PLAN.json STDERR   `weft compile --parallel auto` chose
      the planner's first layout
"""
import json
import re
import sys
import xml.etree.ElementTree as ET


def fail(msg):
    sys.exit("check_plan: " + msg)


def check_json(path, objective):
    doc = json.load(open(path))
    batch, layouts = doc["batch"], doc["layouts"]
    if not layouts:
        fail("no layouts")
    fitting = [l for l in layouts if l["fits"]]
    if len(fitting) != doc["fitting"] or layouts[:len(fitting)] != fitting:
        fail("the layouts that fit must come first")
    for l in layouts:
        if l["gpus"] != l["tp"] * l["pp"] * l["dp"]:
            fail(f"gpus != tp x pp x dp in {l}")
        if l["gpus"] > doc["gpus_available"]:
            fail(f"more GPUs than the topology has: {l}")
        if batch % (l["dp"] * l["microbatches"]):
            fail(f"dp x microbatches does not divide the batch: {l}")
        if not l["fits"] and not l.get("reason"):
            fail(f"a rejected layout without a reason: {l}")
        if "memory" not in l:
            continue
        m = l["memory"]
        parts = sum(v for k, v in m.items() if k != "total_bytes")
        if abs(parts - m["total_bytes"]) > 1e-6 * m["total_bytes"]:
            fail(f"memory parts do not add up: {m}")
        if l["fits"] != (m["total_bytes"] <= l["capacity_bytes"]):
            fail(f"fits disagrees with memory and capacity: {l}")
        if len(l["stage_weight_bytes"]) != l["pp"]:
            fail(f"one weight size per stage expected: {l}")
        if m["weights_bytes"] != max(l["stage_weight_bytes"]):
            fail(f"weights are the fullest stage's: {l}")
        if l["fits"] and abs(l["request_s"] - (
                l["prefill_s"] + doc["gen"] * l["decode_s_per_token"])) > \
                1e-9 * l["request_s"]:
            fail(f"request != prefill + gen x decode: {l}")
    key = (lambda l: l["request_s"]) if objective == "latency" else \
        (lambda l: -l["tokens_per_s_per_gpu"])
    for a, b in zip(fitting, fitting[1:]):
        if key(a) > key(b):
            fail(f"not ranked by {objective}: {a} before {b}")
    print(f"json ok: {len(fitting)} fit, {len(layouts) - len(fitting)} "
          f"rejected")


def check_weights(plan_path, inspect_path):
    doc = json.load(open(plan_path))
    if len(doc["layouts"]) != 1:
        fail("expected one layout (fix --tp, --pp, --dp, --microbatches)")
    l = doc["layouts"][0]
    ranks = [int(b) for b in re.findall(r"weights: \d+ tensors, .* \((\d+) "
                                        r"bytes\)", open(inspect_path).read())]
    if len(ranks) != l["gpus"]:
        fail(f"{len(ranks)} ranks in the artifact, {l['gpus']} in the plan")
    for rank, held in enumerate(ranks):
        stage = rank // l["tp"] % l["pp"]  # rank = (replica*pp + stage)*tp + i
        if l["stage_weight_bytes"][stage] != held:
            fail(f"rank {rank} (stage {stage}) holds {held} bytes of weights; "
                 f"the planner says {l['stage_weight_bytes'][stage]}")
    print(f"weights ok: {ranks}")


def check_svg(path):
    root = ET.parse(path).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    if root.tag != ns + "svg":
        fail(f"root element is {root.tag}, not svg")
    if root.find(ns + "polyline") is None:
        fail("no frontier polyline")
    if len(root.findall(ns + "circle")) < 2:
        fail("too few points")
    print("svg ok")


def check_auto(plan_path, stderr_path):
    best = json.load(open(plan_path))["layouts"][0]
    text = open(stderr_path).read()
    m = re.search(r"--parallel auto: tp (\d+) x pp (\d+) x dp (\d+), (\d+) "
                  r"micro-batch", text)
    if not m:
        fail("no choice printed:\n" + text)
    chose = tuple(int(g) for g in m.groups())
    want = (best["tp"], best["pp"], best["dp"], best["microbatches"])
    if chose != want:
        fail(f"compile chose {chose}, the planner ranks {want} first")
    print(f"auto ok: {chose}")


def check_max_seqs(plan_path, inspect_path, block_size):
    """max_sequences from the KV bytes per token of a compiled generation
    artifact (weft inspect: each rank's cache bytes per block) and the
    planner's other memory terms: the stage that runs out of room first."""
    doc = json.load(open(plan_path))
    if len(doc["layouts"]) != 1:
        fail("expected one layout (fix --tp, --pp, --dp, --microbatches)")
    l = doc["layouts"][0]
    ranks = re.split(r"^rank \d+ ", open(inspect_path).read(),
                     flags=re.M)[1:]
    if len(ranks) != l["gpus"]:
        fail(f"{len(ranks)} ranks in the artifact, {l['gpus']} in the plan")
    blocks = []
    for text in ranks:
        m = re.search(r"KV cache: \d+ state buffers, .* \((\d+) bytes\) "
                      r"per block", text)
        blocks.append(int(m.group(1)) if m else 0)
    m = l["memory"]
    others = m["total_bytes"] - m["weights_bytes"] - m["kv_cache_bytes"]
    tokens = doc["prompt"] + doc["gen"]
    per_replica = None
    for rank, block in enumerate(blocks):
        stage = rank // l["tp"] % l["pp"]
        if not block:
            continue  # a stage without attention layers holds no cache
        room = l["capacity_bytes"] - others - l["stage_weight_bytes"][stage]
        fits = int(max(0.0, room) // (block / int(block_size) * tokens))
        per_replica = fits if per_replica is None else min(per_replica, fits)
    want = per_replica * l["dp"]
    if l["max_sequences"] != want:
        fail(f"max_sequences {l['max_sequences']}; the artifact's KV bytes "
             f"give {want}")
    print(f"max sequences ok: {want}")


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    {"json": check_json, "weights": check_weights, "svg": check_svg,
     "auto": check_auto, "maxseqs": check_max_seqs}[mode](*args)
