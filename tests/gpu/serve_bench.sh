#!/usr/bin/env bash
# Serving throughput on the GPU: `tunelab serve` (default model, --max-batch 16) loaded by
# examples/serve_load with 1 client and with 16 concurrent clients (plain and streaming),
# every reply 128 tokens. Needs /root/bin/{tunelab,serve_load} (built with --features cuda).
set -uo pipefail
model=/root/models/SmolLM2-135M-Instruct.Q4_1.gguf; T=/root/bin/tunelab; L=/root/bin/serve_load
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee $OUT/serve-bench.txt
$T serve --model $model --device cuda --port 8000 --max-batch 16 --max-queue 64 > $OUT/serve.log 2>&1 &
pid=$!
for _ in $(seq 120); do grep -q "listening on" $OUT/serve.log && break; sleep 0.5; done
cat $OUT/serve.log
url=http://127.0.0.1:8000
$L --url $url --clients 1 --seconds 5 --max-tokens 32 > /dev/null 2>&1   # warm-up
for args in "--clients 1" "--clients 16" "--clients 16 --stream"; do
  echo "== serve_load --url $url $args --seconds 30 --max-tokens 128" | tee -a $OUT/serve-bench.txt
  $L --url $url $args --seconds 30 --max-tokens 128 2>&1 | tee -a $OUT/serve-bench.txt
done
kill -INT $pid; wait $pid; echo "serve exit $?" | tee -a $OUT/serve-bench.txt
