#!/usr/bin/env python3
"""Markdown table from bench/run.sh's results.jsonl: per row, each side's median over its runs,
and tunelab's ratio to PEFT (speed: higher is better; memory: lower is better)."""

import json
import statistics
import sys


def main(path):
    runs = [json.loads(line) for line in open(path) if line.strip()]
    rows = []
    for r in runs:
        if r["row"] not in rows:
            rows.append(r["row"])
    print("| workload | tunelab ms/step | PEFT ms/step | tunelab tok/s | PEFT tok/s | speed ×"
          " | tunelab peak GiB | PEFT peak GiB (allocated) | memory × | runs |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        side = {impl: [r for r in runs if r["row"] == row and r["impl"] == impl and "error" not in r]
                for impl in ("tunelab", "peft")}
        failed = {impl: next((r["error"] for r in runs if r["row"] == row and r["impl"] == impl
                              and "error" in r), None) for impl in ("tunelab", "peft")}
        if not side["tunelab"] or not side["peft"]:
            print(f"| {row} | " + " | ".join(f"{impl} failed: {failed[impl]}" for impl in failed
                                            if not side[impl]) + " |")
            continue
        med = {impl: {k: statistics.median(r[k] for r in rs)
                      for k in ("ms_per_step", "tokens_per_s", "peak_mem_gib")}
               for impl, rs in side.items()}
        alloc = statistics.median(r["peak_allocated_gib"] for r in side["peft"])
        first = side["tunelab"][0]
        unit = "pairs" if first["stage"] == "dpo" else "seqs"
        label = f'{first["model"].split("/")[-1]} {first["stage"].upper()} {first["batch"]} {unit}×{first["seq"]} ({first["base"]} base'
        if "checkpointed_layers" in first:
            label += f', {first["checkpointed_layers"]} layers checkpointed'
        label += ")"
        t, p = med["tunelab"], med["peft"]
        print(f'| {label} | {t["ms_per_step"]:.1f} | {p["ms_per_step"]:.1f} '
              f'| {t["tokens_per_s"]:,.0f} | {p["tokens_per_s"]:,.0f} '
              f'| **{t["tokens_per_s"] / p["tokens_per_s"]:.2f}** '
              f'| {t["peak_mem_gib"]:.2f} | {p["peak_mem_gib"]:.2f} ({alloc:.2f}) '
              f'| **{t["peak_mem_gib"] / p["peak_mem_gib"]:.2f}** '
              f'| {len(side["tunelab"])}+{len(side["peft"])} |')


if __name__ == "__main__":
    main(sys.argv[1])
