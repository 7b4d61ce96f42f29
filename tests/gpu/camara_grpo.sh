#!/usr/bin/env bash
# The CAMARA preset's SFT stage, then DPO (the preset's) and GRPO (grpo.toml's [grpo] table,
# STEPS steps, default 40) each from the same SFT adapter, and the three adapters scored on
# eval.jsonl. Prints each stage's wall time, GRPO's rollout tokens/s and the share of its steps
# spent sampling.
#   [MODEL=/root/models/FILE.gguf] [STEPS=40] tests/gpu/camara_grpo.sh
set -uo pipefail
model=${MODEL:-/root/models/SmolLM2-135M-Instruct.Q4_1.gguf}; T=/root/bin/tunelab
work=/root/work/camara_grpo; mkdir -p $work; cp -rn sample_data/camara_qod/. $work/
cd $work
# Results go to R, packed into OUT as one archive after each part (OUT takes a few files).
R=$work/results; mkdir -p $R; pack() { tar czf $OUT/camara_grpo.tgz -C $R .; cp $R/summary.txt $OUT/ 2>/dev/null; }
sed -e "s|^model_name = \"\"|model_name = \"$model\"|" config.toml > pipe.toml
sed -e "s|^model_name = \"\"|model_name = \"$model\"|" -e 's|^stages = .*|stages = ["grpo"]|' \
    -e "s|^output_dir = .*|output_dir = \"runs/grpo\"\ninit_adapter = \"runs/camara_qod/sft/adapter\"|" \
    -e "s|^max_steps = 100|max_steps = ${STEPS:-40}|" grpo.toml > grpo1.toml
bounded() {
  setsid "$@" & local pid=$!
  ( sleep "${LIMIT:-300}"; kill -- -$pid 2>/dev/null ) & local guard=$!
  wait $pid; local rc=$?; kill $guard 2>/dev/null; return $rc
}
start=$(date +%s)
$T train --config pipe.toml --device cuda --json > $R/sft-dpo.jsonl 2> $R/sft-dpo.log
echo "sft+dpo exit $? in $(( $(date +%s) - start )) s" | tee -a $R/summary.txt; pack
start=$(date +%s)
bounded $T train --config grpo1.toml --device cuda --json > $R/grpo.jsonl 2> $R/grpo.log
echo "grpo exit $? in $(( $(date +%s) - start )) s" | tee -a $R/summary.txt; pack
grpo=runs/grpo/grpo/adapter
[ -d $grpo ] || grpo=$(ls -d runs/grpo/grpo/checkpoint-* 2>/dev/null | sort -t- -k2 -n | tail -1)
for pair in sft:runs/camara_qod/sft/adapter dpo:runs/camara_qod/dpo/adapter grpo:$grpo; do
  name=${pair%%:*}; dir=${pair#*:}
  $T eval --config pipe.toml --device cuda --adapter $dir --json $R/eval-$name.json > $R/eval-$name.log 2>&1
  echo "eval $name ($dir) exit $?" | tee -a $R/summary.txt
done
python3 - "$R" <<'PY' | tee -a $R/summary.txt
import json, sys, statistics
out = sys.argv[1]
def events(name):
    rows = []
    for line in open(f"{out}/{name}.jsonl"):
        try: rows.append(json.loads(line))
        except ValueError: pass
    return rows
stages = {}
for name in ("sft-dpo", "grpo"):
    for e in events(name):
        if e["event"] == "started": stage = e["stage"]; stages[stage] = []
        if e["event"] == "step": stages[stage].append(e)
for stage, steps in stages.items():
    if steps:
        print(f"{stage}: {len(steps)} steps, {steps[-1]['elapsed_s']:.1f} s of training")
steps = stages.get("grpo", [])
if steps:
    key = lambda k: [s["metrics"][k] for s in steps if k in s["metrics"]]
    print(f"grpo: rollout tokens/s median {statistics.median(key('rollout/tokens_per_s')):.0f}; "
          f"generation share of a sampling step median "
          f"{statistics.median([v for v in key('rollout/generation_share') if v > 0]):.2f}; "
          f"reward first 5 steps {statistics.mean(key('reward')[:5]):.3f}, last 5 "
          f"{statistics.mean(key('reward')[-5:]):.3f}; completions/mean_length last "
          f"{key('completions/mean_length')[-1]:.1f}; clipped_ratio last "
          f"{key('completions/clipped_ratio')[-1]:.2f}")
for name in ("sft", "dpo", "grpo"):
    try: r = json.load(open(f"{out}/eval-{name}.json"))
    except Exception as e: print(name, "no eval", e); continue
    metrics = r.get("metrics") or r.get("tuned") or r
    print(name, json.dumps(metrics)[:600])
PY
tail -5 $R/grpo.log; pack
