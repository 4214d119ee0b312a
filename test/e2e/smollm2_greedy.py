#!/usr/bin/env python3
"""Checks a greedy chat answer of weft's (`weft generate --chat --json`)
against onnxruntime running the same graph and weights greedily, without a
cache (a full forward pass per token), on the prompt ids transformers'
apply_chat_template gives for the same question.

  smollm2_greedy.py MODEL_DIR QUESTION MAX_TOKENS WEFT_JSON

Both the prompt ids (weft's chat template and tokenizer against
transformers) and the answer ids (weft against onnxruntime) must be equal.
"""
import json
import sys

import numpy as np
import onnxruntime as ort
from transformers import AutoTokenizer


def main():
    model_dir, question, max_tokens, weft_out = sys.argv[1:5]
    lines = [line for line in open(weft_out) if line.strip()]
    if len(lines) != 1:
        raise SystemExit(f"error: expected one JSON line from weft, got {len(lines)}")
    weft = json.loads(lines[0])
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
    got_prompt, got_answer = weft["prompt_ids"], weft["ids"]
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
