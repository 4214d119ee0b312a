#!/usr/bin/env python3
"""Writes a 2-rank stand-in for a generation artifact, for generate-stub.test.

  make_generation_stub.py DIR TOKENIZER_DIR [MAX_SEQ]   writes DIR/stub/

artifact_pb2 must have been generated into DIR (protoc --python_out=DIR).
Its entries prefill@16, decode@1 and decode@2 run on rank 1 only and give
weft.next_ids = 40 + an i32 input: prefill, each row's first cache block
(blocks_per_seq is 1: a block of MAX_SEQ tokens, default 16); decode,
each row's index in the batch. Prompts longer than 16 tokens go in chunks. Rank 0's
entries do nothing, so it learns the ids from rank 1. The tokenizer files
of TOKENIZER_DIR are stored as `weft compile --tokenizer` stores them.
"""
import hashlib
import os
import struct
import sys

I32 = 6
FORMAT = 2
OFFSET = 40


def main():
    out, tok = sys.argv[1], sys.argv[2]
    max_seq = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    sys.path.insert(0, out)
    import artifact_pb2 as a

    d = os.path.join(out, "stub")
    os.makedirs(d, exist_ok=True)
    m = a.Manifest(format_version=FORMAT, world_size=2, tp=2, pp=1, dp=1,
                   microbatches=1, target="cpu", compute_dtype=1)
    g = m.generation
    g.max_seq, g.block_size, g.blocks_per_seq = max_seq, max_seq, 1
    g.prompt_buckets.append(16)
    g.batch_buckets.extend([1, 2])
    g.prefill_rows = 2
    g.token_input, g.logits_output = "input_ids", "logits"
    g.kv_block_bytes.extend([64, 64])
    for rank in range(2):
        plan = a.Plan(format_version=FORMAT, rank=rank, arena_bytes=0)
        for name, source, rows in (("prefill@16", "weft.block_tables", 2),
                                   ("decode@1", "weft.token_seq", 1),
                                   ("decode@2", "weft.token_seq", 2)):
            entry = plan.entry_points.add(name=name)
            if rank == 0:
                continue
            ids = []
            for kind, bname in ((a.Buffer.INPUT, source),
                                (a.Buffer.OUTPUT, "weft.next_ids")):
                b = plan.buffers.add(id=len(plan.buffers), kind=kind,
                                     dtype=I32, shape=[rows], name=bname,
                                     offset=plan.arena_bytes, bytes=4 * rows)
                plan.arena_bytes += 64
                ids.append(b.id)
            c = plan.buffers.add(id=len(plan.buffers), kind=a.Buffer.CONSTANT,
                                 dtype=I32, shape=[1], bytes=4,
                                 data=struct.pack("<i", OFFSET))
            entry.inputs.append(ids[0])
            entry.outputs.append(ids[1])
            step = entry.steps.add(kind=a.Step.ELEMENTWISE, name="add_offset")
            step.inputs.extend([ids[0], c.id])
            step.outputs.append(ids[1])
            step.program.add(op=a.Instr.INPUT, index=0, dtype=I32)
            step.program.add(op=a.Instr.INPUT, index=1, dtype=I32)
            step.program.add(op=a.Instr.ADD, args=[0, 1], dtype=I32)
        plan.arena_bytes = max(plan.arena_bytes, 64)
        data = plan.SerializeToString()
        name = "rank%d.plan.pb" % rank
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        m.ranks.add(rank=rank, plan_file=name,
                    plan_sha256=hashlib.sha256(data).hexdigest())
    os.makedirs(os.path.join(d, "tokenizer"), exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json",
                 "chat_template.jinja", "generation_config.json"):
        if not os.path.exists(os.path.join(tok, name)):
            continue
        with open(os.path.join(tok, name), "rb") as f:
            data = f.read()
        with open(os.path.join(d, "tokenizer", name), "wb") as f:
            f.write(data)
        m.tokenizer_files.add(name=name, file="tokenizer/" + name,
                              sha256=hashlib.sha256(data).hexdigest())
    with open(os.path.join(d, "manifest.pb"), "wb") as f:
        f.write(m.SerializeToString())


if __name__ == "__main__":
    main()
