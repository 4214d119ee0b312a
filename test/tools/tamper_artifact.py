"""Changes one field of a compiled artifact, for the loader's refusal tests.

    tamper_artifact.py PROTO_DIR ARTIFACT ACTION [VALUE] [--keep-hash]

PROTO_DIR holds artifact_pb2.py (protoc --python_out). The plan's SHA-256
in the manifest is updated after a plan change unless --keep-hash is given,
so that the check under test is the one that refuses it.
"""
import argparse
import hashlib
import os
import sys


def load(pb, path, cls):
    msg = cls()
    with open(path, "rb") as f:
        msg.ParseFromString(f.read())
    return msg


def save(msg, path):
    with open(path, "wb") as f:
        f.write(msg.SerializeToString())


def buffers(plan):
    return {b.id: b for b in plan.buffers}


def first_gemm(plan):
    by = buffers(plan)
    for s in plan.steps:
        if s.kind == s.GEMM and by[s.inputs[0]].kind == by[s.inputs[0]].ARENA:
            return s, by
    sys.exit("no GEMM reading an arena buffer")


def tamper_plan(pb, plan, action, value):
    if action == "step-output":
        plan.steps[0].outputs[0] = int(value)
    elif action == "arena":
        plan.arena_bytes = int(value)
    elif action == "gemm-alias":
        # The GEMM's output placed over its first input.
        s, by = first_gemm(plan)
        by[s.outputs[0]].offset = by[s.inputs[0]].offset
    elif action == "unwritten-read":
        # The step that writes the first GEMM's input is dropped.
        s, by = first_gemm(plan)
        src = s.inputs[0]
        producers = [i for i, t in enumerate(plan.steps) if src in t.outputs]
        del plan.steps[producers[0]]
    elif action == "gemm-no-inputs":
        # A GEMM with no operands: an executor refuses it when it binds it.
        s, by = first_gemm(plan)
        del s.inputs[:]
    elif action == "no-steps":
        # Nothing computes the outputs.
        del plan.steps[:]
    else:
        sys.exit(f"unknown plan action {action}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("proto_dir")
    p.add_argument("artifact")
    p.add_argument("action")
    p.add_argument("value", nargs="?")
    p.add_argument("--keep-hash", action="store_true")
    a = p.parse_args()
    sys.path.insert(0, a.proto_dir)
    import artifact_pb2 as pb

    mpath = os.path.join(a.artifact, "manifest.pb")
    m = load(pb, mpath, pb.Manifest)
    if a.action == "empty-manifest":
        save(pb.Manifest(), mpath)
        return
    if a.action.startswith("manifest."):
        field = a.action.split(".", 1)[1]
        kind = type(getattr(m, field))
        setattr(m, field, kind(a.value) if kind is not str else a.value)
        save(m, mpath)
        return
    if a.action == "generation":
        # Generation settings of max_seq VALUE, without entry points: for the
        # refusals `weft generate` makes before a session opens.
        g = m.generation
        g.max_seq = int(a.value)
        g.block_size = 4
        g.blocks_per_seq = (g.max_seq + 3) // 4
        g.prompt_buckets.append(8)
        g.batch_buckets.append(1)
        g.prefill_rows = 1
        g.token_input = m.inputs[0].name
        g.logits_output = m.outputs[0].name
        save(m, mpath)
        return
    if a.action.startswith("gen."):
        # One generation setting: "gen.max_seq 0", "gen.entry.tokens N".
        field = a.action.split(".", 1)[1]
        if field.startswith("entry."):
            setattr(m.generation.entries[0], field.split(".", 1)[1],
                    int(a.value))
        else:
            setattr(m.generation, field, int(a.value))
        save(m, mpath)
        return
    if a.action == "tokenizer-file":
        # Where the first tokenizer file is, relative to the artifact.
        m.tokenizer_files[0].file = a.value
        save(m, mpath)
        return
    if a.action.startswith("kernel."):
        setattr(m.kernels, a.action.split(".", 1)[1], a.value)
        save(m, mpath)
        return
    ppath = os.path.join(a.artifact, m.ranks[0].plan_file)
    plan = load(pb, ppath, pb.Plan)
    tamper_plan(pb, plan, a.action, a.value)
    save(plan, ppath)
    if not a.keep_hash:
        with open(ppath, "rb") as f:
            m.ranks[0].plan_sha256 = hashlib.sha256(f.read()).hexdigest()
        save(m, mpath)


if __name__ == "__main__":
    main()
