#!/usr/bin/env python3
"""Checks that a printed module uses every op the weft dialect defines.

  python every_op.py Weft.td printed.mlir

Reads each op's mnemonic from the TableGen file (`def Weft_XOp : <class><"x"`
or `: Op<Weft_Dialect, "x"`) and fails, naming them, if any op is not
printed as `= weft.x` in the module: a new op needs its round-trip case in
ops.mlir.
"""

import re
import sys


def main():
    td, printed = (open(p).read() for p in sys.argv[1:3])
    ops = re.findall(
        r'^def Weft_\w+Op\s*:\s*(?:Weft_\w+|Op<Weft_Dialect,)\s*<?\s*"(\w+)"',
        td, re.M)
    if not ops:
        sys.exit("every_op.py: no op definitions found in " + sys.argv[1])
    missing = [op for op in ops
               if not re.search(r"= weft\." + op + r"\b", printed)]
    if missing:
        sys.exit("every_op.py: not round-tripped: "
                 + ", ".join("weft." + op for op in missing))
    print(f"{len(ops)} ops, every one round-tripped")


if __name__ == "__main__":
    main()
