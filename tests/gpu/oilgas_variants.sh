#!/usr/bin/env bash
# Oil & Gas preset variants on the GPU: SFT+DPO with other learning rates / epochs, each scored.
set -uo pipefail
model=/root/models/SmolLM2-135M-Instruct.Q4_1.gguf; T=/root/bin/tunelab
variant() {
  name=$1; lr=$2; epochs=$3
  work=/root/work/oil-$name; rm -rf $work; mkdir -p $work; cp -r sample_data/oilgas/. $work/
  cd $work
  sed -i "s|^model_name = \"\"|model_name = \"$model\"|; s|^learning_rate = 1e-3|learning_rate = $lr|; s|^num_train_epochs = 5|num_train_epochs = $epochs|" config.toml
  $T train --config config.toml --device cuda > $OUT/res/$name-train.log 2>&1
  for v in sft dpo; do
    $T eval --config config.toml --device cuda --adapter runs/oilgas/$v/adapter --json $OUT/res/$name-$v.json > $OUT/res/$name-$v.log 2>&1
  done
  grep -h text_pass $OUT/res/$name-*.log | sed "s/^/$name lr=$lr epochs=$epochs /" >> $OUT/res/summary.txt
}
mkdir -p $OUT/res
here=$(pwd)
(cd $here && variant a 5e-4 3) & (cd $here && variant b 1e-3 3) & (cd $here && variant c 2e-3 5) & (cd $here && variant d 5e-4 8) & wait
tar czf $OUT/res.tgz -C $OUT res; cat $OUT/res/summary.txt
