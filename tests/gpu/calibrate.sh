#!/usr/bin/env bash
# On a GPU machine: short training runs of fixed shapes (every sequence exactly SEQ tokens), each
# recording its measured peak device memory beside the estimate (output_dir/memory.json); then
# the table of estimate vs measured.
#   tests/gpu/calibrate.sh BINARY MODEL.gguf OUTDIR [STAGE:BATCH:SEQ ...]
set -uo pipefail
bin=$1; model=$2; out=$3; shift 3
shapes=("$@")
[ ${#shapes[@]} -eq 0 ] && shapes=(sft:4:256 sft:8:256 sft:16:256 sft:8:512 dpo:4:256 dpo:8:256)
mkdir -p "$out/data"
# Records far longer than any SEQ, so truncation makes every sequence exactly SEQ tokens.
python3 - "$out/data" <<'PY'
import json, sys
words = "dynamic positioning keeps the vessel on station with thrusters and references ".split()
long = " ".join(words[i % len(words)] for i in range(1500))
with open(sys.argv[1] + "/sft.jsonl", "w") as f:
    for i in range(64):
        f.write(json.dumps({"prompt": f"Explain {i}.", "completion": long}) + "\n")
with open(sys.argv[1] + "/pref.jsonl", "w") as f:
    for i in range(64):
        f.write(json.dumps({"prompt": f"Explain {i}.", "chosen": long, "rejected": long[::-1]}) + "\n")
PY
for shape in "${shapes[@]}"; do
  IFS=: read -r stage batch seq <<< "$shape"
  dir="$out/$stage-b$batch-s$seq"
  mkdir -p "$dir"
  cat > "$dir/config.toml" <<TOML
stage = "$stage"
model_name = "$model"
train_file = "../data/$([ "$stage" = dpo ] && echo pref || echo sft).jsonl"
output_dir = "run"
per_device_train_batch_size = $batch
max_seq_length = $seq
max_steps = 4
logging_steps = 1
save_steps = 1000
TOML
  "$bin" train --config "$dir/config.toml" --device cuda > "$dir/train.log" 2>&1 \
    || { echo "FAIL $shape"; tail -3 "$dir/train.log"; continue; }
done
python3 - "$out" <<'PY'
import json, glob, os, sys
print(f"{'shape':<16} {'measured GiB':>12} {'estimated GiB':>13} {'error':>8}")
for path in sorted(glob.glob(sys.argv[1] + "/*/run/memory.json")):
    r = json.load(open(path))
    e = r["estimate"]
    shape = os.path.basename(os.path.dirname(os.path.dirname(path)))
    m, est = r["run_peak_bytes"] / 2**30, e["run_bytes"] / 2**30
    print(f"{shape:<16} {m:>12.2f} {est:>13.2f} {100 * (est - m) / m:>+7.1f}%")
    for t in e["terms"]:
        print(f"    {t['name']:<34} {t['bytes'] / 2**30:>8.3f}")
PY
