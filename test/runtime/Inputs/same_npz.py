#!/usr/bin/env python3
"""Checks that two .npz files hold the same arrays, bit for bit.

  same_npz.py A.npz B.npz    prints "identical" or what differs; exits 1
"""
import sys

import numpy as np


def main():
    with np.load(sys.argv[1]) as a, np.load(sys.argv[2]) as b:
        if sorted(a.files) != sorted(b.files):
            print("arrays differ: %s vs %s" % (sorted(a.files), sorted(b.files)))
            return 1
        for k in a.files:
            if (a[k].dtype != b[k].dtype or a[k].shape != b[k].shape or
                    a[k].tobytes() != b[k].tobytes()):
                print("array '%s' differs" % k)
                return 1
    print("identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
