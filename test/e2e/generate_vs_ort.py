#!/usr/bin/env python3
"""Greedy generation by `weft generate` against onnxruntime running the same
ONNX model greedily without a cache (the whole sequence again for every
token): the token ids must be identical.

  generate_vs_ort.py --weft BIN --model M.onnx --artifact DIR
      (--ids 1,2,3 [--ids 5..40] | --tokenizer DIR --text T [--text ...])
      [--max-tokens N] [--alone] [-- extra weft generate flags]

Every prompt is generated together in one `weft generate --prompt-file`
call (batched, prompts of different lengths); with --alone each is also
generated on its own, and both must match. --text prompts are tokenized
with the `tokenizers` package, and weft's prompt_ids for the same text
(given with --prompt) must equal them.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnxruntime as ort


def ort_greedy(sess, prompt, steps):
    """The ids greedy decoding appends to `prompt`, recomputing all."""
    names = [i.name for i in sess.get_inputs()]
    ids = list(prompt)
    out = []
    for _ in range(steps):
        x = np.array([ids], dtype=np.int64)
        feed = {}
        for name in names:
            if name == "attention_mask":
                feed[name] = np.ones_like(x)
            elif name == "position_ids":
                feed[name] = np.arange(len(ids), dtype=np.int64)[None, :]
            else:
                feed[name] = x
        logits = sess.run(None, feed)[0]
        nxt = int(np.argmax(logits[0, -1]))
        out.append(nxt)
        ids.append(nxt)
    return out


def weft_generate(args, prompts, extra, sampling=("--temperature", "0")):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "prompts.jsonl")
        with open(path, "w") as f:
            for p in prompts:
                f.write(json.dumps({"prompt_ids": p}) + "\n")
        cmd = [args.weft, "generate", args.artifact, "--prompt-file", path,
               "--max-tokens", str(args.max_tokens), "--ignore-eos",
               "--json"] + list(sampling) + extra
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit("weft generate failed (%d): %s\n%s" %
                     (run.returncode, " ".join(cmd), run.stderr))
        results = [json.loads(line) for line in run.stdout.splitlines()
                   if line.strip()]
    if len(results) != len(prompts):
        sys.exit("weft generate gave %d results for %d prompts" %
                 (len(results), len(prompts)))
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weft", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--artifact", required=True)
    ap.add_argument("--ids", action="append", default=[])
    ap.add_argument("--tokenizer")
    ap.add_argument("--text", action="append", default=[])
    ap.add_argument("--max-tokens", type=int, default=8)
    ap.add_argument("--alone", action="store_true")
    ap.add_argument("--sampled", action="store_true",
                    help="also sample (temperature 0.8, top-k 40, top-p "
                    "0.9, seed 7): the same ids twice, batched or alone, "
                    "and not all the greedy ones")
    args, extra = ap.parse_known_args()
    extra = [e for e in extra if e != "--"]

    def parse_ids(spec):
        """'1,2,3', with A..B for the ids A to B (inclusive)."""
        out = []
        for part in spec.split(","):
            if ".." in part:
                a, b = part.split("..")
                out.extend(range(int(a), int(b) + 1))
            else:
                out.append(int(part))
        return out

    prompts = [parse_ids(s) for s in args.ids]
    if args.text:
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(os.path.join(args.tokenizer,
                                               "tokenizer.json"))
        for text in args.text:
            ids = tok.encode(text).ids
            cmd = [args.weft, "generate", args.artifact, "--prompt", text,
                   "--max-tokens", "1", "--json"] + extra
            run = subprocess.run(cmd, capture_output=True, text=True)
            if run.returncode != 0:
                sys.exit("weft generate --prompt failed: " + run.stderr)
            got = json.loads(run.stdout.splitlines()[0])["prompt_ids"]
            if got != ids:
                sys.exit("prompt ids of %r: weft %s, tokenizers %s" %
                         (text, got, ids))
            prompts.append(ids)
    if not prompts:
        sys.exit("no prompts (--ids or --text)")

    sess = ort.InferenceSession(args.model,
                                providers=["CPUExecutionProvider"])
    want = [ort_greedy(sess, p, args.max_tokens) for p in prompts]
    runs = [("batched", weft_generate(args, prompts, extra))]
    if args.alone:
        runs.append(("alone", [weft_generate(args, [p], extra)[0]
                               for p in prompts]))
    failed = False
    for how, results in runs:
        for i, (p, w, r) in enumerate(zip(prompts, want, results)):
            if r["prompt_ids"] != p:
                print("prompt %d (%s): weft read prompt_ids %s, not %s" %
                      (i, how, r["prompt_ids"], p))
                failed = True
            if r["ids"] != w:
                print("prompt %d (%s, %d tokens): weft %s, onnxruntime %s" %
                      (i, how, len(p), r["ids"], w))
                failed = True
    if args.sampled:
        flags = ("--temperature", "0.8", "--top-k", "40", "--top-p", "0.9",
                 "--seed", "7")
        first = weft_generate(args, prompts, extra, flags)
        again = weft_generate(args, prompts, extra, flags)
        # Prompt i samples with seed 7 + i: alone, each keeps its seed.
        alone = [weft_generate(args, [p], extra,
                               flags[:-1] + (str(7 + i),))[0]
                 for i, p in enumerate(prompts)]
        for i in range(len(prompts)):
            if not (first[i]["ids"] == again[i]["ids"] == alone[i]["ids"]):
                print("prompt %d sampled: %s, again %s, alone %s" %
                      (i, first[i]["ids"], again[i]["ids"], alone[i]["ids"]))
                failed = True
        if all(f["ids"] == w for f, w in zip(first, want)):
            print("sampling gave the greedy ids for every prompt")
            failed = True
        runs.append(("sampled", first))
    if failed:
        sys.exit(1)
    print("generate-vs-ort: %d prompts x %d tokens identical (%s)" %
          (len(prompts), args.max_tokens, ", ".join(h for h, _ in runs)))


if __name__ == "__main__":
    main()
