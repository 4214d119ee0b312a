#!/usr/bin/env python3
"""Saves a copy of an ONNX model with its weights in an external data file:
python to_external_data.py IN.onnx OUT.onnx DATA_FILE_NAME"""
import sys

import onnx

model = onnx.load(sys.argv[1])
onnx.save_model(model, sys.argv[2], save_as_external_data=True,
                all_tensors_to_one_file=True, location=sys.argv[3],
                size_threshold=1024)
