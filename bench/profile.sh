#!/usr/bin/env bash
# Where a training step's GPU time goes: runs `tunelab bench` under Nsight Compute, timing
# every kernel of one step, and prints the kernels grouped by name, largest total first.
#
#   bench/profile.sh TUNELAB OUT_DIR [bench args…]
#   e.g. bench/profile.sh /root/bin "$OUT" --synthetic smollm2-135m --batch 8
#
# The bench marks its last step as the profiler's capture range; that step's kernels are
# replayed one at a time, so the run takes a minute or two. Writes OUT_DIR/kernels.csv (ncu's
# raw rows) and OUT_DIR/kernels.txt (the summary).
set -euo pipefail
bin=$1 out=$2
shift 2
ncu=${NCU:-ncu}
"$ncu" --profile-from-start off --metrics gpu__time_duration.sum --csv --print-units base \
    --log-file "$out/kernels.csv" \
    "$bin" bench "$@" --steps 1 --warmup 1 --device cuda > "$out/bench.json"
python3 - "$out/kernels.csv" > "$out/kernels.txt" <<'PY'
import csv, collections, sys
rows = [r for r in csv.DictReader(l for l in open(sys.argv[1]) if l.startswith('"'))]
rows = [r for r in rows if r.get("Metric Name") == "gpu__time_duration.sum"]
total = collections.Counter()
count = collections.Counter()
for r in rows:
    name = r["Kernel Name"].split("(")[0][:60]
    total[name] += float(r["Metric Value"].replace(",", ""))
    count[name] += 1
all_ns = sum(total.values())
print(f"one step: {len(rows)} kernels, {all_ns / 1e6:.1f} ms of kernel time")
print(f"{'kernel':60} {'count':>6} {'ms':>8} {'share':>6}")
for name, ns in total.most_common(40):
    print(f"{name:60} {count[name]:6d} {ns / 1e6:8.2f} {ns / all_ns:6.1%}")
PY
cat "$out/kernels.txt"
