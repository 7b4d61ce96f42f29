#!/usr/bin/env bash
# The CAMARA preset's SFT stage searched on one GPU: 12 trials (learning rate × epochs × LoRA
# rank) packed by the memory estimate with median stopping, scored on eval.jsonl by
# expect_json_exact; then two of the same trials one at a time (--parallel 1) for trials/hour;
# then the best adapter (BEST, default the packed sweep's) evaluated free and constrained, and
# the base model 3-shot and constrained.
#   [MODEL=/root/models/FILE.gguf] [PART=packed|sequential|evals] [BEST=DIR] tests/gpu/camara_sweep.sh
set -uo pipefail
model=${MODEL:-/root/models/SmolLM2-135M-Instruct.Q4_1.gguf}; T=/root/bin/tunelab
work=/root/work/camara_sweep; mkdir -p $work; cp -rn sample_data/camara_qod/. $work/
cd $work
sed -e "s|^model_name = \"\"|model_name = \"$model\"|" -e 's|^stages = .*|stages = ["sft"]|' \
    -e '/^\[dpo\]/,$d' config.toml > sweep.toml
cat >> sweep.toml <<'TOML'

[sweep]
objective = "expect_json_exact"
early_stopping = "median"

[sweep.grid]
learning_rate = [2e-4, 5e-4, 1e-3]
num_train_epochs = [1, 2]
lora_r = [16, 64]
TOML
# Runs a command in its own process group for at most LIMIT seconds (default 540, under one
# device call), then stops the whole group: trials are child processes, and a sweep started
# again resumes from sweep.jsonl.
bounded() {
  setsid "$@" & local pid=$!
  ( sleep "${LIMIT:-540}"; kill -- -$pid 2>/dev/null ) & local guard=$!
  wait $pid; local rc=$?; kill $guard 2>/dev/null; return $rc
}
case ${PART:-packed} in
  packed)
    bounded $T sweep --config sweep.toml --device cuda --json --output-dir $work/runs/packed \
      >> $OUT/sweep-packed.jsonl 2>> $OUT/sweep-packed.log; echo "sweep exit $?" >> $OUT/sweep-packed.log
    cp runs/packed/sweep.jsonl $OUT/sweep-packed-records.jsonl; tail -25 $OUT/sweep-packed.log ;;
  sequential)
    bounded $T sweep --config sweep.toml --device cuda --json --output-dir $work/runs/sequential --parallel 1 \
      --grid 'learning_rate=[1e-3]' --grid 'num_train_epochs=[2]' \
      > $OUT/sweep-sequential.jsonl 2> $OUT/sweep-sequential.log; echo "sweep exit $?" >> $OUT/sweep-sequential.log
    tail -8 $OUT/sweep-sequential.log ;;
  evals)
    best=${BEST:-runs/packed/best}
    $T eval --config sweep.toml --device cuda --adapter $best --constrain both --json $OUT/best-eval.json \
      > $OUT/best-eval.log 2>&1; echo "eval exit $?" >> $OUT/best-eval.log
    $T eval --config sweep.toml --device cuda --base --few-shot 3 --json $OUT/base-3shot.json \
      > $OUT/base-3shot.log 2>&1; echo "eval exit $?" >> $OUT/base-3shot.log
    $T eval --config sweep.toml --device cuda --base --constrain schema --json $OUT/base-constrained.json \
      > $OUT/base-constrained.log 2>&1; echo "eval exit $?" >> $OUT/base-constrained.log
    cat $OUT/best-eval.log $OUT/base-3shot.log $OUT/base-constrained.log | grep -v '^\s*$' | tail -80 ;;
esac
