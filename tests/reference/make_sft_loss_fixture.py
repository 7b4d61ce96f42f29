#!/usr/bin/env python3
# Makes tests/fixtures/sft_loss_smollm2.json: the step-0 SFT loss of the default model
# (SmolLM2-135M-Instruct Q4_1 GGUF, loaded by transformers' GGUF loader, every tensor dequantized
# to f32) on a fixed batch of 3 prompt/completion records, computed the way TRL's SFTTrainer does
# for prompt/completion data with completion-only loss (loss only on the assistant turn).
#
# Ids: prompt_text = chat template over [system, user] with add_generation_prompt=True;
# full_text = template over [system, user, assistant] with add_generation_prompt=False;
# completion_text = full_text[len(prompt_text):]; input_ids = tok(prompt_text) + tok(completion_text)
# (two tokenizations, no special tokens added, special-token strings parsed); labels = -100 on the
# prompt, completion ids on the completion. Batch right-padded with pad id 2 (<|im_end|>, the GGUF's
# tokenizer.ggml.padding_token_id), attention_mask 0 and labels -100 on padding.
# Loss = model(input_ids, attention_mask, labels).loss (transformers' causal-LM loss: labels shifted,
# mean over every non -100 target of the batch), f32, eager attention, model.eval().
#
# Same venv as make_logits_fixture.py plus `peft==0.21.2 trl==1.16.0` (see README.md).
# Run:
#   /opt/refenv/bin/python tests/reference/make_sft_loss_fixture.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf]
import argparse
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

SYSTEM_PROMPT = "You are a precise assistant."
RECORDS = [
    {"prompt": "Start a QoS session for +46701234567 to 203.0.113.5 for gaming, 10 minutes",
     "completion": '{"device":{"phoneNumber":"+46701234567"},"applicationServer":{"ipv4Address":"203.0.113.5"},'
                   '"qosProfile":"QOS_E","duration":600}'},
    {"prompt": "What does DP mean on an offshore vessel?",
     "completion": "DP stands for Dynamic Positioning: a computer-controlled system that keeps a vessel on station "
                   "using its own thrusters."},
    {"prompt": "Say hi.", "completion": "Hi!"},
]
PAD_ID = 2
ATTN = "eager"
THREADS = 2


def hf_tokenizer(gguf_path):
    from transformers import PreTrainedTokenizerFast

    meta = C.read_gguf_tokenizer_meta(gguf_path)
    tok, desc = C.load_reference_tokenizer(gguf_path)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                 pad_token="<|im_end|>")
    hf.chat_template = meta["chat_template"]
    assert hf.pad_token_id == PAD_ID
    return hf, tok, desc, meta


def render(hf, tok, rec):
    msgs = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": rec["prompt"]}]
    prompt_text = hf.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    full_text = hf.apply_chat_template(msgs + [{"role": "assistant", "content": rec["completion"]}],
                                       tokenize=False, add_generation_prompt=False)
    assert full_text.startswith(prompt_text), (prompt_text, full_text)
    completion_text = full_text[len(prompt_text):]
    assert completion_text.endswith("<|im_end|>\n"), completion_text
    p_ids = tok.encode(prompt_text, add_special_tokens=False).ids
    c_ids = tok.encode(completion_text, add_special_tokens=False).ids
    # the boundary must not cut a token: tokenizing full_text in one go gives the same ids
    one_pass = tok.encode(full_text, add_special_tokens=False).ids
    return {"prompt_text": prompt_text, "completion_text": completion_text, "full_text": full_text,
            "prompt_ids": p_ids, "completion_ids": c_ids, "ids": p_ids + c_ids,
            "labels": [-100] * len(p_ids) + c_ids, "one_pass_equal": one_pass == p_ids + c_ids}


def collate(rows):
    n = max(len(r["ids"]) for r in rows)
    ids = [r["ids"] + [PAD_ID] * (n - len(r["ids"])) for r in rows]
    lab = [r["labels"] + [-100] * (n - len(r["labels"])) for r in rows]
    am = [[1] * len(r["ids"]) + [0] * (n - len(r["ids"])) for r in rows]
    return ids, am, lab


def load_model(gguf_path, attn):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(os.path.dirname(gguf_path), gguf_file=os.path.basename(gguf_path),
                                                 dtype=torch.float32, attn_implementation=attn)
    model.eval()
    return model


def hand_loss(logits, labels, dtype=np.float64):
    """Shifted cross-entropy by hand in numpy: log-softmax of the f32 logits computed in `dtype`
    (numpy's pairwise summation), mean over the targets != -100."""
    lg = logits[:, :-1, :].astype(dtype)
    tg = labels[:, 1:]
    m = lg.max(-1, keepdims=True)
    lse = (m + np.log(np.exp(lg - m).sum(-1, keepdims=True)))[..., 0]
    mask = tg != -100
    picked = np.take_along_axis(lg, np.where(mask, tg, 0)[..., None], -1)[..., 0]
    nll = (lse - picked)[mask].astype(np.float64)
    return float(nll.mean()), int(mask.sum())


