"""DPO losses and metrics on fixed log-probs, computed with TRL's formulas.

The formulas are TRL 1.16's DPOTrainer._compute_loss (trl/trainer/dpo_trainer.py): sigmoid,
hinge, ipo (log-ratios divided by the completion token counts), the "sft" term that RPO adds
(loss_type=["sigmoid", "sft"], loss_weights=[1, rpo_alpha]), and the logged rewards/* and
logps/* metrics. label_smoothing on the sigmoid loss is conservative DPO as TRL's sigmoid loss
defined it before 1.0: -(1-e) logsigmoid(b d) - e logsigmoid(-b d).

Run: /opt/refenv/bin/python tests/reference/make_dpo_loss_fixture.py
Writes tests/fixtures/dpo_loss.json.
"""
import json
from pathlib import Path

import torch
import torch.nn.functional as F

policy_chosen = torch.tensor([-12.5, -30.25, -8.0, -41.0], dtype=torch.float64)
policy_rejected = torch.tensor([-14.0, -29.5, -20.75, -40.0], dtype=torch.float64)
ref_chosen = torch.tensor([-13.0, -29.0, -9.5, -40.5], dtype=torch.float64)
ref_rejected = torch.tensor([-13.5, -31.0, -19.0, -40.25], dtype=torch.float64)
chosen_tokens = torch.tensor([5, 12, 4, 20], dtype=torch.float64)
rejected_tokens = torch.tensor([7, 11, 9, 18], dtype=torch.float64)


def case(loss_type, beta, label_smoothing=0.0, rpo_alpha=None):
    chosen_logratios = policy_chosen - ref_chosen
    rejected_logratios = policy_rejected - ref_rejected
    delta_score = chosen_logratios - rejected_logratios
    if loss_type == "sigmoid":
        per_sequence_loss = (
            -F.logsigmoid(beta * delta_score) * (1 - label_smoothing)
            - F.logsigmoid(-beta * delta_score) * label_smoothing
        )
    elif loss_type == "hinge":
        per_sequence_loss = torch.relu(1 - beta * delta_score)
    elif loss_type == "ipo":
        chosen_avg_score = chosen_logratios / chosen_tokens.clamp(min=1.0)
        rejected_avg_score = rejected_logratios / rejected_tokens.clamp(min=1.0)
        ipo_delta = chosen_avg_score - rejected_avg_score
        per_sequence_loss = (ipo_delta - 1 / (2 * beta)) ** 2
    loss = per_sequence_loss.mean()
    metrics = {}
    if rpo_alpha is not None:
        nll = -policy_chosen.sum() / chosen_tokens.sum()
        loss = loss + rpo_alpha * nll
        metrics["nll_loss"] = nll.item()
    chosen_rewards = beta * chosen_logratios
    rejected_rewards = beta * rejected_logratios
    metrics.update({
        "loss": loss.item(),
        "rewards/chosen": chosen_rewards.mean().item(),
        "rewards/rejected": rejected_rewards.mean().item(),
        "rewards/accuracies": (chosen_rewards > rejected_rewards).double().mean().item(),
        "rewards/margins": (chosen_rewards - rejected_rewards).mean().item(),
        "logps/chosen": policy_chosen.mean().item(),
        "logps/rejected": policy_rejected.mean().item(),
    })
    return {
        "loss_type": loss_type,
        "beta": beta,
        "label_smoothing": label_smoothing,
        "rpo_alpha": rpo_alpha,
        "metrics": metrics,
    }


fixture = {
    "policy_chosen": policy_chosen.tolist(),
    "policy_rejected": policy_rejected.tolist(),
    "reference_chosen": ref_chosen.tolist(),
    "reference_rejected": ref_rejected.tolist(),
    "chosen_tokens": [int(x) for x in chosen_tokens.tolist()],
    "rejected_tokens": [int(x) for x in rejected_tokens.tolist()],
    "cases": [
        case("sigmoid", 0.1),
        case("sigmoid", 0.5, label_smoothing=0.2),
        case("hinge", 0.1),
        case("hinge", 1.0),
        case("ipo", 0.1),
        case("ipo", 2.0),
        case("sigmoid", 0.1, rpo_alpha=1.0),
    ],
}
out = Path(__file__).resolve().parents[1] / "fixtures" / "dpo_loss.json"
out.write_text(json.dumps(fixture, indent=1) + "\n")
print(f"wrote {out}")
