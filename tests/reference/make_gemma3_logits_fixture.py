# Reference logits and greedy text of the real Gemma 3 270M Q4_K_M GGUF, from transformers,
# which dequantizes every tensor (Q4_K, Q5_0, Q6_K, Q8_0) to f32 on load and runs Gemma3ForCausalLM.
#
# Environment: the venv of README.md (torch 2.15.0, transformers 5.23.0, gguf 0.19.0).
# Run (from the repository root; CPU, about a minute):
#   /opt/refenv/bin/python tests/reference/make_gemma3_logits_fixture.py PATH/gemma-3-270m-q4_k_m.gguf
# Writes tests/fixtures/logits_gemma3.json: for each prompt (token ids, BOS first), the top 20
# next-token logits and the 16 tokens greedy decoding gives.
import hashlib
import json
import os
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["CUDA_VISIBLE_DEVICES"] = ""

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

torch.set_num_threads(2)
torch.use_deterministic_algorithms(True)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
path = os.path.abspath(sys.argv[1])
folder, name = os.path.split(path)
sha = hashlib.sha256(open(path, "rb").read()).hexdigest()

tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    ",
    '{"device": {"ipv4Address": "10.0.0.1"}, "qosProfile": "',
    "In offshore drilling, DP stands for",
    # Longer than the 512-token sliding window would need; this one stays short but crosses
    # several sentences.
    "Water boils at 100 degrees Celsius at sea level. At higher altitudes, the boiling point",
]

cases = []
for text in PROMPTS:
    ids = tok(text, return_tensors="pt").input_ids
    assert ids[0, 0].item() == tok.bos_token_id
    with torch.no_grad():
        last = model(ids).logits[0, -1].float()
    top = torch.topk(last, 20)
    greedy = model.generate(ids, max_new_tokens=16, min_new_tokens=16, do_sample=False, eos_token_id=None)
    new = greedy[0, ids.shape[1]:].tolist()
    cases.append({
        "text": text,
        "ids": ids[0].tolist(),
        "top_ids": top.indices.tolist(),
        "top_logits": [float(v) for v in top.values],
        "greedy_ids": new,
        "greedy_text": tok.decode(new),
    })

out = {
    "model": name,
    "sha256": sha,
    "tool": f"transformers {transformers.__version__} Gemma3ForCausalLM from the GGUF (dequantized to f32), torch {torch.__version__}, CPU; greedy = generate(do_sample=False, eos_token_id=None)",
    "cases": cases,
}
with open(os.path.join(REPO, "tests", "fixtures", "logits_gemma3.json"), "w") as fh:
    json.dump(out, fh, indent=1)
    fh.write("\n")
print("wrote", len(cases), "cases")