def trl_check(model, hf, ids, am, lab, loss):
    """TRL's own SFTTrainer dataset preparation + DataCollatorForLanguageModeling on conversational
    prompt/completion records with completion_only_loss, and its compute_loss on the collated batch."""
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    ds = Dataset.from_list([{
        "prompt": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": r["prompt"]}],
        "completion": [{"role": "assistant", "content": r["completion"]}]} for r in RECORDS])
    with tempfile.TemporaryDirectory() as td:
        cfg = SFTConfig(output_dir=td, completion_only_loss=True, report_to=[], max_length=None, use_cpu=True,
                        per_device_train_batch_size=3, dataset_num_proc=None, seed=0)
        # The GGUF-loaded model keeps transformers' GgufHfQuantizer attached although its weights are plain
        # f32 tensors, and Trainer/TRL then refuse to train it ("purely quantized model" / "GGUF does not
        # support training", also with a PEFT adapter). Detach it with the quantizer's own
        # remove_quantization_config (clears hf_quantizer, config.quantization_config, is_quantized):
        # nothing in the forward uses it.
        model.hf_quantizer.remove_quantization_config(model)
        tr = SFTTrainer(model=model, args=cfg, train_dataset=ds, processing_class=hf)
        tr.model.eval()
        feats = [{k: tr.train_dataset[i][k] for k in ("input_ids", "labels")} for i in range(len(RECORDS))]
        batch = tr.data_collator(feats)
        t_ids, t_am, t_lab = (batch[k].tolist() for k in ("input_ids", "attention_mask", "labels"))
        diffs = []
        for name, a, b in (("input_ids", t_ids, ids), ("attention_mask", t_am, am), ("labels", t_lab, lab)):
            if a != b:
                diffs.append({"field": name, "trl": a, "ours": b})
        with torch.no_grad():
            n_items = int((batch["labels"][:, 1:] != -100).sum())
            tl = tr.compute_loss(tr.model, dict(batch), num_items_in_batch=torch.tensor(n_items))
            tl_none = tr.compute_loss(tr.model, dict(batch))
        return {
            "trl_agrees": not diffs,
            "differences": diffs,
            "how": f"trl {C.ver('trl')} SFTTrainer(SFTConfig(completion_only_loss=True, max_length=None)) on a "
                   f"datasets Dataset of conversational records (prompt=[system,user], completion=[assistant]); "
                   f"train_dataset input_ids/labels collated by its DataCollatorForLanguageModeling "
                   f"(pad_token_id={tr.data_collator.pad_token_id}); SFTTrainer.compute_loss on that batch (same f32 "
                   f"model, eval mode; GgufHfQuantizer detached so that Trainer accepts it)",
            "trl_compute_loss": float(tl),
            "trl_compute_loss_num_items_in_batch": n_items,
            "trl_compute_loss_no_num_items": float(tl_none),
            "trl_compute_loss_abs_diff": abs(float(tl) - loss),
        }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("gguf", nargs="?", default=None)
    ap.add_argument("--out", default=os.path.join(C.FIXTURES, "sft_loss_smollm2.json"))
    ap.add_argument("--no-trl", action="store_true")
    args = ap.parse_args()
    gguf_path = C.resolve_gguf(args.gguf)

    import torch

    torch.manual_seed(0)
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)

    hf, tok, tok_desc, meta = hf_tokenizer(gguf_path)
    assert meta["add_bos"] is False
    rows = [render(hf, tok, r) for r in RECORDS]
    assert all(r["one_pass_equal"] for r in rows)
    ids, am, lab = collate(rows)
    T = torch.tensor

    model = load_model(gguf_path, ATTN)
    with torch.no_grad():
        out = model(T(ids), attention_mask=T(am), labels=T(lab))
        loss = float(out.loss)
        logits = out.logits.float().numpy()
        hand, n_tok = hand_loss(logits, np.array(lab))
        hand32, _ = hand_loss(logits, np.array(lab), np.float32)
        torch_f64 = float(torch.nn.functional.cross_entropy(
            out.logits[:, :-1].double().reshape(-1, out.logits.shape[-1]), T(lab)[:, 1:].reshape(-1)))
        per_ex, per_n = [], []
        for r in rows:
            per_ex.append(float(model(T([r["ids"]]), labels=T([r["labels"]])).loss))
            per_n.append(len(r["completion_ids"]))  # targets after the shift: every completion id
        loss_no_mask = float(model(T(ids), labels=T(lab)).loss)
    weighted = float(np.dot(per_ex, per_n) / np.sum(per_n))
    assert n_tok == sum(per_n)

    other = "sdpa" if ATTN == "eager" else "eager"
    m2 = load_model(gguf_path, other)
    with torch.no_grad():
        loss_other = float(m2(T(ids), attention_mask=T(am), labels=T(lab)).loss)
    del m2

    trl = None
    if not args.no_trl:
        try:
            trl = trl_check(model, hf, ids, am, lab, loss)
        except Exception as e:  # recorded, not fatal
            trl = {"trl_agrees": None, "error": f"{type(e).__name__}: {e}"}

    cfg = model.config
    obj = {
        "reference": {
            "tool": f"transformers {C.ver('transformers')} AutoModelForCausalLM.from_pretrained(dir, gguf_file=..., "
                    f"dtype=float32, attn_implementation={ATTN!r}) (GGUF dequantized to f32 by gguf {C.ver('gguf')}), "
                    f"torch {C.ver('torch')} CPU f32, set_num_threads({THREADS}), use_deterministic_algorithms(True), "
                    f"model.eval() (no dropout)",
            "versions": {p: C.ver(p) for p in ("transformers", "torch", "gguf", "tokenizers", "trl", "peft",
                                               "datasets", "numpy", "jinja2")},
            "attn_implementation": getattr(cfg, "_attn_implementation", ATTN),
            "tokenizer": tok_desc,
            "chat_template": "the GGUF's tokenizer.chat_template, rendered by PreTrainedTokenizerFast.apply_chat_template",
            "loss_definition": "model(input_ids, attention_mask=attention_mask, labels=labels).loss: logits[:, :-1] vs "
                               "labels[:, 1:], cross-entropy summed over all targets != -100 of the batch and divided "
                               "by their count (loss_tokens). TRL's SFTTrainer divides by num_items_in_batch, the same "
                               "count for one batch without gradient accumulation.",
            "tokenization": "input_ids = encode(prompt_text) + encode(completion_text), add_special_tokens=False, "
                            "special-token strings parsed; no BOS (GGUF add_bos_token=false). Tokenizing full_text "
                            "in one pass gives the same ids for every record.",
        },
        "gguf": {"file": os.path.basename(gguf_path), "sha256": C.sha256_file(gguf_path)},
        "system_prompt": SYSTEM_PROMPT,
        "records": RECORDS,
        "prompt_texts": [r["prompt_text"] for r in rows],
        "completion_texts": [r["completion_text"] for r in rows],
        "prompt_lens": [len(r["prompt_ids"]) for r in rows],
        "seq_lens": [len(r["ids"]) for r in rows],
        "input_ids": ids,
        "attention_mask": am,
        "labels": lab,
        "pad_id": PAD_ID,
        "loss": loss,
        "per_example_loss": per_ex,
        "per_example_loss_tokens": per_n,
        "loss_tokens": n_tok,
        "hand_check_loss": hand,
        "hand_check_abs_diff": abs(hand - loss),
        "hand_check_note": "hand_check_loss = numpy float64 log-softmax of the model's f32 logits (shift, mask, mean). "
                           "The gap to `loss` is f32 rounding inside torch's CPU f32 cross_entropy (49152-way "
                           "log-sum-exp; per token up to ~3e-5, biased low), not a definitional difference: numpy in "
                           "float32 (pairwise sums) and torch's cross_entropy on float64-cast logits both land on the "
                           "float64 value. TRL's SFTTrainer.compute_loss (fused chunked LM-head log-probs) also "
                           "lands there (trl.trl_compute_loss). Compare an engine's loss with about 5e-5 tolerance.",
        "hand_check_loss_numpy_f32": hand32,
        "hand_check_numpy_f32_abs_diff": abs(hand32 - loss),
        "torch_cross_entropy_f64_logits": torch_f64,
        "per_example_weighted_mean": weighted,
        "per_example_weighted_mean_abs_diff": abs(weighted - loss),
        "loss_attention_mask_none": loss_no_mask,
        f"loss_{other}": loss_other,
        f"loss_{other}_abs_diff": abs(loss_other - loss),
        "trl": trl,
    }
    C.dump_json(args.out, obj)
    summary = {k: obj[k] for k in ("loss", "per_example_loss", "loss_tokens", "hand_check_abs_diff",
                                   "hand_check_numpy_f32_abs_diff", "torch_cross_entropy_f64_logits",
                                   "per_example_weighted_mean_abs_diff", "loss_attention_mask_none", f"loss_{other}",
                                   "seq_lens", "prompt_lens")}
    print(summary, file=sys.stderr)
    print({k: v for k, v in (trl or {}).items() if k != "differences"}, file=sys.stderr)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
