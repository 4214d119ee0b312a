# Writes a tiny tokenizer directory (WordPiece tokenizer.json and a
# tokenizer_config.json) for the chat-template CLI tests; with a template
# file, it becomes the directory's chat_template.jinja.
import json
import os
import sys

from tokenizers import Tokenizer, models, pre_tokenizers


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    words = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]", "hi", "there"]
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(words)},
                                     unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens(["<s>", "</s>"])
    tok.save(os.path.join(out, "tokenizer.json"))
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}, f)
    if len(sys.argv) > 2:
        with open(sys.argv[2]) as src, open(os.path.join(out, "chat_template.jinja"), "w") as dst:
            dst.write(src.read())


if __name__ == "__main__":
    main()
