#!/usr/bin/env bash
# On a GPU machine: a preset's SFT → DPO pipeline, then the before/after eval table on its
# eval file: base, base with 3 few-shot examples, after SFT, after SFT + DPO.
#   [SKIP_BASELINES=1] tests/gpu/presets.sh BINARY MODEL.gguf OUTDIR PRESET_DIR...
set -uo pipefail
bin=$1; model=$2; out=$3; shift 3
for preset in "$@"; do
  name=$(basename "$preset")
  dir="$out/$name"
  mkdir -p "$dir"
  cp "$preset"/*.jsonl "$preset"/*.toml "$dir/" && cp "$preset"/*.json "$dir/" 2>/dev/null
  sed -i "s|^model_name = \"\"|model_name = \"$model\"|; s|^output_dir = .*|output_dir = \"run\"|" "$dir/config.toml"
  start=$(date +%s.%N)
  "$bin" train --config "$dir/config.toml" --device cuda --json > "$dir/events.jsonl" 2> "$dir/train.log" \
    || { echo "FAIL train $name"; tail -5 "$dir/train.log"; continue; }
  echo "$name: pipeline wall $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s"
  python3 - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
stage, first = None, {}
for line in open(d + "/events.jsonl"):
    e = json.loads(line)
    if e["event"] == "started":
        stage = e["stage"]; print(f"  {stage}: {e['examples']} examples, {e['total_steps']} steps on {e['device']}")
    elif e["event"] == "phase" and e["done"] == e["total"]:
        print(f"  {e['name']}: {e['total']}")
    elif e["event"] == "step":
        first.setdefault(stage, e)
        last = e
        if e["step"] == 1 or e["step"] % 10 == 0:
            m = e.get("metrics", {})
            extra = "".join(f" {k} {v:.3f}" for k, v in sorted(m.items()))
            print(f"    step {e['step']:>3} loss {e['loss']:.4f} {e['tokens_per_s']:.0f} tok/s elapsed {e['elapsed_s']:.1f}s{extra}")
    elif e["event"] == "eval":
        print(f"    eval step {e['step']}: " + " ".join(f"{k} {v:.3f}" for k, v in sorted(e["metrics"].items())))
    elif e["event"] == "warning":
        print(f"    warning: {e['message']}")
    elif e["event"] == "finished":
        print(f"  finished: {e['message']}")
PY
  for stage in sft dpo; do
    [ -f "$dir/run/$stage/memory.json" ] && python3 -c "
import json; r = json.load(open('$dir/run/$stage/memory.json'))
print('  $stage peak device memory (run): %.2f GiB, estimate %.2f GiB' % (r['run_peak_bytes'] / 2**30, r['estimate']['run_bytes'] / 2**30))"
  done
  run_eval() { # label args...
    local label=$1; shift
    "$bin" eval --config "$dir/config.toml" --device cuda --json "$dir/eval-$label.json" "$@" > "$dir/eval-$label.txt" 2>&1 \
      || { echo "FAIL eval $label"; tail -3 "$dir/eval-$label.txt"; }
  }
  if [ -z "${SKIP_BASELINES:-}" ]; then  # set it to evaluate only the tuned adapters
    run_eval base --base
    run_eval fewshot3 --base --few-shot 3
  fi
  run_eval sft --adapter "$dir/run/sft/adapter"
  run_eval dpo --adapter "$dir/run/dpo/adapter"
  python3 - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
cols = ["base", "fewshot3", "sft", "dpo"]
reports = {c: json.load(open(f"{d}/eval-{c}.json"))["metrics"] for c in cols if __import__("os").path.exists(f"{d}/eval-{c}.json")}
keys = sorted({k for m in reports.values() for k in m})
print(f"  {'metric':<34}" + "".join(f"{c:>10}" for c in reports))
for k in keys:
    print(f"  {k:<34}" + "".join(f"{reports[c].get(k, float('nan')):>10.3f}" for c in reports))
PY
done
