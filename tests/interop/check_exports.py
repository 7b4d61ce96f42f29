"""Checks tunelab's exports with the real readers and prints a PASS/FAIL table.

Run by run.sh, which makes the exports and tunelab's numbers first. Reads WORK/:
  peft/             tunelab export --to peft
  base_hf/          tunelab export --to hf --dtype f32 (no adapter): the base as PEFT's base
  merged_hf/        tunelab export --to hf --dtype f32 (adapter merged)
  merged_bf16/      tunelab export --to hf (bf16, the default)
  merged_f16.gguf   tunelab export --to gguf (f16, the default)
  merged_q8_0.gguf, merged_q4_k.gguf   tunelab export --to gguf --quant ...
  tl_adapter.json   tunelab logits (base + adapter): prompt ids, last logits, greedy ids
  tl_q8_0.json      tunelab logits --model merged_q8_0.gguf (tunelab's own reading of it)

Checks:
  (a) PEFT loads the adapter onto base_hf; its logits on the prompts match tunelab's
      base+adapter logits (f32).
  (b) transformers loads merged_hf: tokenizer + chat template give tunelab's ids, logits match,
      greedy generation (stopping at generation_config's EOS ids) equals tunelab's; the bf16
      export gives the same first greedy token.
  (c) the gguf package reads each GGUF's metadata and tensors (every tensor dequantized
      against merged_hf, q/k rows in llama.cpp's order); transformers' GGUF loader loads the
      q8_0 export and matches tunelab's logits on that same file, and the f16 export.
  (d) llama.cpp (llama-cpp-python, when installed) loads the GGUFs, tokenizes the rendered
      prompts to tunelab's ids and gives the same greedy reply.
Bounds are max |logit difference| over the vocabulary at the last prompt position.
"""

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

ROWS = []


def row(check, ok, measured, bound):
    ROWS.append((check, "PASS" if ok else "FAIL", measured, bound))


def skip(check, why):
    ROWS.append((check, "SKIP", why, ""))


def guarded(name):
    """Runs one check; an exception is a FAIL row with its message, not a crash."""

    def wrap(fn):
        def run(*a, **k):
            try:
                fn(*a, **k)
            except Exception as e:  # noqa: BLE001 - reported in the table
                row(name, False, f"{type(e).__name__}: {str(e).splitlines()[0][:90]}", "")

        return run

    return wrap


def maxdiff(a, b):
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def last_logits(model, ids, device):
    with torch.no_grad():
        out = model(torch.tensor([ids], device=device))
    return out.logits[0, -1].float().cpu().numpy()


def greedy(model, ids, n, device, eos):
    with torch.no_grad():
        out = model.generate(
            torch.tensor([ids], device=device),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=device),
            max_new_tokens=n,
            do_sample=False,
            eos_token_id=eos,
            pad_token_id=eos[0],
        )
    new = out[0, len(ids):].tolist()
    while new and new[-1] in eos:
        new.pop()
    return new


F32_BOUND = 2e-3  # f32 on both sides; the sum order differs (CPU or GPU)


@guarded("(a) PEFT: adapter on base_hf, logits")
def check_peft(work, probes, device):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(work / "base_hf", dtype=torch.float32).to(device)
    model = PeftModel.from_pretrained(base, work / "peft").eval()
    cfg = json.loads((work / "peft" / "adapter_config.json").read_text())
    d = max(maxdiff(last_logits(model, p["ids"], device), p["last_logits"]) for p in probes)
    row("(a) PEFT: adapter on base_hf, logits", d < F32_BOUND, f"max |dlogit| {d:.2e}", f"< {F32_BOUND:g}")
    with model.disable_adapter():
        d_off = min(maxdiff(last_logits(model, p["ids"], device), p["last_logits"]) for p in probes)
    row(
        "(a) PEFT: the adapter matters (off vs on)",
        d_off > 100 * F32_BOUND,
        f"min |dlogit| {d_off:.2f}; base_model_name_or_path {cfg.get('base_model_name_or_path')!r}",
        f"> {100 * F32_BOUND:g}",
    )


