#!/usr/bin/env python3
"""Writes a lit site configuration that loads the suite's own lit.cfg.py
with the build facts given here, for a nested lit run.

  python write_lit_site.py DIR --src SRC --tools BIN --llvm-tools BIN
      --python PY --mpi ON|OFF --cuda ON|OFF

DIR/lit.site.cfg.py gets the values lit.site.cfg.py.in gets from CMake; the
exec root is DIR/obj (nothing is written there by an UNSUPPORTED test).
"""

import argparse
import os


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    for flag in ("--src", "--tools", "--llvm-tools", "--python", "--mpi",
                 "--cuda"):
        p.add_argument(flag, required=True)
    a = p.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    values = {
        "weft_src_root": a.src,
        "weft_obj_root": os.path.join(os.path.abspath(a.dir), "obj"),
        "weft_tools_dir": a.tools,
        "llvm_tools_dir": a.llvm_tools,
        "python_executable": a.python,
        "weft_have_mpi": a.mpi,
        "weft_enable_cuda": a.cuda,
    }
    with open(os.path.join(a.dir, "lit.site.cfg.py"), "w") as f:
        for key, value in values.items():
            f.write("config.%s = %r\n" % (key, value))
        f.write("lit_config.load_config(config, %r)\n"
                % os.path.join(a.src, "test", "lit.cfg.py"))


if __name__ == "__main__":
    main()
