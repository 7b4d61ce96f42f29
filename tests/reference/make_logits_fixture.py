#!/usr/bin/env python3
# Makes tests/fixtures/logits_smollm2.json + tests/fixtures/logits_smollm2.safetensors:
# last-position logits (49152 f32), top-5 and 32 greedy (argmax) continuation ids for a few
# prompts, from two CPU references that load the SAME GGUF:
#   "llamacpp"     : llama.cpp via llama-cpp-python (quantized matmuls, Q8 activations, f32 KV cache)
#   "transformers" : transformers' GGUF loader (dequantizes every tensor to f32), torch CPU, f32
# The un-suffixed tensor "promptN" and the top-level top5_*/greedy32 fields are the llama.cpp ones.
#
# Setup (venv outside the repo):
#   python3 -m venv /opt/refenv
#   CMAKE_ARGS="-DGGML_NATIVE=off" /opt/refenv/bin/pip install llama-cpp-python==0.3.36
#   /opt/refenv/bin/pip install gguf==0.19.0 tokenizers==0.23.3 numpy==2.4.6 \
#       transformers==5.23.0 torch==2.15.0 accelerate==1.15.0 safetensors==0.8.0 jinja2==3.1.6
# Run:
#   /opt/refenv/bin/python tests/reference/make_logits_fixture.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf]
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

CHAT_PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Convert to JSON: set QoS profile QOS_E for phone +46701234567 for 10 minutes",
]
RAW_PROMPTS = ["The quick brown fox"]
N_GREEDY = 32
THREADS = 2


def build_prompts(gguf_path):
    from transformers import PreTrainedTokenizerFast

    meta = C.read_gguf_tokenizer_meta(gguf_path)
    tok, desc = C.load_reference_tokenizer(gguf_path)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>")
    prompts = []
    for q in CHAT_PROMPTS:
        text = hf.apply_chat_template([{"role": "user", "content": q}], chat_template=meta["chat_template"],
                                      tokenize=False, add_generation_prompt=True)
        prompts.append({"kind": "chat", "user_message": q, "prompt_text": text})
    for t in RAW_PROMPTS:
        prompts.append({"kind": "raw", "prompt_text": t})
    for p in prompts:
        p["ids"] = tok.encode(p["prompt_text"], add_special_tokens=False).ids
    return prompts, desc, meta


def run_llamacpp(gguf_path, prompts):
    import llama_cpp
    from llama_cpp import Llama

    kw = dict(model_path=gguf_path, n_ctx=1024, n_batch=1024, n_ubatch=1024, n_threads=THREADS,
              n_threads_batch=THREADS, logits_all=True, seed=0, verbose=False,
              type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)
    llm = Llama(**kw)
    info = {
        "tool": f"llama-cpp-python {C.ver('llama_cpp_python')} (bundled llama.cpp), CPU, n_threads={THREADS}, "
                f"n_ctx=1024, logits_all=True, KV cache f32; Llama.eval(ids) then Llama.scores[n_tokens-1]; "
                f"greedy = argmax of raw logits, one token per eval (KV cache)",
        "system_info": llama_cpp.llama_print_system_info().decode(errors="replace").strip(),
        "adds_bos_when_asked": llm.tokenize(b"x", add_bos=True, special=True)[:1] == [llm.token_bos()]
        and len(llm.tokenize(b"x", add_bos=True, special=True)) > len(llm.tokenize(b"x", add_bos=False, special=True)),
    }
    out = []
    for p in prompts:
        assert C.llama_tokenize(llm, p["prompt_text"]) == p["ids"], "llama.cpp tokenization differs"
        llm.reset()
        llm.eval(p["ids"])
        last = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32).copy()
        greedy, cur = [], last
        for _ in range(N_GREEDY):
            nxt = int(np.argmax(cur))
            greedy.append(nxt)
            llm.eval([nxt])
            cur = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
        out.append((last, greedy))
    return out, info