@guarded("(b) transformers: merged_hf")
def check_hf(work, probes, device):
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    folder = work / "merged_hf"
    tok = AutoTokenizer.from_pretrained(folder)
    same_ids = all(
        list(tok.apply_chat_template([{"role": "user", "content": p["prompt"]}], add_generation_prompt=True, tokenize=True, return_dict=False))
        == p["ids"]
        for p in probes
    )
    row("(b) transformers: tokenizer + chat template ids", same_ids, f"{len(probes)} prompts", "identical")
    gen = GenerationConfig.from_pretrained(folder)
    eos = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
    end_of_turn = tok.convert_tokens_to_ids("<|im_end|>")
    row("(b) transformers: generation_config EOS ids", end_of_turn in eos, f"eos_token_id {eos}", "holds <|im_end|>")
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).to(device).eval()
    d = max(maxdiff(last_logits(model, p["ids"], device), p["last_logits"]) for p in probes)
    row("(b) transformers: merged_hf logits", d < F32_BOUND, f"max |dlogit| {d:.2e}", f"< {F32_BOUND:g}")
    outs = [greedy(model, p["ids"], reply_length(p), device, eos) for p in probes]
    same = sum(o == p["greedy_ids"] for o, p in zip(outs, probes))
    row("(b) transformers: greedy reply = tunelab's", same == len(probes), f"{same}/{len(probes)} identical", "all")
    bf16 = AutoModelForCausalLM.from_pretrained(work / "merged_bf16", dtype=torch.bfloat16).to(device).eval()
    d16 = max(maxdiff(last_logits(bf16, p["ids"], device), p["last_logits"]) for p in probes)
    first = sum(int(np.argmax(last_logits(bf16, p["ids"], device))) == (p["greedy_ids"] or [eos[0]])[0] for p in probes)
    row("(b) transformers: bf16 export, first greedy token", first == len(probes), f"{first}/{len(probes)}; max |dlogit| {d16:.2f}", "all (bf16 rounding)")


def hf_tensors(folder):
    from safetensors.numpy import load_file

    out = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update(load_file(f))
    return out


GGUF_NAMES = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
}


def gguf_name(hf):
    fixed = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}
    if hf in fixed:
        return fixed[hf]
    _, _, layer, rest = hf.split(".", 3)
    return f"blk.{layer}.{GGUF_NAMES[rest.removesuffix('.weight')]}.weight"


def llama_cpp_permute(w, n_head):
    # convert_hf_to_gguf.py LlamaModel.permute
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# Largest |dequantized - merged| relative to the tensor's max |value|, per storage type.
# Q8_0: half a step of max/127; Q5_0: up to max/16 (the block max sets -16, +16 clamps to 15).
TENSOR_BOUND = {"F32": 1e-7, "F16": 1e-3, "BF16": 8e-3, "Q8_0": 1e-2, "Q5_0": 7e-2, "Q4_K": 1e-1, "Q4_1": 1e-1}


def same_value(want, got):
    if isinstance(want, float):
        return abs(want - float(got)) <= 1e-6 * abs(want)
    return want == got


def reply_length(p):
    """Tokens to generate to see tunelab's reply and, if it stopped, its stop token."""
    return len(p["greedy_ids"]) + (1 if p["greedy_stopped"] else 0)


@guarded("(c) gguf package")
def check_gguf_reader(work, path, hf):
    import gguf

    r = gguf.GGUFReader(path)
    cfg = json.loads((work / "merged_hf" / "config.json").read_text())
    f = lambda k: r.fields[k].contents()  # noqa: E731
    meta = {
        "general.architecture": ("llama", f("general.architecture")),
        "llama.block_count": (cfg["num_hidden_layers"], f("llama.block_count")),
        "llama.embedding_length": (cfg["hidden_size"], f("llama.embedding_length")),
        "llama.feed_forward_length": (cfg["intermediate_size"], f("llama.feed_forward_length")),
        "llama.attention.head_count": (cfg["num_attention_heads"], f("llama.attention.head_count")),
        "llama.attention.head_count_kv": (cfg["num_key_value_heads"], f("llama.attention.head_count_kv")),
        "llama.context_length": (cfg["max_position_embeddings"], f("llama.context_length")),
        "llama.rope.freq_base": (cfg["rope_theta"], f("llama.rope.freq_base")),
        "tokenizer.ggml.tokens": (cfg["vocab_size"], len(f("tokenizer.ggml.tokens"))),
        "tokenizer.ggml.pre": ("smollm", f("tokenizer.ggml.pre")),
        "tokenizer.chat_template": (True, "<|im_start|>" in f("tokenizer.chat_template")),
        "tokenizer.ggml.eos_token_id": (2, f("tokenizer.ggml.eos_token_id")),
    }
    bad = [k for k, (want, got) in meta.items() if not same_value(want, got)]
    row(f"(c) gguf: {path.name} metadata", not bad, f"{len(meta)} keys; {len(r.fields)} fields" + (f"; wrong: {bad}" if bad else ""), "= config.json")
    worst = {}
    n_head, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    names = {t.name: t for t in r.tensors}
    missing = [n for n in hf if gguf_name(n) not in names]
    for name, w in hf.items():
        t = names.get(gguf_name(name))
        if t is None:
            continue
        want = w.astype(np.float32)
        if name.endswith("q_proj.weight"):
            want = llama_cpp_permute(want, n_head)
        elif name.endswith("k_proj.weight"):
            want = llama_cpp_permute(want, n_kv)
        got = gguf.quants.dequantize(t.data, t.tensor_type).reshape(want.shape)
        rel = float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-12))
        kind = t.tensor_type.name
        worst[kind] = max(worst.get(kind, 0.0), rel)
    ok = not missing and len(r.tensors) == len(hf) and all(v <= TENSOR_BOUND.get(k, 0) for k, v in worst.items())
    detail = ", ".join(f"{k} {v:.1e}" for k, v in sorted(worst.items()))
    row(f"(c) gguf: {path.name} tensors vs merged_hf", ok, f"{len(r.tensors)} tensors; max rel err {detail}", "per type, see TENSOR_BOUND")


