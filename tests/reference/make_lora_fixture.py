# Reference fixture for the LoRA trainer: tiny random Llama + PEFT LoRA adapter, loss, gradients,
# clipping, two AdamW steps, rsLoRA / disabled-adapter losses and LR schedules.
#
# Install (into the same venv as the other reference scripts, see README.md):
#   /opt/refenv/bin/pip install peft==0.21.2 trl==1.16.0
#   (pulls datasets==5.2.0 for trl; torch==2.15.0, transformers==5.23.0, safetensors==0.8.0,
#    numpy==2.4.6, accelerate==1.15.0 as already pinned in README.md)
# Run (from the repository root; CPU only, no network, no model hub, a few seconds):
#   /opt/refenv/bin/python tests/reference/make_lora_fixture.py [OUT_DIR]
# OUT_DIR defaults to tests/fixtures/lora_tiny. The output is deterministic (byte-identical reruns).
#
# The script re-executes itself once with PYTHONHASHSEED=0 (target_modules order in adapter_config.json).
# Writes into OUT_DIR:
#   base/config.json, base/model.safetensors (+ base/generation_config.json if transformers writes it)
#   adapter/adapter_config.json, adapter/adapter_model.safetensors  (PEFT save_pretrained)
#   grads.safetensors            raw grads of every lora_A/lora_B at the initial adapter (PEFT key names)
#   grads_clipped.safetensors    the same after clip_grad_norm_(max_norm=1.0)
#   after_step1.safetensors      LoRA params after AdamW step 1 (PEFT key names)
#   after_step2.safetensors      LoRA params after AdamW step 2
#   schedules.json               LR schedules
#   reference.json               everything numeric
import json
import math
import os
import shutil
import sys
import tempfile

# PEFT stores target_modules as a set, so adapter_config.json's list order follows str hashing:
# pin the hash seed (re-exec once) so reruns are byte-identical.
if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy
import safetensors
import safetensors.torch
import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM
from transformers.optimization import (
    get_constant_schedule_with_warmup,
    get_cosine_schedule_with_warmup,
    get_linear_schedule_with_warmup,
)
import peft
from peft import LoraConfig, get_peft_model
import trl

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
torch.set_default_dtype(torch.float32)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(REPO, "tests", "fixtures", "lora_tiny")

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LORA_R, LORA_ALPHA = 4, 8
OPT = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
MAX_GRAD_NORM = 1.0


def f(x):
    """float32 tensor/scalar -> python float (exact float32 value, printed by repr)."""
    return float(torch.as_tensor(x, dtype=torch.float32).item())


def write_json(path, obj):
    with open(path, "w") as fh:
        json.dump(obj, fh, indent=1, sort_keys=False)
        fh.write("\n")


def save_st(path, tensors):
    safetensors.torch.save_file(
        {k: v.detach().to(torch.float32).contiguous().clone() for k, v in sorted(tensors.items())},
        path,
        metadata={"format": "pt"},
    )


def peft_key(name):
    """named_parameters name -> the key PEFT writes in adapter_model.safetensors."""
    assert ".lora_A.default." in name or ".lora_B.default." in name, name
    return name.replace(".lora_A.default.", ".lora_A.").replace(".lora_B.default.", ".lora_B.")


def lora_params(model):
    return [(peft_key(n), p) for n, p in model.named_parameters() if ".lora_A." in n or ".lora_B." in n]


# ---------------------------------------------------------------------------------------------
# 1. tiny Llama
# ---------------------------------------------------------------------------------------------
config = LlamaConfig(
    vocab_size=96,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    rope_theta=10000.0,
    rms_norm_eps=1e-5,
    max_position_embeddings=128,
    tie_word_embeddings=True,
    hidden_act="silu",
    attention_bias=False,
    mlp_bias=False,
    attention_dropout=0.0,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
)
config._attn_implementation = "eager"

torch.manual_seed(0)
base = LlamaForCausalLM(config).to(torch.float32)
with torch.no_grad():
    # Scale the default (std 0.02) init up so activations are not tiny. Fixed module order.
    for name, mod in base.named_modules():
        if isinstance(mod, torch.nn.Embedding):
            mod.weight.normal_(0.0, 0.5)
        elif isinstance(mod, torch.nn.Linear):
            if mod.weight is base.model.embed_tokens.weight:  # tied lm_head: leave the embedding
                continue
            mod.weight.normal_(0.0, 0.08)
        elif type(mod).__name__ == "LlamaRMSNorm":
            mod.weight.copy_(1.0 + 0.1 * torch.randn_like(mod.weight))
