#!/usr/bin/env bash
# Measures the compiler itself on a Llama-70B-shaped model whose external
# weight file is absent: wall time per phase and peak memory of
# `weft compile --tp 8` (extra arguments are passed on, e.g.
# `--pp 4 --topology dgx-h100-pod32`), and rank 0's plan. WEFT_BUILD_DIR
# names the build whose bin/weft it runs (default build/).
# Usage: bench/compile_70b.sh [ARGS...]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${WEFT_BUILD_DIR:-$ROOT/build}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$ROOT/.venv/bin/python" "$ROOT/test/models/make_llama70b.py" "$WORK/llama70b.onnx"
/usr/bin/time -v "$BUILD/bin/weft" compile "$WORK/llama70b.onnx" \
  --dim batch=1 --dim seq=2048 --tp 8 --topology dgx-h100 "$@" \
  -o "$WORK/llama70b.weft" 2>&1 |
  grep -E '^\[|Elapsed|Maximum resident'
# The artifact's header and rank 0's plan (arena, weights, steps by kind).
"$BUILD/bin/weft" inspect "$WORK/llama70b.weft" --summary |
  awk '/^rank 1 /{stop=1} !stop'
