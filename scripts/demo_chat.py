#!/usr/bin/env python3
"""Answers one chat question with a compiled model, greedily, by repeated full
forward passes (`weft run` on the prompt so far, right-padded to the compiled
length; causal attention makes the padding invisible to the real positions).

  demo_chat.py --weft BIN_DIR --tokenizer DIR --artifact MODEL.weft --seq S
               [--max-tokens N] QUESTION

The prompt is rendered and tokenized by `weft tokenize --chat`, the answer
decoded by `weft detokenize`, and streamed as it comes. Prints the token ids
last, so a test can compare them with another implementation's.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def weft(bin_dir, *args, stdin=None):
    r = subprocess.run([os.path.join(bin_dir, "weft"), *args], input=stdin,
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.stderr.write(r.stderr)
        raise SystemExit(r.returncode)
    return r.stdout


def eos_ids(tokenizer_dir):
    ids = set()
    path = os.path.join(tokenizer_dir, "generation_config.json")
    if os.path.isfile(path):
        eos = json.load(open(path)).get("eos_token_id")
        ids.update(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    return ids


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--weft", required=True)
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--artifact", required=True)
    p.add_argument("--seq", type=int, required=True)
    p.add_argument("--max-tokens", type=int, default=48)
    p.add_argument("question")
    a = p.parse_args()

    messages = [{"role": "user", "content": a.question}]
    prompt = json.loads(weft(a.weft, "tokenize", "--tokenizer", a.tokenizer, "--chat",
                             stdin=json.dumps(messages) + "\n"))
    stop = eos_ids(a.tokenizer)
    ids, shown, t0 = list(prompt), "", time.time()
    print(f"  user: {a.question}\n  assistant: ", end="", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")
        for _ in range(a.max_tokens):
            if len(ids) >= a.seq:
                break
            x = np.zeros((1, a.seq), np.int64)
            x[0, :len(ids)] = ids
            np.savez(inp, input_ids=x)
            weft(a.weft, "run", a.artifact, "--inputs", inp, "--outputs", out)
            with np.load(out) as z:
                nxt = int(z[z.files[0]][0, len(ids) - 1].argmax())
            ids.append(nxt)
            if nxt in stop:
                break
            text = json.loads(weft(a.weft, "detokenize", "--tokenizer", a.tokenizer,
                                   "--skip-special-tokens",
                                   stdin=json.dumps(ids[len(prompt):]) + "\n"))
            # Print only whole characters: a partial UTF-8 sequence decodes to U+FFFD.
            if not text.endswith("\ufffd"):
                print(text[len(shown):], end="", flush=True)
                shown = text
    n = len(ids) - len(prompt)
    print(f"\n  ({n} tokens in {time.time() - t0:.1f} s, a full forward pass each)")
    print("  prompt ids:", json.dumps(prompt))
    print("  answer ids:", json.dumps(ids[len(prompt):]))


if __name__ == "__main__":
    main()
