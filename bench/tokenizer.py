#!/usr/bin/env python3
"""Encoding speed of weft's tokenizer against the `tokenizers` package.

Generates a deterministic English-like text (about 6 MB: sentences of words
drawn with a Zipf law from a 60,000-word vocabulary, punctuation, numbers,
paragraphs), then encodes it line by line on one core with
`weft tokenize --bench` (the encode loop timed in C++) and with the
`tokenizers` package (encode_batch under RAYON_NUM_THREADS=1), checks both
produce the same number of tokens, and prints tokens/s for each.

usage: bench/tokenizer.py [--weft build/bin/weft] [--tokenizer DIR] [--mb 6]
The tokenizer defaults to test/fixtures/smollm2 (SmolLM2's real byte-level
BPE) where present, else a byte-level BPE trained here on the text.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

os.environ["RAYON_NUM_THREADS"] = "1"  # before tokenizers starts its pool
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMON = ("the of and to a in is it you that he was for on are with as I his "
          "they be at one have this from or had by not word but what some we "
          "can out other were all there when up use your how said an each she "
          "which do their time if will way about many then them write would "
          "like so these her long make thing see him two has look more day "
          "could go come did number sound no most people my over know water "
          "than call first who may down side been now find").split()


def english(mb, seed=7):
    rng = random.Random(seed)
    syll = ["ba", "con", "de", "ex", "ing", "tion", "ment", "pro", "re", "st",
            "ver", "al", "ous", "ly", "er", "an", "in", "ar", "or", "ic", "ate"]
    vocab = COMMON + ["".join(rng.choice(syll) for _ in range(rng.randint(2, 4)))
                      for _ in range(60000)]
    cum, total = [], 0.0
    for i in range(len(vocab)):
        total += 1.0 / (i + 1)
        cum.append(total)
    out, size = [], 0
    while size < mb * 1_000_000:
        sentences = []
        for _ in range(rng.randint(2, 8)):
            words = rng.choices(vocab, cum_weights=cum, k=rng.randint(5, 25))
            if rng.random() < 0.2:
                words.insert(rng.randrange(len(words)),
                             str(rng.randrange(1, 100000)))
            s = " ".join(words)
            s = s[0].upper() + s[1:]
            if rng.random() < 0.3:
                cut = rng.randrange(1, len(words))
                s = " ".join(words[:cut]) + ", " + " ".join(words[cut:])
                s = s[0].upper() + s[1:]
            sentences.append(s + rng.choice([".", ".", ".", "?", "!", ";"]))
        para = " ".join(sentences)
        out.append(para)
        size += len(para) + 1
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weft", default=os.path.join(ROOT, "build/bin/weft"))
    ap.add_argument("--tokenizer")
    ap.add_argument("--mb", type=float, default=6)
    args = ap.parse_args()
    text = english(args.mb)
    work = tempfile.mkdtemp(prefix="weft-tokbench-")
    text_path = os.path.join(work, "english.txt")
    with open(text_path, "w", encoding="utf-8") as f:
        f.write(text)
    tok_dir = args.tokenizer
    fixture = os.path.join(ROOT, "test/fixtures/smollm2")
    if not tok_dir and os.path.exists(os.path.join(fixture, "tokenizer.json")):
        tok_dir = fixture
    if not tok_dir:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.train_from_iterator(text[:1_000_000].split("\n"), trainers.BpeTrainer(
            vocab_size=16000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
        tok_dir = os.path.join(work, "bpe")
        os.makedirs(tok_dir)
        tok.save(os.path.join(tok_dir, "tokenizer.json"))
    lines = [l + "\n" for l in text.split("\n")[:-1]]

    tok = Tokenizer.from_file(os.path.join(tok_dir, "tokenizer.json"))
    start = time.perf_counter()
    encodings = tok.encode_batch(lines)
    hf_seconds = time.perf_counter() - start
    hf_tokens = sum(len(e.ids) for e in encodings)

    proc = subprocess.run([args.weft, "tokenize", "--tokenizer", tok_dir,
                           "--bench", text_path], capture_output=True, text=True)
    if proc.returncode:
        sys.exit("bench: weft failed: " + proc.stderr)
    weft = json.loads(proc.stdout)
    if weft["tokens"] != hf_tokens:
        sys.exit("bench: token counts differ: weft %d, tokenizers %d" %
                 (weft["tokens"], hf_tokens))
    mb = len(text.encode()) / 1e6
    print("text: %.1f MB English-like, %d lines, %d tokens; tokenizer %s" %
          (mb, len(lines), hf_tokens, tok_dir))
    for name, secs in [("weft", weft["seconds"]), ("tokenizers", hf_seconds)]:
        print("%-11s %6.3f s  %6.2f M tokens/s/core  %5.1f MB/s" %
              (name, secs, hf_tokens / secs / 1e6, mb / secs))


if __name__ == "__main__":
    main()