assert base.lm_head.weight.data_ptr() == base.model.embed_tokens.weight.data_ptr(), "lm_head not tied"

if os.path.isdir(OUT):
    shutil.rmtree(OUT)
os.makedirs(OUT)
base_dir = os.path.join(OUT, "base")
base.save_pretrained(base_dir, safe_serialization=True)
with safetensors.safe_open(os.path.join(base_dir, "model.safetensors"), "pt") as fh:
    base_keys = sorted(fh.keys())
assert "lm_head.weight" not in base_keys, base_keys
assert "model.embed_tokens.weight" in base_keys and "model.norm.weight" in base_keys
with open(os.path.join(base_dir, "config.json")) as fh:
    config_written = json.load(fh)

# ---------------------------------------------------------------------------------------------
# 2. PEFT LoRA adapter with every A/B overwritten
# ---------------------------------------------------------------------------------------------
def make_lora_config(use_rslora=False):
    return LoraConfig(
        r=LORA_R,
        lora_alpha=LORA_ALPHA,
        lora_dropout=0.0,
        target_modules=list(TARGETS),
        bias="none",
        task_type="CAUSAL_LM",
        use_rslora=use_rslora,
    )


def fresh_base():
    m = LlamaForCausalLM(config).to(torch.float32)
    sd = safetensors.torch.load_file(os.path.join(base_dir, "model.safetensors"))
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert list(unexpected) == [] and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
    m.tie_weights()
    assert m.lm_head.weight.data_ptr() == m.model.embed_tokens.weight.data_ptr()
    m.config._attn_implementation = "eager"
    return m


lora_config = make_lora_config()
model = get_peft_model(fresh_base(), lora_config)
gen = torch.Generator().manual_seed(1)
with torch.no_grad():
    for key, p in lora_params(model):  # named_parameters order: layer 0 q A, q B, k A, ...
        p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float32) * 0.1)
init_lora = {k: p.detach().clone() for k, p in lora_params(model)}

adapter_dir = os.path.join(OUT, "adapter")
model.save_pretrained(adapter_dir, safe_serialization=True)
os.remove(os.path.join(adapter_dir, "README.md"))  # PEFT's generated model card, not needed
with open(os.path.join(adapter_dir, "adapter_config.json")) as fh:
    adapter_config_written = json.load(fh)
saved_adapter = safetensors.torch.load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
assert sorted(saved_adapter) == sorted(init_lora), (sorted(saved_adapter)[:4], sorted(init_lora)[:4])
for k in init_lora:
    assert torch.equal(saved_adapter[k], init_lora[k]), k
scal = {m.scaling["default"] for m in model.modules() if isinstance(getattr(m, "scaling", None), dict) and "default" in m.scaling}
assert scal == {LORA_ALPHA / LORA_R}, scal

# ---------------------------------------------------------------------------------------------
# 3. batch, loss, logits, grads, clip
# ---------------------------------------------------------------------------------------------
bgen = torch.Generator().manual_seed(2)
input_ids = torch.randint(3, 96, (2, 12), generator=bgen, dtype=torch.int64)
attention_mask = torch.ones_like(input_ids)
input_ids[1, -3:] = 0
attention_mask[1, -3:] = 0
labels = input_ids.clone()
labels[:, :4] = -100
labels[attention_mask == 0] = -100

model.train()
for mod in model.modules():
    if isinstance(mod, torch.nn.Dropout):
        assert mod.p == 0.0


def forward(m, mask=attention_mask):
    return m(input_ids=input_ids, attention_mask=mask, labels=labels)


# hand check of transformers' loss: shift inside, mean over non -100 targets
out = forward(model)
loss = out.loss
logits = out.logits.detach()
shift_logits = logits[:, :-1].reshape(-1, 96)
shift_labels = labels[:, 1:].reshape(-1)
manual = torch.nn.functional.cross_entropy(shift_logits, shift_labels, ignore_index=-100, reduction="mean")
n_targets = int((shift_labels != -100).sum())
assert torch.allclose(manual, loss.detach(), rtol=0, atol=1e-6), (manual, loss)

with torch.no_grad():
    out_nomask = forward(model, mask=None)
padding_mask_irrelevant = bool(torch.equal(out_nomask.loss, loss.detach()))
nonpad_logits_equal = bool(torch.equal(out_nomask.logits[attention_mask.bool()], logits[attention_mask.bool()]))

