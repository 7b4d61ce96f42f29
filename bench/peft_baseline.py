#!/usr/bin/env python3
"""The reference side of `tunelab bench`: the same LoRA workload in transformers + PEFT.

bf16 base weights, attn_implementation="sdpa", LoRA (r, alpha, dropout, targets as given) with
fp32 adapter weights, torch.optim.AdamW, gradient clipping at 1.0, no gradient checkpointing.
SFT: every token is a label (transformers' causal-LM loss). DPO: `batch` pairs sharing a prompt
of half the sequence; chosen and rejected go through one concatenated forward, completion
log-probs with TRL's selective_log_softmax, sigmoid loss with beta 0.1, and the reference
log-probs are computed once beforehand under `disable_adapter()`, as TRL's precompute does.

Prints one JSON line with the fields `tunelab bench` prints. peak_mem_gib is what the driver
(NVML) reports in use at the peak, less what was in use before this process touched the GPU:
it includes the CUDA context and the allocator's cache, as tunelab's figure does.
peak_allocated_gib is torch's own peak of live tensors.

Needs torch, transformers and peft; for --model (a GGUF file) also the `gguf` package.
"""

import argparse
import ctypes
import json
import threading
import time

SHAPES = {
    "smollm2-135m": dict(vocab_size=49152, hidden_size=576, intermediate_size=1536,
                         num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                         rope_theta=100000.0, max_position_embeddings=8192),
    "llama-1b": dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192,
                     num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8,
                     rope_theta=500000.0, max_position_embeddings=8192),
    "qwen3-0.6b": dict(family="Qwen3", vocab_size=151936, hidden_size=1024,
                       intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16,
                       num_key_value_heads=8, head_dim=128, rope_theta=1000000.0,
                       max_position_embeddings=40960, rms_norm_eps=1e-6),
    "gemma3-1b": dict(family="Gemma3Text", model_class="Gemma3ForCausalLM", vocab_size=262144,
                      hidden_size=1152, intermediate_size=6912, num_hidden_layers=26,
                      num_attention_heads=4, num_key_value_heads=1, head_dim=256,
                      query_pre_attn_scalar=256, sliding_window=512,
                      max_position_embeddings=32768, rms_norm_eps=1e-6),
    "llama-8b": dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336,
                     num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
                     rope_theta=500000.0, max_position_embeddings=131072,
                     tie_word_embeddings=False,
                     rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                                       high_freq_factor=4.0,
                                       original_max_position_embeddings=8192)),
}
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class DriverPeak:
    """Device memory in use on GPU 0 (all processes), polled from NVML every 10 ms."""

    def __init__(self):
        self.nvml = ctypes.CDLL("libnvidia-ml.so.1")
        assert self.nvml.nvmlInit_v2() == 0, "NVML did not initialise"
        self.handle = ctypes.c_void_p()
        assert self.nvml.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(self.handle)) == 0
        self.baseline = self.used()
        self.peak = self.baseline
        self.running = True
        self.thread = threading.Thread(target=self.poll, daemon=True)
        self.thread.start()

    def used(self):
        class Memory(ctypes.Structure):
            _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong),
                        ("used", ctypes.c_ulonglong)]
        m = Memory()
        assert self.nvml.nvmlDeviceGetMemoryInfo(self.handle, ctypes.byref(m)) == 0
        return m.used

    def poll(self):
        while self.running:
            self.peak = max(self.peak, self.used())
            time.sleep(0.01)

    def finish(self):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self.used())
        return (self.peak - self.baseline) / 2**30


def selective_log_softmax(logits, index):
    """TRL's selective_log_softmax (trl/trainer/utils.py): bf16 logits row by row."""
    import torch
    per_token = []
    for row_logits, row_labels in zip(logits, index):
        row_logps = torch.nn.functional.log_softmax(row_logits, dim=-1)
        per_token.append(row_logps.gather(dim=-1, index=row_labels.unsqueeze(-1)).squeeze(-1))
    return torch.stack(per_token)