def run_transformers(gguf_path, prompts):
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    torch.set_num_threads(THREADS)
    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(gguf_path), gguf_file=os.path.basename(gguf_path),
                                                 dtype=torch.float32)
    model.eval()
    cfg = model.config
    info = {
        "tool": f"transformers {C.ver('transformers')} AutoModelForCausalLM.from_pretrained(gguf_file=...) "
                f"(dequantized to f32; gguf {C.ver('gguf')}), torch {C.ver('torch')} CPU f32, "
                f"attn_implementation={getattr(cfg, '_attn_implementation', None)}; greedy = argmax, "
                f"full re-forward of the whole sequence per step (no KV cache)",
        "config": {k: getattr(cfg, k, None) for k in ("rope_theta", "rms_norm_eps", "tie_word_embeddings",
                                                       "num_hidden_layers", "num_attention_heads",
                                                       "num_key_value_heads", "hidden_size", "vocab_size")},
    }
    out = []
    with torch.no_grad():
        for p in prompts:
            seq = list(p["ids"])
            logits = model(torch.tensor([seq])).logits[0, -1].float().numpy().copy()
            greedy, cur = [], logits
            for _ in range(N_GREEDY):
                nxt = int(np.argmax(cur))
                greedy.append(nxt)
                seq.append(nxt)
                cur = model(torch.tensor([seq])).logits[0, -1].float().numpy()
            out.append((logits, greedy))
    return out, info


