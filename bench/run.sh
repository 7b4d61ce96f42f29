#!/usr/bin/env bash
# The benchmark table: tunelab and transformers + PEFT on the same workloads, on this machine's
# GPU, each row run REPEATS times by each side, alternating; the medians and their ratio.
#
#   bench/run.sh TUNELAB MODEL.gguf OUT_DIR
#
# TUNELAB   the tunelab binary (built with --features cuda)
# MODEL     the default model's GGUF (SmolLM2-135M-Instruct Q4_1)
# OUT_DIR   where results.jsonl and table.md go
# Env: PYTHON (default python3; torch, transformers, peft, and gguf for the GGUF row),
#      REPEATS (default 3), STEPS (default 20), ROWS (default: all; e.g. "smol-sft-8 1b-dpo-4").
set -euo pipefail
TUNELAB=$1 MODEL=$2 OUT=$3
PYTHON=${PYTHON:-python3} REPEATS=${REPEATS:-3} STEPS=${STEPS:-20}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
: > "$OUT/results.jsonl"

# name | model arguments | stage | batch | seq | tunelab's gradient checkpointing
# PEFT runs without gradient checkpointing. tunelab recomputes as few layers as keep its peak
# within half of PEFT's: none for SFT; for DPO (whose batch holds two sequences a pair) the
# first 12 of SmolLM2's 30 layers and 4 of Llama-1B's 16.
ALL_ROWS=(
  "smol-sft-8|--model $MODEL|sft|8|256|false"
  "smol-sft-32|--model $MODEL|sft|32|256|false"
  "1b-sft-8|--synthetic llama-1b|sft|8|256|false"
  "smol-dpo-4|--model $MODEL|dpo|4|256|12"
  "1b-dpo-4|--synthetic llama-1b|dpo|4|256|4"
  "qwen3-sft-8x512|--synthetic qwen3-0.6b|sft|8|512|false"
  "qwen3-dpo-4|--synthetic qwen3-0.6b|dpo|4|512|false"
  "gemma3-1b-sft-8x512|--synthetic gemma3-1b|sft|8|512|false"
  "gemma3-1b-dpo-4|--synthetic gemma3-1b|dpo|4|512|false"
  "8b-sft-8x512|--synthetic llama-8b|sft|8|512|true"
  "8b-dpo-4|--synthetic llama-8b|dpo|4|512|true"
)
for row in "${ALL_ROWS[@]}"; do
  IFS='|' read -r name source stage batch seq checkpointing <<< "$row"
  if [ -n "${ROWS:-}" ] && [[ " $ROWS " != *" $name "* ]]; then continue; fi
  shape=(--stage "$stage" --batch "$batch" --seq "$seq" --steps "$STEPS" --warmup 3)
  for i in $(seq "$REPEATS"); do
    # A side that fails (out of memory, say) leaves an error line and the rest goes on.
    for side in tunelab peft; do
      if [ "$side" = tunelab ]; then cmd=("$TUNELAB" bench --device cuda --gradient-checkpointing "$checkpointing"); else cmd=("$PYTHON" "$HERE/peft_baseline.py"); fi
      # shellcheck disable=SC2086
      if line=$("${cmd[@]}" $source "${shape[@]}" 2>"$OUT/$side.err"); then
        echo "$line" | sed "s/^{/{\"row\":\"$name\",/" >> "$OUT/results.jsonl"
      else
        err=$(grep -v '^\s*$' "$OUT/$side.err" | tail -n 1 | tr -d '"\\' | cut -c1-200)
        echo "{\"row\":\"$name\",\"impl\":\"$side\",\"stage\":\"$stage\",\"batch\":$batch,\"seq\":$seq,\"error\":\"$err\"}" >> "$OUT/results.jsonl"
      fi
      tail -n 1 "$OUT/results.jsonl" | cut -c1-200
    done
  done
done
"$PYTHON" "$HERE/table.py" "$OUT/results.jsonl" | tee "$OUT/table.md"