model.zero_grad(set_to_none=True)
loss.backward()
grads = {k: p.grad.detach().clone() for k, p in lora_params(model)}
for k, g in grads.items():
    assert g.abs().max() > 0, f"zero grad {k}"
params = [p for _, p in lora_params(model)]
trainable = [p for p in model.parameters() if p.requires_grad]
assert len(trainable) == len(params) == 3 * 7 * 2
grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm=MAX_GRAD_NORM)
grad_norm_manual = torch.sqrt(sum((g.double() ** 2).sum() for g in grads.values()))
grads_clipped = {k: p.grad.detach().clone() for k, p in lora_params(model)}
clip_coef = MAX_GRAD_NORM / (float(grad_norm) + 1e-6)

save_st(os.path.join(OUT, "grads.safetensors"), grads)
save_st(os.path.join(OUT, "grads_clipped.safetensors"), grads_clipped)

# ---------------------------------------------------------------------------------------------
# 4. two AdamW steps on the LoRA params
# ---------------------------------------------------------------------------------------------
opt = torch.optim.AdamW(params, lr=OPT["lr"], betas=OPT["betas"], eps=OPT["eps"],
                        weight_decay=OPT["weight_decay"], amsgrad=False, maximize=False, foreach=False)
opt.step()
save_st(os.path.join(OUT, "after_step1.safetensors"), {k: p for k, p in lora_params(model)})
opt.zero_grad(set_to_none=True)
out1 = forward(model)
loss_after_step1 = out1.loss
loss_after_step1.backward()
grad_norm_step2 = torch.nn.utils.clip_grad_norm_(params, max_norm=MAX_GRAD_NORM)
opt.step()
save_st(os.path.join(OUT, "after_step2.safetensors"), {k: p for k, p in lora_params(model)})
opt.zero_grad(set_to_none=True)
with torch.no_grad():
    loss_after_step2 = forward(model).loss

# ---------------------------------------------------------------------------------------------
# 5. rsLoRA on the same A/B values; 6. base model (adapter disabled)
# ---------------------------------------------------------------------------------------------
rs_model = get_peft_model(fresh_base(), make_lora_config(use_rslora=True))
with torch.no_grad():
    for k, p in lora_params(rs_model):
        p.copy_(init_lora[k])
rs_scal = {m.scaling["default"] for m in rs_model.modules() if isinstance(getattr(m, "scaling", None), dict) and "default" in m.scaling}
assert rs_scal == {LORA_ALPHA / math.sqrt(LORA_R)}, rs_scal
rs_model.train()
with torch.no_grad():
    loss_rslora = forward(rs_model).loss
    with rs_model.disable_adapter():
        loss_base = forward(rs_model).loss
    # cross-check with the plain base model
    plain = fresh_base()
    plain.train()
    loss_base_plain = forward(plain).loss
assert torch.equal(loss_base, loss_base_plain), (loss_base, loss_base_plain)

# ---------------------------------------------------------------------------------------------
# 7. LR schedules + warmup ratio
# ---------------------------------------------------------------------------------------------
def schedule_lrs(factory, **kw):
    p = torch.nn.Parameter(torch.zeros(1))
    o = torch.optim.AdamW([p], lr=2e-4)
    s = factory(o, **kw)
    lrs = []
    for _ in range(100):
        lrs.append(float(s.get_last_lr()[0]))
        o.step()
        s.step()
    return lrs


SCHED_BASE = dict(base_lr=2e-4, num_warmup_steps=10, num_training_steps=100)
schedules = {
    "note": "lr at optimizer step i (0-based) = scheduler.get_last_lr()[0] read before optimizer.step(); "
            "scheduler.step() after each. transformers " + transformers.__version__ + ".",
    **SCHED_BASE,
    "constant_with_warmup": schedule_lrs(get_constant_schedule_with_warmup, num_warmup_steps=10),
    "linear": schedule_lrs(get_linear_schedule_with_warmup, num_warmup_steps=10, num_training_steps=100),
    "cosine": schedule_lrs(get_cosine_schedule_with_warmup, num_warmup_steps=10, num_training_steps=100),
}

with tempfile.TemporaryDirectory() as td:
    targs = transformers.TrainingArguments(output_dir=td, warmup_steps=0.1, report_to="none", use_cpu=True)
    warmup_from_training_args = targs.get_warmup_steps(100)
    try:
        sft = trl.SFTConfig(output_dir=td, warmup_steps=0.1, report_to="none", use_cpu=True)
        warmup_from_sft_config = sft.get_warmup_steps(100)
    except Exception as e:  # pragma: no cover
        warmup_from_sft_config = f"error: {type(e).__name__}: {e}"
    has_warmup_ratio = "warmup_ratio" in transformers.TrainingArguments.__dataclass_fields__
