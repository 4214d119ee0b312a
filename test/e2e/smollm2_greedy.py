#!/usr/bin/env python3
"""Checks a greedy chat answer of weft's (the output of scripts/demo_chat.py)
against onnxruntime running the same graph and weights greedily, without a
cache (a full forward pass per token), on the prompt ids transformers'
apply_chat_template gives for the same question.

  smollm2_greedy.py MODEL_DIR QUESTION MAX_TOKENS WEFT_OUTPUT

Both the prompt ids (weft tokenize --chat against transformers) and the answer
ids (weft against onnxruntime) must be equal.
"""
import json
import sys

import numpy as np
import onnxruntime as ort
from transformers import AutoTokenizer


def ids_line(text, label):
    for line in text.splitlines():
        if line.strip().startswith(label):
            return json.loads(line.split(":", 1)[1])
    raise SystemExit(f"error: no '{label}' line in weft's output")


def main():
    model_dir, question, max_tokens, weft_out = sys.argv[1:5]
    weft_text = open(weft_out).read()
    tok = AutoTokenizer.from_pretrained(model_dir)
    prompt = tok.apply_chat_template([{"role": "user", "content": question}],
                                     add_generation_prompt=True, tokenize=True)
    if not isinstance(prompt, list):
        prompt = prompt["input_ids"]
    eos = json.load(open(f"{model_dir}/generation_config.json"))["eos_token_id"]
    eos = set(eos if isinstance(eos, list) else [eos])
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(f"{model_dir}/model.onnx", opts,
                                providers=["CPUExecutionProvider"])
    answer = []
    for _ in range(int(max_tokens)):
        logits = sess.run(None, {"input_ids": np.array([prompt + answer], np.int64)})[0]
        answer.append(int(logits[0, -1].argmax()))
        if answer[-1] in eos:
            break
    got_prompt, got_answer = ids_line(weft_text, "prompt ids"), ids_line(weft_text, "answer ids")
    print("onnxruntime:", repr(tok.decode(answer)))
    ok = True
    if got_prompt != prompt:
        print(f"prompt ids differ:\n  weft         {got_prompt}\n  transformers {prompt}")
        ok = False
    if got_answer != answer:
        print(f"answer ids differ:\n  weft        {got_answer}\n  onnxruntime {answer}")
        ok = False
    print("ok: weft's greedy answer equals onnxruntime's" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