@guarded("(c) transformers GGUF loader")
def check_transformers_gguf(work, probes, q8_probes, device):
    from transformers import AutoModelForCausalLM

    q8 = AutoModelForCausalLM.from_pretrained(work, gguf_file="merged_q8_0.gguf", dtype=torch.float32).to(device).eval()
    d = max(maxdiff(last_logits(q8, p["ids"], device), t["last_logits"]) for p, t in zip(probes, q8_probes))
    row("(c) transformers GGUF loader: q8_0 = tunelab on it", d < F32_BOUND, f"max |dlogit| {d:.2e}", f"< {F32_BOUND:g}")
    d_merge = max(maxdiff(t["last_logits"], p["last_logits"]) for p, t in zip(probes, q8_probes))
    row("(c) q8_0 quantization error vs base+adapter", d_merge < 2.0, f"max |dlogit| {d_merge:.2f}", "< 2 (stated)")
    del q8
    f16 = AutoModelForCausalLM.from_pretrained(work, gguf_file="merged_f16.gguf", dtype=torch.float32).to(device).eval()
    d16 = max(maxdiff(last_logits(f16, p["ids"], device), p["last_logits"]) for p in probes)
    row("(c) transformers GGUF loader: f16 vs base+adapter", d16 < 0.1, f"max |dlogit| {d16:.2e}", "< 0.1 (f16 weights)")


@guarded("(d) llama.cpp")
def check_llama_cpp(work, probes, q8_probes):
    try:
        import llama_cpp
    except ImportError:
        skip("(d) llama.cpp", "llama-cpp-python not installed")
        return
    for name, ref, stated in [("merged_f16.gguf", probes, 0.5), ("merged_q8_0.gguf", q8_probes, 2.0)]:
        llm = llama_cpp.Llama(model_path=str(work / name), n_ctx=512, logits_all=True, verbose=False, n_threads=os.cpu_count())
        texts_ok, same, d = 0, 0, 0.0
        stops = {llm.token_eos(), llm.tokenize(b"<|im_end|>", add_bos=False, special=True)[0]}
        for p, t in zip(probes, ref):
            text = llm.detokenize(p["ids"], special=True).decode("utf-8")
            texts_ok += llm.tokenize(text.encode("utf-8"), add_bos=False, special=True) == p["ids"]
            llm.reset()
            llm.eval(p["ids"])
            d = max(d, maxdiff(np.array(llm.scores[len(p["ids"]) - 1]), t["last_logits"]))
            out = []
            for tok in llm.generate(p["ids"], temp=0.0, top_k=1, reset=True):
                if tok in stops or len(out) == reply_length(t):
                    break
                out.append(tok)
            same += out == t["greedy_ids"]
        row(f"(d) llama.cpp: {name} tokenizer ids", texts_ok == len(probes), f"{texts_ok}/{len(probes)} identical", "all")
        row(f"(d) llama.cpp: {name} logits vs tunelab", d < stated, f"max |dlogit| {d:.2f}", f"< {stated} (llama.cpp rounds activations)")
        row(f"(d) llama.cpp: {name} greedy reply", same >= len(probes) - 1, f"{same}/{len(probes)} identical", ">= all but one")
        del llm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work", type=Path)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    work = args.work
    torch.manual_seed(0)
    # Full f32 products on a GPU too (no TF32), so the f32 bounds hold there.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if args.device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    probes = json.loads((work / "tl_adapter.json").read_text())
    q8_probes = json.loads((work / "tl_q8_0.json").read_text())
    check_peft(work, probes, args.device)
    check_hf(work, probes, args.device)
    hf = hf_tensors(work / "merged_hf")
    for name in ["merged_f16.gguf", "merged_q8_0.gguf", "merged_q4_k.gguf"]:
        check_gguf_reader(work, work / name, hf)
    del hf
    check_transformers_gguf(work, probes, q8_probes, args.device)
    check_llama_cpp(work, probes, q8_probes)
    import peft
    import transformers

    print(f"\ntorch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}, device {args.device}")
    w = max(len(r[0]) for r in ROWS)
    print(f"{'check'.ljust(w)}  result  measured  (bound)")
    for check, result, measured, bound in ROWS:
        print(f"{check.ljust(w)}  {result:<6}  {measured}  ({bound})" if bound else f"{check.ljust(w)}  {result:<6}  {measured}")
    failed = [r for r in ROWS if r[1] == "FAIL"]
    print(f"\n{'FAIL' if failed else 'PASS'}: {len(ROWS) - len(failed)}/{len(ROWS)} rows without failure")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