assert warmup_from_training_args == math.ceil(0.1 * 100) == 10
schedules["warmup_ratio"] = {
    "ratio": 0.1,
    "num_training_steps": 100,
    "warmup_steps": warmup_from_training_args,
    "function": "transformers.TrainingArguments.get_warmup_steps: "
                "int(warmup_steps) if warmup_steps >= 1 else math.ceil(num_training_steps * warmup_steps)",
    "trl_sft_config_warmup_steps": warmup_from_sft_config,
    "training_args_has_warmup_ratio_field": has_warmup_ratio,
    "note": "in transformers 5.x the ratio is passed as a float warmup_steps in [0, 1); "
            "TRL's SFTConfig inherits TrainingArguments.get_warmup_steps",
}
write_json(os.path.join(OUT, "schedules.json"), schedules)

# ---------------------------------------------------------------------------------------------
# reference.json
# ---------------------------------------------------------------------------------------------
ref = {
    "versions": {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "trl": trl.__version__,
        "safetensors": safetensors.__version__,
        "numpy": numpy.__version__,
    },
    "config": config_written,
    "base_safetensors_keys": base_keys,
    "init": {
        "seed": "torch.manual_seed(0); LlamaForCausalLM(config) default init; then in named_modules order: "
                "Embedding.weight ~ N(0, 0.5), Linear.weight ~ N(0, 0.08) (tied lm_head skipped), "
                "RMSNorm.weight = 1 + 0.1*randn",
        "lora": "torch.Generator().manual_seed(1); for each lora_A/lora_B in named_parameters order: "
                "randn(shape, generator) * 0.1",
    },
    "lora_config": adapter_config_written,
    "lora_scaling": LORA_ALPHA / LORA_R,
    "lora_scaling_rslora": LORA_ALPHA / math.sqrt(LORA_R),
    "lora_param_order": list(init_lora.keys()),
    "batch": {
        "input_ids": input_ids.tolist(),
        "attention_mask": attention_mask.tolist(),
        "labels": labels.tolist(),
        "pad_id": 0,
        "num_loss_targets": n_targets,
    },
    "attn_implementation": "eager",
    "loss": f(loss),
    "logits_row0_last": [f(x) for x in logits[0, -1]],
    "grad_global_norm": f(grad_norm),
    "grad_global_norm_f64_check": float(grad_norm_manual),
    "clip_coef": "max_norm / (total_norm + 1e-6), applied only when < 1 (torch clip_grad_norm_)",
    "clip_coef_value": clip_coef,
    "loss_after_step1": f(loss_after_step1),
    "grad_global_norm_step2": f(grad_norm_step2),
    "loss_after_step2": f(loss_after_step2),
    "loss_rslora": f(loss_rslora),
    "loss_base": f(loss_base),
    "padding_mask_irrelevant": padding_mask_irrelevant,
    "nonpad_logits_identical_without_mask": nonpad_logits_equal,
    "optimizer": {
        "name": "torch.optim.AdamW",
        "lr": OPT["lr"],
        "betas": list(OPT["betas"]),
        "eps": OPT["eps"],
        "weight_decay": OPT["weight_decay"],
        "amsgrad": False,
        "foreach": False,
        "max_grad_norm": MAX_GRAD_NORM,
        "params": "LoRA A/B only (base frozen)",
        "update": "p *= 1 - lr*wd; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2; "
                  "p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)",
        "steps": "step1 uses grads_clipped.safetensors; step2: forward (loss_after_step1), backward, clip 1.0, step",
    },
    "files": {
        "grads.safetensors": "raw grads at the initial adapter, PEFT key names",
        "grads_clipped.safetensors": "grads after clip_grad_norm_(max_norm=1.0)",
        "after_step1.safetensors": "LoRA params after AdamW step 1",
        "after_step2.safetensors": "LoRA params after AdamW step 2",
        "schedules.json": "LR schedules and warmup ratio rule",
    },
}
write_json(os.path.join(OUT, "reference.json"), ref)

print("loss", ref["loss"], "grad_norm", ref["grad_global_norm"], "step1", ref["loss_after_step1"],
      "step2", ref["loss_after_step2"], "rslora", ref["loss_rslora"], "base", ref["loss_base"],
      "pad_irrelevant", padding_mask_irrelevant, "clip_coef", clip_coef)
