"""Full-size shapes of each family in bf16 on the GPU, tunelab against transformers + PEFT.

    python3 tests/gpu/family_bf16.py FAMILY_CHECK_BINARY WORK_DIR      [ONLY="qwen3-0.6b ..."]

For each shape: a model of that shape with transformers' random initialisation, saved in bf16
(both sides load the same weights), a PEFT LoRA on all its linear projections (r 16, alpha 32,
A and B random), and one batch of 2 x 256 random tokens whose first 16 positions carry no loss.
The reference is PEFT in f32 on those weights; PEFT in bf16 (LoRA weights f32) and tunelab's
training pass in bf16 (examples/family_check.rs) are each measured against it: logits and the
LoRA gradients as ||x - ref|| / ||ref||, the loss as |x - ref|.
"""
import json
import os
import subprocess
import sys

import safetensors.torch
import torch
import transformers
import peft

SHAPES = {
    "qwen2.5-0.5b": ("Qwen2", dict(vocab_size=151936, hidden_size=896, intermediate_size=4864,
                                   num_hidden_layers=24, num_attention_heads=14,
                                   num_key_value_heads=2, rope_theta=1e6, rms_norm_eps=1e-6,
                                   tie_word_embeddings=True, max_position_embeddings=32768)),
    "qwen3-0.6b": ("Qwen3", dict(vocab_size=151936, hidden_size=1024, intermediate_size=3072,
                                 num_hidden_layers=28, num_attention_heads=16,
                                 num_key_value_heads=8, head_dim=128, rope_theta=1e6,
                                 rms_norm_eps=1e-6, tie_word_embeddings=True,
                                 max_position_embeddings=40960)),
    "phi3-mini": ("Phi3", dict(vocab_size=32064, hidden_size=3072, intermediate_size=8192,
                               num_hidden_layers=32, num_attention_heads=32,
                               num_key_value_heads=32, rope_theta=10000.0, rms_norm_eps=1e-5,
                               tie_word_embeddings=False, max_position_embeddings=4096,
                               sliding_window=2047)),
    "llama-3.2-1b": ("Llama", dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192,
                                   num_hidden_layers=16, num_attention_heads=32,
                                   num_key_value_heads=8, rope_theta=500000.0, rms_norm_eps=1e-5,
                                   tie_word_embeddings=True, max_position_embeddings=131072,
                                   rope_scaling=dict(rope_type="llama3", factor=32.0,
                                                     low_freq_factor=1.0, high_freq_factor=4.0,
                                                     original_max_position_embeddings=8192))),
    "gemma3-1b": ("Gemma3Text", dict(vocab_size=262144, hidden_size=1152,
                                     intermediate_size=6912, num_hidden_layers=26,
                                     num_attention_heads=4, num_key_value_heads=1, head_dim=256,
                                     query_pre_attn_scalar=256, sliding_window=512,
                                     max_position_embeddings=32768, rms_norm_eps=1e-6)),
}


DEVICE = os.environ.get("DEVICE", "cuda")


def build(family, shape, folder):
    config = getattr(transformers, f"{family}Config")(**shape)
    cls = getattr(transformers, "Gemma3ForCausalLM" if family == "Gemma3Text" else f"{family}ForCausalLM")
    torch.manual_seed(0)
    with torch.device(DEVICE):
        model = cls(config).to(torch.bfloat16)
    model.save_pretrained(folder, safe_serialization=True)
    return cls


def peft_pass(cls, folder, dtype, adapter):
    model = cls.from_pretrained(folder, dtype=dtype, attn_implementation="eager").to(DEVICE)
    model = peft.PeftModel.from_pretrained(model, adapter, is_trainable=True)
    for n, p in model.named_parameters():
        if p.requires_grad:
            p.data = p.data.float()
    return model