def write_f32_gguf(src, dst):
    """Copy of the GGUF with every tensor dequantized to F32 (same metadata)."""
    from gguf import GGUFReader, GGUFValueType, GGUFWriter
    from gguf.quants import dequantize

    r = GGUFReader(src)
    w = GGUFWriter(dst, arch=r.fields["general.architecture"].contents())
    for k, f in r.fields.items():
        if k.startswith("GGUF.") or k == "general.architecture":
            continue
        if k == "general.file_type":
            w.add_key_value(k, 0, GGUFValueType.UINT32)  # ALL_F32
        elif f.types[0] == GGUFValueType.ARRAY:
            w.add_key_value(k, f.contents(), f.types[0], sub_type=f.types[-1])
        else:
            w.add_key_value(k, f.contents(), f.types[0])
    for t in r.tensors:
        w.add_tensor(t.name, dequantize(t.data, t.tensor_type).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def f32_crosscheck(gguf_path, prompts, hf_res):
    """llama.cpp on an all-F32 dequantized copy of the GGUF vs transformers: isolates how much of
    the llamacpp-vs-transformers gap comes from llama.cpp's quantized (Q8-activation) matmuls."""
    import tempfile

    import llama_cpp
    from llama_cpp import Llama

    with tempfile.TemporaryDirectory() as td:
        f32 = os.path.join(td, "model-f32.gguf")
        write_f32_gguf(gguf_path, f32)
        llm = Llama(model_path=f32, n_ctx=1024, n_batch=1024, n_ubatch=1024, n_threads=THREADS,
                    n_threads_batch=THREADS, logits_all=True, seed=0, verbose=False,
                    type_k=llama_cpp.GGML_TYPE_F32, type_v=llama_cpp.GGML_TYPE_F32)
        out = []
        for i, p in enumerate(prompts):
            llm.reset()
            llm.eval(p["ids"])
            a = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
            out.append(float(np.max(np.abs(a - hf_res[i][0]))))
        del llm
    return out


def log_softmax(v):
    v = v.astype(np.float64)
    m = v.max()
    return v - m - np.log(np.exp(v - m).sum())


def top5(v):
    idx = np.argsort(-v, kind="stable")[:5]
    return [int(i) for i in idx], [float(v[i]) for i in idx]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf", nargs="?", default=None)
    ap.add_argument("--out", default=os.path.join(C.FIXTURES, "logits_smollm2.json"))
    ap.add_argument("--no-transformers", action="store_true")
    args = ap.parse_args()
    gguf_path = C.resolve_gguf(args.gguf)
    st_path = os.path.splitext(args.out)[0] + ".safetensors"

    from safetensors.numpy import save_file

    prompts, tok_desc, meta = build_prompts(gguf_path)
    refs = {}
    res, info = run_llamacpp(gguf_path, prompts)
    refs["llamacpp"] = (res, info)
    if not args.no_transformers:
        res, info = run_transformers(gguf_path, prompts)
        refs["transformers"] = (res, info)

    tensors, entries, diffs = {}, [], []
    for i, p in enumerate(prompts):
        e = dict(p)
        e["reference"] = {}
        for name, (res, _info) in refs.items():
            logits, greedy = res[i]
            t5i, t5v = top5(logits)
            tensors[f"prompt{i}.{name}"] = logits.astype(np.float32)
            e["reference"][name] = {"top5_ids": t5i, "top5_logits": t5v, "greedy32": greedy,
                                    "tensor": f"prompt{i}.{name}"}
        prim = e["reference"]["llamacpp"]
        tensors[f"prompt{i}"] = tensors[f"prompt{i}.llamacpp"]
        e.update({"top5_ids": prim["top5_ids"], "top5_logits": prim["top5_logits"], "greedy32": prim["greedy32"],
                  "logits_file": os.path.basename(st_path), "tensor": f"prompt{i}"})
        if "transformers" in refs:
            a, b = tensors[f"prompt{i}.llamacpp"], tensors[f"prompt{i}.transformers"]
            d = {"prompt": i, "max_abs_diff": float(np.max(np.abs(a - b))),
                 "mean_abs_diff": float(np.mean(np.abs(a - b))),
                 "max_abs_diff_log_softmax": float(np.max(np.abs(log_softmax(a) - log_softmax(b)))),
                 "top1_top2_margin_llamacpp": float(prim["top5_logits"][0] - prim["top5_logits"][1]),
                 "logit_range_llamacpp": [float(a.min()), float(a.max())],
                 "argmax_equal": int(np.argmax(a)) == int(np.argmax(b)),
                 "greedy32_equal": e["reference"]["llamacpp"]["greedy32"] == e["reference"]["transformers"]["greedy32"],
                 "greedy32_common_prefix": next((k for k, (x, y) in enumerate(zip(
                     e["reference"]["llamacpp"]["greedy32"], e["reference"]["transformers"]["greedy32"])) if x != y),
                     N_GREEDY)}
            e["ref_vs_ref"] = d
            diffs.append(d)
        entries.append(e)

    f32_check = None
    if "transformers" in refs:
        f32_diffs = f32_crosscheck(gguf_path, prompts, refs["transformers"][0])
        f32_check = {
            "what": "llama.cpp (same build/settings) on a copy of the GGUF with all tensors dequantized to F32, "
                    "last-position logits vs the transformers reference",
            "max_abs_diff_per_prompt": f32_diffs,
        }
        print("f32-dequant llama.cpp vs transformers max abs diff:", f32_diffs, file=sys.stderr)

    meta_st = {"source": "tunelab tests/reference/make_logits_fixture.py",
               "gguf_sha256": C.sha256_file(gguf_path)}
    save_file(tensors, st_path, metadata=meta_st)
    obj = {
        "reference": {name: info for name, (_r, info) in refs.items()},
        "primary": "llamacpp",
        "tokenizer": tok_desc,
        "bos_added": False,
        "bos_note": f"GGUF tokenizer.ggml.add_bos_token={meta['add_bos']}; ids are exactly the tokenized "
                    f"prompt_text (chat template already starts with <|im_start|>), no extra BOS",
        "gguf": {"file": os.path.basename(gguf_path), "sha256": meta_st["gguf_sha256"]},
        "logits_file": os.path.basename(st_path),
        "ref_vs_ref_max_abs_diff": max((d["max_abs_diff"] for d in diffs), default=None),
        "f32_dequant_crosscheck": f32_check,
        "prompts": entries,
    }
    C.dump_json(args.out, obj)
    for d in diffs:
        print(d, file=sys.stderr)
    print(f"wrote {args.out} and {st_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
