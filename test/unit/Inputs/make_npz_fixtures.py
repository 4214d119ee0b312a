#!/usr/bin/env python3
"""Writes the .npz fixtures of RuntimeNpzTest.cpp (run from this directory).

numpy_stored.npz / numpy_deflated.npz: the same three arrays, written by
np.savez and np.savez_compressed. fortran.npz, complex.npz, bigendian.npz:
arrays the runtime refuses.
"""
import numpy as np

arrays = dict(x=np.array([[1.5, -2.0, 3.25]], dtype=np.float32),
              ids=np.array([7, -1], dtype=np.int64),
              flag=np.array(True))
np.savez("numpy_stored.npz", **arrays)
np.savez_compressed("numpy_deflated.npz", **arrays)
np.savez("fortran.npz", a=np.asfortranarray(np.ones((2, 3), np.float32)))
np.savez("complex.npz", a=np.ones(2, np.complex64))
np.savez("bigendian.npz", a=np.ones(2, ">f4"))
