#!/usr/bin/env python3
"""Writes the hand-made seeds of the fuzz corpora (standard library only).

    python3 fuzz/make_seeds.py            # from the repository root

gguf/: small valid GGUF files written byte by byte (a complete 1-layer Llama with a gpt2-style
tokenizer and a chat template, variants of it, and header-only files); adapter/: PEFT adapter
folders for the fuzz harness's tiny model, packed as harness::adapter expects (4-byte LE
length of adapter_config.json, the JSON, then adapter_model.safetensors); the text targets
get copies of the repository's real data files plus a few edge cases.
"""

import json
import os
import shutil
import struct
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"

# --- GGUF -------------------------------------------------------------------------------

T_U32, T_I32, T_F32, T_BOOL, T_STRING, T_ARRAY, T_U64 = 4, 5, 6, 7, 8, 9, 10


def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gvalue(kind, v):
    if kind == T_U32:
        return struct.pack("<I", v)
    if kind == T_I32:
        return struct.pack("<i", v)
    if kind == T_F32:
        return struct.pack("<f", v)
    if kind == T_BOOL:
        return struct.pack("<B", int(v))
    if kind == T_U64:
        return struct.pack("<Q", v)
    if kind == T_STRING:
        return gstr(v)
    raise ValueError(kind)


def kv(key, kind, v, item=None):
    out = gstr(key) + struct.pack("<I", kind)
    if kind == T_ARRAY:
        out += struct.pack("<IQ", item, len(v)) + b"".join(gvalue(item, x) for x in v)
    else:
        out += gvalue(kind, v)
    return out


def gguf(metadata, tensors, alignment=32, version=3):
    """metadata: list of kv() blobs; tensors: list of (name, ggml_dims, ggml_type, bytes)."""
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(metadata))
    head += b"".join(metadata)
    offset, infos, data = 0, b"", b""
    for name, dims, kind, blob in tensors:
        infos += gstr(name) + struct.pack("<I", len(dims))
        infos += b"".join(struct.pack("<Q", d) for d in dims)
        infos += struct.pack("<IQ", kind, offset)
        pad = (-len(blob)) % alignment
        data += blob + b"\0" * pad
        offset += len(blob) + pad
    out = head + infos
    out += b"\0" * ((-len(out)) % alignment)
    return out + data


TOKENS = ["<s>", "</s>", "<|im_start|>", "<|im_end|>", "h", "i", "Ġ", "t", "e", "r",
          "hi", "th", "1", "2", "3", "\n"]
TYPES = [3, 3, 3, 3] + [1] * (len(TOKENS) - 4)
MERGES = ["h i", "t h"]
SMOLLM_TEMPLATE = json.loads((ROOT / "tests/fixtures/chat_template_smollm2.json").read_text())["template"]


def tokenizer_kv(pre="smollm", template=SMOLLM_TEMPLATE):
    md = [
        kv("tokenizer.ggml.model", T_STRING, "gpt2"),
        kv("tokenizer.ggml.pre", T_STRING, pre),
        kv("tokenizer.ggml.tokens", T_ARRAY, TOKENS, T_STRING),
        kv("tokenizer.ggml.token_type", T_ARRAY, TYPES, T_I32),
        kv("tokenizer.ggml.merges", T_ARRAY, MERGES, T_STRING),
        kv("tokenizer.ggml.bos_token_id", T_U32, 0),
        kv("tokenizer.ggml.eos_token_id", T_U32, 1),
    ]
    if template is not None:
        md.append(kv("tokenizer.chat_template", T_STRING, template))
    return md


def f32(n, scale=0.01):
    return struct.pack(f"<{n}f", *[scale * ((i % 7) - 3) for i in range(n)])


def f16(n):
    return struct.pack(f"<{n}e", *[0.01 * ((i % 7) - 3) for i in range(n)])