def run(model, batch):
    ids = torch.tensor(batch["input_ids"], device=DEVICE)
    labels = torch.tensor(batch["labels"], device=DEVICE)
    out = model(input_ids=ids, labels=labels)
    out.loss.backward()
    grads = {n.replace(".default", ""): p.grad.float() for n, p in model.named_parameters() if p.requires_grad}
    return out.logits.float().detach(), out.loss.item(), grads


def rel(x, ref):
    return (torch.linalg.vector_norm(x - ref) / torch.linalg.vector_norm(ref)).item()


def main():
    binary, work = sys.argv[1], sys.argv[2]
    rows = []
    only = os.environ.get("ONLY", "").split()
    for name, (family, shape) in SHAPES.items():
        if only and name not in only:
            continue
        folder = os.path.join(work, name)
        cls = build(family, shape, folder)
        torch.manual_seed(1)
        base = cls.from_pretrained(folder, dtype=torch.bfloat16).to(DEVICE)
        lora = peft.get_peft_model(base, peft.LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0,
                                                         target_modules="all-linear", task_type="CAUSAL_LM"))
        with torch.no_grad():
            for n, p in lora.named_parameters():
                if "lora_" in n:
                    p.copy_(torch.randn_like(p) * 0.02)
        lora.save_pretrained(os.path.join(folder, "adapter"))
        del lora, base
        g = torch.Generator().manual_seed(2)
        ids = torch.randint(3, shape["vocab_size"], (2, 256), generator=g)
        labels = ids.clone()
        labels[:, :16] = -100
        batch = {"input_ids": ids.tolist(), "labels": labels.tolist()}
        with open(os.path.join(folder, "batch.json"), "w") as fh:
            json.dump(batch, fh)
        ref_logits, ref_loss, ref_grads = run(peft_pass(cls, folder, torch.float32, os.path.join(folder, "adapter")), batch)
        torch.cuda.empty_cache() if DEVICE == "cuda" else None
        bf_logits, bf_loss, bf_grads = run(peft_pass(cls, folder, torch.bfloat16, os.path.join(folder, "adapter")), batch)
        torch.cuda.empty_cache() if DEVICE == "cuda" else None
        out = os.path.join(folder, "tunelab.safetensors")
        subprocess.run([binary, folder, os.path.join(folder, "batch.json"), out], check=True)
        ours = safetensors.torch.load_file(out, device=DEVICE)
        keys = sorted(ref_grads)
        assert sorted(k for k in ours if k.startswith("base_model")) == keys, (keys[:3], sorted(ours)[:3])
        flat = lambda d: torch.cat([d[k].flatten() for k in keys])
        row = {
            "shape": name,
            "peft_bf16": {"logits": rel(bf_logits, ref_logits), "loss": abs(bf_loss - ref_loss),
                          "grads": rel(flat(bf_grads), flat(ref_grads))},
            "tunelab_bf16": {"logits": rel(ours["logits"], ref_logits), "loss": abs(ours["loss"].item() - ref_loss),
                             "grads": rel(flat(ours), flat(ref_grads))},
            "worst_tensor_grad_tunelab": max(rel(ours[k], ref_grads[k]) for k in keys),
            "worst_tensor_grad_peft_bf16": max(rel(bf_grads[k], ref_grads[k]) for k in keys),
            "loss_f32": ref_loss,
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
        subprocess.run(["rm", "-rf", folder])
        torch.cuda.empty_cache() if DEVICE == "cuda" else None
    print("| shape | logits rel. err. tunelab / PEFT bf16 | loss err. tunelab / PEFT bf16 | LoRA grads rel. err. tunelab / PEFT bf16 |")
    print("|---|---|---|---|")
    for r in rows:
        t, p = r["tunelab_bf16"], r["peft_bf16"]
        print(f"| {r['shape']} | {t['logits']:.2e} / {p['logits']:.2e} | {t['loss']:.2e} / {p['loss']:.2e} | {t['grads']:.2e} / {p['grads']:.2e} |")


if __name__ == "__main__":
    main()
