#!/usr/bin/env bash
# Proves tunelab's exports against the real readers: PEFT, transformers (safetensors and GGUF
# loaders), the gguf package and, where installed, llama.cpp (llama-cpp-python).
#
#   tests/interop/run.sh [WORK_DIR]        (default WORK_DIR: target/interop)
#
# Environment:
#   TUNELAB  the tunelab binary (default: target/release/tunelab, built if missing)
#   PYTHON   a python with torch, transformers, peft, gguf, safetensors (default: python3)
#   ADAPTER  a PEFT adapter of the default model (default: train one, 8 steps, tests/interop/train.toml)
#   DEVICE   cpu or cuda for the torch side (default: cuda when torch sees one)
# Prints a PASS/FAIL table; exits non-zero on any FAIL.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${1:-target/interop}
TUNELAB=${TUNELAB:-target/release/tunelab}
PYTHON=${PYTHON:-python3}
[ -x "$TUNELAB" ] || cargo build --release
mkdir -p "$WORK"
if [ -z "${ADAPTER:-}" ]; then
    ADAPTER=$WORK/run/adapter
    [ -d "$ADAPTER" ] || "$TUNELAB" train --config tests/interop/train.toml --output-dir "$WORK/run"
fi
rm -rf "$WORK"/peft "$WORK"/base_hf "$WORK"/merged_hf "$WORK"/merged_bf16 "$WORK"/merged_*.gguf
export_() { echo "+ tunelab export $*" >&2; "$TUNELAB" export "$@"; }
export_ --adapter "$ADAPTER" --to peft --out "$WORK/peft"
export_ --to hf --dtype f32 --out "$WORK/base_hf"
export_ --adapter "$ADAPTER" --to hf --dtype f32 --out "$WORK/merged_hf"
export_ --adapter "$ADAPTER" --to hf --out "$WORK/merged_bf16"
export_ --adapter "$ADAPTER" --to gguf --out "$WORK/merged_f16.gguf"
export_ --adapter "$ADAPTER" --to gguf --quant q8_0 --out "$WORK/merged_q8_0.gguf"
export_ --adapter "$ADAPTER" --to gguf --quant q4_k --out "$WORK/merged_q4_k.gguf"
PROMPTS=(
    --prompt "Boost gaming latency for +46701234567 for 10 minutes to server 10.0.0.5"
    --prompt "What is the capital of France?"
    --prompt "Stream video from 2001:db8::1 to 198.51.100.7 for one hour, device +14155550100"
)
"$TUNELAB" logits --adapter "$ADAPTER" "${PROMPTS[@]}" > "$WORK/tl_adapter.json"
"$TUNELAB" logits --model "$WORK/merged_q8_0.gguf" "${PROMPTS[@]}" > "$WORK/tl_q8_0.json"
"$PYTHON" tests/interop/check_exports.py "$WORK" ${DEVICE:+--device "$DEVICE"}
