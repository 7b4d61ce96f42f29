#!/usr/bin/env bash
# Oil & Gas preset on the GPU with other DPO settings (the SFT stage as in the preset), each
# pipeline's SFT and DPO adapters scored on eval.jsonl. Run from the repository root with the
# binary in /root/bin and the default model in /root/models; results under $OUT/res.
set -uo pipefail
model=/root/models/SmolLM2-135M-Instruct.Q4_1.gguf; T=/root/bin/tunelab
variant() {
  name=$1; edits=$2
  work=/root/work/oil-$name; rm -rf $work; mkdir -p $work; cp -r sample_data/oilgas/. $work/
  cd $work
  sed -i "s|^model_name = \"\"|model_name = \"$model\"|; $edits" config.toml
  $T train --config config.toml --device cuda > $OUT/res/$name-train.log 2>&1
  for v in sft dpo; do
    $T eval --config config.toml --device cuda --adapter runs/oilgas/$v/adapter > $OUT/res/$name-$v.log 2>&1
    echo "$name $v ($edits): $(grep -h '^text_pass' $OUT/res/$name-$v.log)" >> $OUT/res/summary.txt
  done
}
mkdir -p $OUT/res
here=$(pwd)
(cd $here && variant lr2e-5 's|^learning_rate = 5e-5|learning_rate = 2e-5|') &
(cd $here && variant beta0.5 's|^beta = 0.1|beta = 0.5|') &
(cd $here && variant rpo2 's|^rpo_alpha = 1.0|rpo_alpha = 2.0|') &
(cd $here && variant epoch1 's|^num_train_epochs = 2|num_train_epochs = 1|') &
wait
sort $OUT/res/summary.txt
