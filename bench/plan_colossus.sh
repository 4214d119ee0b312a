#!/usr/bin/env bash
# Times `weft plan` on the colossus-1 preset (100,000 H100) for a
# Llama-70B-shaped model whose weights are referenced, not present: batch 64,
# prompt 2048, 256 generated tokens. Prints the wall time and peak memory,
# then the best layouts. Usage: bench/plan_colossus.sh [--form dynamo|torchscript] [ARGS...]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${WEFT_BUILD_DIR:-$ROOT/build}"
FORM=torchscript
if [[ "${1:-}" == "--form" ]]; then
  FORM="$2"
  shift 2
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
"$ROOT/.venv/bin/python" "$ROOT/test/models/make_llama70b.py" \
  "$WORK/llama70b.onnx" --form "$FORM"
/usr/bin/time -v "$BUILD/bin/weft" plan "$WORK/llama70b.onnx" \
  --topology colossus-1 --batch 64 --prompt 2048 --gen 256 --top 5 "$@" \
  >"$WORK/plan.txt" 2>"$WORK/time.txt"
grep -E 'Elapsed|Maximum resident' "$WORK/time.txt"
sed -n '1,14p' "$WORK/plan.txt"