def tiny_llama(template=SMOLLM_TEMPLATE, dtype=0, untied=False, alignment=None, pre="smollm"):
    vocab, hidden, ffn, heads, kv_heads = len(TOKENS), 8, 16, 2, 1
    kv_dim = hidden // heads * kv_heads
    md = [kv("general.architecture", T_STRING, "llama"), kv("general.name", T_STRING, "tiny")]
    if alignment is not None:
        md.append(kv("general.alignment", T_U32, alignment))
    md += [
        kv("llama.context_length", T_U32, 32),
        kv("llama.embedding_length", T_U32, hidden),
        kv("llama.block_count", T_U32, 1),
        kv("llama.feed_forward_length", T_U32, ffn),
        kv("llama.attention.head_count", T_U32, heads),
        kv("llama.attention.head_count_kv", T_U32, kv_heads),
        kv("llama.rope.freq_base", T_F32, 10000.0),
        kv("llama.attention.layer_norm_rms_epsilon", T_F32, 1e-5),
    ] + tokenizer_kv(pre, template)

    def mat(name, out_f, in_f):
        n = out_f * in_f
        blob = f32(n) if dtype == 0 else f16(n)
        return (name, [in_f, out_f], dtype, blob)  # ggml order: innermost first

    def vec(name):
        return (name, [hidden], 0, struct.pack(f"<{hidden}f", *[1.0] * hidden))

    tensors = [mat("token_embd.weight", vocab, hidden), vec("output_norm.weight")]
    if untied:
        tensors.append(mat("output.weight", vocab, hidden))
    tensors += [
        vec("blk.0.attn_norm.weight"),
        vec("blk.0.ffn_norm.weight"),
        mat("blk.0.attn_q.weight", hidden, hidden),
        mat("blk.0.attn_k.weight", kv_dim, hidden),
        mat("blk.0.attn_v.weight", kv_dim, hidden),
        mat("blk.0.attn_output.weight", hidden, hidden),
        mat("blk.0.ffn_gate.weight", ffn, hidden),
        mat("blk.0.ffn_up.weight", ffn, hidden),
        mat("blk.0.ffn_down.weight", hidden, ffn),
    ]
    return gguf(md, tensors, alignment=alignment or 32)


def gguf_seeds():
    return {
        "tiny_llama_f32.gguf": tiny_llama(),
        "tiny_llama_f16_untied.gguf": tiny_llama(dtype=1, untied=True),
        "tiny_llama_no_template.gguf": tiny_llama(template=None, pre="gpt2"),
        "tiny_llama_align64.gguf": tiny_llama(alignment=64, pre="llama-bpe"),
        "header_tokenizer_chatml.gguf": gguf(
            tokenizer_kv(template="{% for m in messages %}<|im_start|>{{ m.role }}\n"
                                  "{{ m.content }}<|im_end|>\n{% endfor %}"
                                  "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"),
            []),
        "header_only_v2.gguf": gguf([kv("general.architecture", T_STRING, "llama")], [], version=2),
        "empty_v3.gguf": gguf([], []),
    }


# --- safetensors / PEFT adapters ----------------------------------------------------------

def safetensors(tensors):
    """tensors: dict name -> (dtype, shape, bytes)."""
    header, data = {}, b""
    for name, (dtype, shape, blob) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
        data += blob
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((-len(h)) % 8)
    return struct.pack("<Q", len(h)) + h + data


# The fuzz harness's tiny model (fuzz/harness.rs: TINY): hidden 8, ffn 16, 2 heads, 1 kv head, 2 layers.
SHAPES = {"q_proj": (8, 8), "k_proj": (4, 8), "v_proj": (4, 8), "o_proj": (8, 8),
          "gate_proj": (16, 8), "up_proj": (16, 8), "down_proj": (8, 16)}
ATTN = {"q_proj", "k_proj", "v_proj", "o_proj"}


def adapter(targets, r=2, layers=2, dtype="F32", extra_config=None):
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": 2 * r,
              "lora_dropout": 0.0, "target_modules": targets, "bias": "none",
              "fan_in_fan_out": False, "use_rslora": False, "use_dora": False}
    config.update(extra_config or {})
    names = list(SHAPES) if targets == "all-linear" or "all-linear" in targets else targets
    tensors = {}
    size = 2 if dtype in ("F16", "BF16") else 4
    for i in range(layers):
        for m in names:
            out_f, in_f = SHAPES[m]
            part = "self_attn" if m in ATTN else "mlp"
            base = f"base_model.model.model.layers.{i}.{part}.{m}"
            for mat, shape in (("A", [r, in_f]), ("B", [out_f, r])):
                n = shape[0] * shape[1]
                blob = f32(n) if size == 4 else f16(n)
                tensors[f"{base}.lora_{mat}.weight"] = (dtype, shape, blob)
    cfg = json.dumps(config).encode()
    st = safetensors(tensors)
    return struct.pack("<I", len(cfg)) + cfg + st


def adapter_seeds():
    seeds = {
        "q_v.bin": adapter(["q_proj", "v_proj"]),
        "all_linear_r1.bin": adapter("all-linear", r=1),
        "mlp_f16.bin": adapter(["gate_proj", "up_proj", "down_proj"], dtype="F16"),
        "rslora.bin": adapter(["k_proj", "o_proj"], r=4, extra_config={"use_rslora": True}),
        "missing_layer.bin": adapter(["q_proj"], layers=1),
    }
    real = ROOT / "tests/fixtures/lora_tiny/adapter"
    cfg = (real / "adapter_config.json").read_bytes()
    st = (real / "adapter_model.safetensors").read_bytes()
    seeds["lora_tiny_fixture.bin"] = struct.pack("<I", len(cfg)) + cfg + st
    return seeds


# --- the text targets ----------------------------------------------------------------------