def sequence_logps(model, ids, labels):
    """Summed log-probs of the label tokens of each row; position t predicts label t+1."""
    logits = model(input_ids=ids).logits[:, :-1]
    labels = labels[:, 1:]
    mask = labels != -100
    logps = selective_log_softmax(logits, labels.clamp(min=0))
    return (logps * mask).sum(-1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a GGUF file (dequantized to bf16 on load)")
    source.add_argument("--synthetic", choices=sorted(SHAPES))
    p.add_argument("--stage", choices=["sft", "dpo"], default="sft")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--lora-alpha", type=float, default=16.0)
    p.add_argument("--lora-dropout", type=float, default=0.05)
    p.add_argument("--targets", default="all-linear")
    a = p.parse_args()

    memory = DriverPeak()
    import torch
    import transformers
    import peft

    torch.manual_seed(0)
    if a.model:
        import os
        model = transformers.AutoModelForCausalLM.from_pretrained(
            os.path.dirname(os.path.abspath(a.model)), gguf_file=os.path.basename(a.model),
            dtype=torch.bfloat16, attn_implementation="sdpa")
        name = a.model
    else:
        shape = dict(SHAPES[a.synthetic])
        family = shape.pop("family", "Llama")
        model_class = shape.pop("model_class", f"{family}ForCausalLM")
        shape = {"rms_norm_eps": 1e-5, "tie_word_embeddings": True, **shape}
        config = getattr(transformers, f"{family}Config")(**shape, attn_implementation="sdpa")
        # Made on the GPU in bf16, so no f32 copy counts towards the peak.
        torch.set_default_dtype(torch.bfloat16)
        with torch.device("cuda"):
            model = getattr(transformers, model_class)(config)
        torch.set_default_dtype(torch.float32)
        name = f"{a.synthetic} (synthetic)"
    model = model.to(device="cuda", dtype=torch.bfloat16)
    targets = ALL_LINEAR if a.targets == "all-linear" else a.targets.split(",")
    model = peft.get_peft_model(model, peft.LoraConfig(
        r=a.lora_r, lora_alpha=a.lora_alpha, lora_dropout=a.lora_dropout,
        target_modules=targets, task_type="CAUSAL_LM"))
    for n, param in model.named_parameters():
        if param.requires_grad:
            param.data = param.data.float()
    trainable = [param for param in model.parameters() if param.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)

    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    reference_s = None
    if a.stage == "sft":
        ids = torch.randint(0, vocab, (a.batch, a.seq), generator=g).cuda()

        def loss_fn():
            return model(input_ids=ids, labels=ids).loss
    else:
        prompt = a.seq // 2
        shared = torch.randint(0, vocab, (a.batch, prompt), generator=g)
        sides = [torch.cat([shared, torch.randint(0, vocab, (a.batch, a.seq - prompt),
                                                  generator=g)], 1) for _ in range(2)]
        ids = torch.cat(sides, 0).cuda()
        labels = ids.clone()
        labels[:, :prompt] = -100
        started = time.perf_counter()
        with torch.no_grad(), model.disable_adapter():
            model.eval()
            reference = sequence_logps(model, ids, labels)
        torch.cuda.synchronize()
        reference_s = time.perf_counter() - started

        def loss_fn():
            logps = sequence_logps(model, ids, labels)
            chosen = logps[:a.batch] - reference[:a.batch]
            rejected = logps[a.batch:] - reference[a.batch:]
            return -torch.nn.functional.logsigmoid(0.1 * (chosen - rejected)).mean()

    model.train()
    times, losses = [], []
    for step in range(a.warmup + a.steps):
        started = time.perf_counter()
        loss = loss_fn()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        value = loss.item()
        torch.cuda.synchronize()
        if step >= a.warmup:
            times.append(time.perf_counter() - started)
            losses.append(value)
    peak = memory.finish()
    median = sorted(times)[len(times) // 2]  # as tunelab bench takes it
    rows = a.batch * (2 if a.stage == "dpo" else 1)
    line = {
        "impl": "peft", "model": name, "base": "BF16", "stage": a.stage, "batch": a.batch,
        "seq": a.seq, "steps": a.steps, "warmup": a.warmup, "lora_r": a.lora_r,
        "lora_alpha": a.lora_alpha, "lora_dropout": a.lora_dropout, "targets": targets,
        "device": "cuda:0", "gpu": torch.cuda.get_device_name(0), "peak_mem_gib": peak,
        "peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30,
        "ms_per_step": median * 1e3, "ms_per_step_min": min(times) * 1e3,
        "tokens_per_s": rows * a.seq / median, "loss_first": losses[0], "loss_last": losses[-1],
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "peft": peft.__version__},
    }
    if a.stage == "dpo":
        line["pairs_per_s"] = a.batch / median
        line["reference_s"] = reference_s
    print(json.dumps(line))


if __name__ == "__main__":
    main()
