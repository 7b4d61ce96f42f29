#!/usr/bin/env bash
# Trains a preset (SFT then DPO) on the GPU and scores base, SFT and SFT+DPO on its eval file.
#   [MODEL=/root/models/FILE.gguf] tests/gpu/preset_evals.sh PRESET   (default: SmolLM2-135M)
set -uo pipefail
preset=$1; model=${MODEL:-/root/models/SmolLM2-135M-Instruct.Q4_1.gguf}; T=/root/bin/tunelab
work=/root/work/$preset; rm -rf $work; mkdir -p $work; cp -r sample_data/$preset/. $work/
sed -i "s|^model_name = \"\"|model_name = \"$model\"|" $work/config.toml
cd $work
start=$(date +%s)
$T train --config config.toml --device cuda > $OUT/$preset-train.log 2>&1; echo "train exit $? in $(( $(date +%s) - start ))s" | tee -a $OUT/$preset-summary.txt
run=$(grep -o 'output_dir: .*' $OUT/$preset-train.log | tail -1 | cut -d' ' -f2)
dir=$(dirname $run)
[ -d "$dir/sft" ] || dir=$run
for v in base sft dpo; do
  case $v in base) a="--base";; *) a="--adapter $dir/$v/adapter";; esac
  $T eval --config config.toml --device cuda $a --json $OUT/$preset-eval-$v.json > $OUT/$preset-eval-$v.log 2>&1; echo "eval $v exit $?" >> $OUT/$preset-summary.txt
done
grep -h "" $OUT/$preset-eval-*.log | grep -v "^\s*$" | tail -80 >> $OUT/$preset-summary.txt
cat $OUT/$preset-summary.txt