EVENTS = [
    {"event": "started", "output_dir": "runs/x", "total_steps": 10, "start_step": 0, "examples": 4,
     "truncated": 0, "trainable_parameters": 1234, "device": "cpu", "stage": "sft"},
    {"event": "phase", "name": "reference log-probs", "done": 1, "total": 4},
    {"event": "step", "step": 1, "epoch": 0.25, "loss": 2.5, "lr": 1e-4, "grad_norm": 1.5,
     "tokens_per_s": 100.0, "elapsed_s": 0.5, "metrics": {"rewards/chosen": 0.1}},
    {"event": "eval", "step": 2, "metrics": {"eval_loss": 2.0}},
    {"event": "sample", "step": 2, "prompt": "hi", "base": "a", "tuned": "b"},
    {"event": "checkpoint", "step": 2, "path": "runs/x/checkpoint-2"},
    {"event": "warning", "step": 3, "message": "loss spiked"},
    {"event": "finished", "ok": True, "message": "done", "output_dir": "runs/x", "adapter": None},
]


def copy_glob(dst, patterns):
    out = {}
    for pattern in patterns:
        for p in sorted(ROOT.glob(pattern)):
            out[f"{p.parent.name}_{p.name}"] = p.read_bytes()
    return out


def text_seeds():
    sft = copy_glob("sft_data", ["sample_data/*/sft.jsonl", "tests/fixtures/tui/*.jsonl"])
    sft.update({
        "messages.jsonl": b'{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n',
        "prompt_completion.jsonl": b'{"prompt": "q", "completion": "a"}\n\n{"prompt": "q2", "completion": "a2"}\n',
        "text.jsonl": b'{"text": "hello"}\n',
        "bom_crlf.jsonl": b'\xef\xbb\xbf{"instruction": "i", "input": "x", "output": "o"}\r\n',
    })
    pref = copy_glob("preference_data", ["sample_data/*/preference.jsonl"])
    pref.update({
        "pair.jsonl": b'{"prompt": "q", "chosen": "good", "rejected": "bad"}\n',
        "messages_pair.jsonl": b'{"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": "g"}], "rejected": [{"role": "assistant", "content": "b"}]}\n',
    })
    evals = copy_glob("eval_cases", ["sample_data/*/eval.jsonl"])
    config = {}
    for p in sorted(ROOT.glob("sample_data/*/config.toml")):
        config[f"{p.parent.name}_config.toml"] = b"\0" + p.read_bytes()
    for name, body in list(config.items()):
        import tomllib
        table = tomllib.loads(body[1:].decode())
        config[name.replace(".toml", ".json")] = b"\1" + json.dumps(table).encode()
    config["pipeline.toml"] = b"\0" + (
        b'model_name = "HuggingFaceTB/SmolLM2-135M-Instruct"\ntrain_file = "sft.jsonl"\n'
        b'preference_file = "pref.jsonl"\nstages = ["sft", "dpo"]\n[sft]\nlearning_rate = 2e-4\n'
        b'[dpo]\nbeta = 0.1\nloss_type = "sigmoid"\n')
    events = {
        "all_events.jsonl": "\n".join(json.dumps(e) for e in EVENTS).encode() + b"\n",
        "bad_line.jsonl": json.dumps(EVENTS[0]).encode() + b"\n{\"event\": \"nope\"}\n",
    }
    templates = {
        "smollm2.jinja": SMOLLM_TEMPLATE.encode(),
        "chatml.jinja": (ROOT / "src/model/chat_template.rs").read_text()
        .split('CHATML_TEMPLATE: &str = "')[1].split('";')[0].replace("\\n", "\n").encode(),
        "llama3.jinja": b"{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
        "raise.jinja": b"{% if messages[0]['role'] == 'system' %}{{ raise_exception('no system') }}{% endif %}{{ messages | length }}",
        "macros.jinja": b"{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}{% set ns = namespace(x=0) %}{% for m in messages %}{% set ns.x = ns.x + 1 %}{% if loop.last %}{{ ns.x }}{% endif %}{% endfor %}",
        "pycompat.jinja": b"{{ messages[0].content.upper().strip().split(' ') | join(',') }}{{ 'a-b'.replace('-', '+') }}{{ messages | tojson }}{% for i in range(3) %}{% if i == 1 %}{% continue %}{% endif %}{{ i }}{% endfor %}",
        "loop_range.jinja": b"{% for i in range(10) %}{{ i }}{% endfor %}",
    }
    return {"sft_data": sft, "preference_data": pref, "eval_cases": evals, "config": config,
            "events": events, "chat_template": templates}


def main():
    sets = text_seeds()
    sets["gguf"] = gguf_seeds()
    sets["adapter"] = adapter_seeds()
    for target, files in sets.items():
        d = CORPUS / target
        d.mkdir(parents=True, exist_ok=True)
        for name, body in files.items():
            (d / f"seed_{name}").write_bytes(body)
        print(f"{target}: {len(files)} seeds")


if __name__ == "__main__":
    main()
