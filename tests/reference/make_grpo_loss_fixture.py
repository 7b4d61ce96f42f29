"""GRPO advantages, losses and metrics on fixed rewards and log-probs, with TRL's formulas.

The formulas are TRL 1.10's GRPOTrainer (trl/trainer/grpo_trainer.py):
_generate_and_score_completions for the rewards (weighted nansum, a completion with no reward
left out of its group's baseline and given advantage 0), the group mean, nanstd (Bessel's
correction) per group / over the batch / none, and advantages = (r - mean) / (std + 1e-4);
_compute_loss for the token-level clipped loss, the k3 KL estimate, the loss_type
normalisations (grpo, bnpo, dr_grpo, dapo with one micro-batch per step) and the logged kl and
clip_ratio/* metrics.

Run: /opt/refenv/bin/python tests/reference/make_grpo_loss_fixture.py
Writes tests/fixtures/grpo_loss.json.
"""
import json
from pathlib import Path

import torch

nan = float("nan")
G = 4
rewards_per_func = torch.tensor(
    [
        [1.0, 0.5],
        [0.0, nan],
        [1.0, 1.0],
        [nan, nan],
        [0.5, 0.25],
        [0.5, 0.25],
        [0.5, 0.25],
        [0.5, 0.25],
    ],
    dtype=torch.float64,
)
reward_weights = torch.tensor([1.0, 0.5], dtype=torch.float64)


def nanstd(t, dim=None):
    mean = torch.nanmean(t, dim=dim, keepdim=True)
    variance = torch.nanmean((t - mean) ** 2, dim=dim, keepdim=True)
    count = torch.sum(~torch.isnan(t), dim=dim, keepdim=True)
    correction = count / (count - 1)
    correction = torch.where(count > 1, correction, torch.full_like(correction, nan))
    variance = variance * correction
    out = torch.sqrt(variance)
    return out.squeeze(dim) if dim is not None else out.squeeze()


def advantages(scale):
    unscorable = torch.isnan(rewards_per_func).all(dim=1)
    rewards = (rewards_per_func * reward_weights.unsqueeze(0)).nansum(dim=1)
    rewards[unscorable] = nan
    mean = torch.nanmean(rewards.view(-1, G), dim=1).repeat_interleave(G)
    if scale in ("group", "none"):
        std = nanstd(rewards.view(-1, G), dim=1).repeat_interleave(G)
    else:
        std = nanstd(rewards).expand_as(rewards)
    adv = rewards - mean
    if scale != "none":
        adv = adv / (std + 1e-4)
    is_std_zero = torch.isclose(std, torch.zeros_like(std))
    adv = torch.nan_to_num(adv, nan=0.0)
    metrics = {}
    for i, name in enumerate(["r0", "r1"]):
        metrics[f"rewards/{name}/mean"] = torch.nanmean(rewards_per_func[:, i]).item()
        metrics[f"rewards/{name}/std"] = nanstd(rewards_per_func[:, i]).item()
    metrics["reward"] = torch.nanmean(rewards).item()
    metrics["reward_std"] = nanstd(rewards).item()
    metrics["frac_reward_zero_std"] = is_std_zero.float().mean().item()
    return {"scale_rewards": scale, "advantages": adv.tolist(), "metrics": metrics}


# One micro-batch: 4 completions of up to 5 tokens (mask 0 past each one's end).
gen = torch.Generator().manual_seed(7)
logps = -torch.rand(4, 5, generator=gen, dtype=torch.float64) * 3
old = logps + (torch.rand(4, 5, generator=gen, dtype=torch.float64) - 0.5) * 0.8
ref = logps + (torch.rand(4, 5, generator=gen, dtype=torch.float64) - 0.5) * 0.6
mask = torch.tensor(
    [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 0]], dtype=torch.float64
)
adv = torch.tensor([1.2, -0.7, 0.3, -1.5], dtype=torch.float64)
max_completion_length = 5


def loss_case(loss_type, beta, use_old, eps_low=0.2, eps_high=0.28):
    old_logps = old if use_old else logps.detach()
    coef_1 = torch.exp(logps - old_logps)
    coef_2 = torch.clamp(coef_1, 1 - eps_low, 1 + eps_high)
    a = adv.unsqueeze(1)
    per_token_loss = -torch.min(coef_1 * a, coef_2 * a)
    metrics = {}
    if beta != 0.0:
        kl = torch.exp(ref - logps) - (ref - logps) - 1
        per_token_loss = per_token_loss + beta * kl
        metrics["kl"] = ((kl * mask).sum() / mask.sum()).item()
    if loss_type == "grpo":
        loss = ((per_token_loss * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    elif loss_type in ("bnpo", "dapo"):
        loss = (per_token_loss * mask).sum() / mask.sum().clamp(min=1.0)
    elif loss_type == "dr_grpo":
        loss = (per_token_loss * mask).sum() / (per_token_loss.size(0) * max_completion_length)
    low = ((coef_1 < 1 - eps_low) & (a < 0)).double()
    high = ((coef_1 > 1 + eps_high) & (a > 0)).double()
    region = ((low + high) > 0).double()
    for name, x in [("low_mean", low), ("high_mean", high), ("region_mean", region)]:
        metrics[f"clip_ratio/{name}"] = ((x * mask).sum() / mask.sum()).item()
    return {
        "loss_type": loss_type,
        "beta": beta,
        "use_old": use_old,
        "epsilon": eps_low,
        "epsilon_high": eps_high,
        "loss": loss.item(),
        "metrics": metrics,
    }


fixture = {
    "num_generations": G,
    "rewards_per_func": [[None if x != x else x for x in row] for row in rewards_per_func.tolist()],
    "reward_weights": reward_weights.tolist(),
    "advantage_cases": [advantages(s) for s in ("group", "batch", "none")],
    "logps": logps.tolist(),
    "old": old.tolist(),
    "ref": ref.tolist(),
    "mask": mask.tolist(),
    "advantages": adv.tolist(),
    "max_completion_length": max_completion_length,
    "loss_cases": [
        loss_case(t, beta, use_old)
        for t in ("grpo", "bnpo", "dr_grpo", "dapo")
        for beta in (0.0, 0.04)
        for use_old in (False, True)
    ],
}
out = Path(__file__).resolve().parent.parent / "fixtures" / "grpo_loss.json"
out.write_text(json.dumps(fixture, indent=1) + "\n")
print(f"wrote {out}")
