#!/usr/bin/env bash
# On a GPU machine: greedy `generate` on the CPU and on CUDA for the parity prompts
# (tests/fixtures/logits_smollm2.json), outputs compared byte for byte, decode speed printed.
#   tests/gpu/generate_parity.sh BINARY MODEL.gguf OUTDIR
set -uo pipefail
bin=$1; model=$2; out=$3
mkdir -p "$out"
prompts=("What is the capital of France?" "Write a haiku about the sea."
         "Convert to JSON: set QoS profile QOS_E for phone +46701234567 for 10 minutes")
status=0
run() { # name device args...
  local name=$1 dev=$2; shift 2
  "$bin" generate --model "$model" --temperature 0 --max-tokens 32 --device "$dev" --stats "$@" \
    > "$out/$name.$dev.txt" 2> "$out/$name.$dev.err" || { echo "FAIL $name $dev"; cat "$out/$name.$dev.err"; status=1; }
}
for i in 0 1 2; do
  for dev in cpu cuda; do run "prompt$i" "$dev" --prompt "${prompts[$i]}"; done
done
for dev in cpu cuda; do run prompt3 "$dev" --raw --prompt "The quick brown fox"; done
for i in 0 1 2 3; do
  if cmp -s "$out/prompt$i.cpu.txt" "$out/prompt$i.cuda.txt"; then echo "prompt$i: identical"; else
    echo "prompt$i: DIFFERENT"; status=1; fi
  echo "  cpu : $(tail -1 "$out/prompt$i.cpu.err")"
  echo "  cuda: $(tail -1 "$out/prompt$i.cuda.err")"
  head -c 300 "$out/prompt$i.cuda.txt"; echo
done
# Decode speed on a longer reply.
for dev in cpu cuda; do
  "$bin" generate --model "$model" --temperature 0 --max-tokens 256 --device "$dev" --stats \
    --prompt "Explain dynamic positioning on offshore vessels in detail." 2>&1 >/dev/null | tail -1 | sed "s/^/long $dev: /"
done
exit $status
