//! Direct Preference Optimization: the losses and metrics as TRL defines them.
//!
//! With Δ = (π_c − ref_c) − (π_r − ref_r), log-probs summed over completion tokens:
//! - sigmoid: −(1−ε)·log σ(βΔ) − ε·log σ(−βΔ)  (ε = label_smoothing: conservative DPO, as TRL's
//!   sigmoid loss took it before 1.0; ε = 0 is TRL 1.x's sigmoid)
//! - hinge: relu(1 − βΔ)
//! - ipo: (Δ' − 1/(2β))², where Δ' uses log-ratios divided by each completion's token count, as
//!   TRL 1.x normalises IPO
//! - rpo_alpha adds α · (mean NLL of the chosen completion tokens), TRL 1.x's
//!   `loss_type=["sigmoid", "sft"], loss_weights=[1, α]` (RPO).
//!
//! Metrics, averaged over the pairs of a batch: rewards/chosen = β(π_c − ref_c),
//! rewards/rejected, rewards/margins, rewards/accuracies (chosen reward > rejected),
//! logps/chosen, logps/rejected.

use super::objective::PendingMetrics;
use crate::config::LossType;
use anyhow::bail;
use anyhow::Result;
use candle_core::{DType, Tensor};
use std::collections::BTreeMap;

use super::loss::label_log_probs;
use crate::model::linear::Linear;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DpoParams {
    pub beta: f64,
    pub loss_type: LossType,
    pub label_smoothing: f64,
    pub rpo_alpha: Option<f64>,
}

/// Per-sequence sums of the label tokens' log-probs, (n,) f32. Position t predicts label t+1,
/// as in the SFT loss.
pub fn sequence_logps(head: &Linear, hidden: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let (picked, mask) = label_log_probs(head, hidden, labels)?;
    Ok((picked * mask)?.sum(1)?)
}

/// The log-probs of a batch of pairs: policy tensors (with gradients), reference values.
pub struct PairLogps {
    pub policy_chosen: Tensor,
    pub policy_rejected: Tensor,
    pub reference_chosen: Vec<f32>,
    pub reference_rejected: Vec<f32>,
    pub chosen_tokens: Vec<usize>,
    pub rejected_tokens: Vec<usize>,
}

/// log σ(x), stable for large |x|: −relu(−x) − log(1 + e^(−|x|)).
fn log_sigmoid(x: &Tensor) -> Result<Tensor> {
    let soft = ((x.abs()?.neg()?.exp()? + 1.0)?.log())?;
    Ok((x.neg()?.relu()?.neg()? - soft)?)
}

/// The mean loss over the pairs (a scalar tensor with gradients) and the batch's metrics,
/// still on the device.
pub fn dpo_loss(params: &DpoParams, logps: &PairLogps) -> Result<(Tensor, PendingMetrics)> {
    let device = logps.policy_chosen.device();
    let n = logps.reference_chosen.len();
    let pc = logps.policy_chosen.to_dtype(DType::F32)?;
    let pr = logps.policy_rejected.to_dtype(DType::F32)?;
    let rc = Tensor::from_slice(&logps.reference_chosen, n, device)?;
    let rr = Tensor::from_slice(&logps.reference_rejected, n, device)?;
    let chosen_ratio = (&pc - &rc)?;
    let rejected_ratio = (&pr - &rr)?;
    let beta = params.beta;
    let per_pair = match params.loss_type {
        LossType::Sigmoid => {
            let z = ((&chosen_ratio - &rejected_ratio)? * beta)?;
            let eps = params.label_smoothing;
            ((log_sigmoid(&z)? * -(1.0 - eps))? - (log_sigmoid(&z.neg()?)? * eps)?)?
        }
        LossType::Hinge => {
            let z = ((&chosen_ratio - &rejected_ratio)? * beta)?;
            (z.neg()? + 1.0)?.relu()?
        }
        LossType::Ipo => {
            let per_token = |counts: &[usize]| {
                let c: Vec<f32> = counts.iter().map(|&c| c.max(1) as f32).collect();
                Tensor::from_vec(c, n, device)
            };
            let delta = ((&chosen_ratio / per_token(&logps.chosen_tokens)?)?
                - (&rejected_ratio / per_token(&logps.rejected_tokens)?)?)?;
            (delta - 1.0 / (2.0 * beta))?.sqr()?
        }
        other => bail!("loss_type {other:?} is not a DPO loss"),
    };
    let mut loss = per_pair.mean_all()?;
    let mut metrics = PendingMetrics::default();
    if let Some(alpha) = params.rpo_alpha {
        let tokens: usize = logps.chosen_tokens.iter().sum();
        let nll = (pc.sum_all()?.neg()? / tokens.max(1) as f64)?;
        metrics.push("nll_loss", &nll)?;
        loss = (loss + (nll * alpha)?)?;
    }
    let chosen_rewards = (&chosen_ratio * beta)?;
    let rejected_rewards = (&rejected_ratio * beta)?;
    metrics.push("rewards/chosen", &chosen_rewards.mean_all()?)?;
    metrics.push("rewards/rejected", &rejected_rewards.mean_all()?)?;
    let margins = (&chosen_rewards - &rejected_rewards)?;
    metrics.push("rewards/margins", &margins.mean_all()?)?;
    let won = chosen_rewards.gt(&rejected_rewards)?.to_dtype(DType::F32)?;
    metrics.push("rewards/accuracies", &won.mean_all()?)?;
    metrics.push("logps/chosen", &pc.mean_all()?)?;
    metrics.push("logps/rejected", &pr.mean_all()?)?;
    metrics.push("loss", &loss)?;
    Ok((loss, metrics))
}

/// Averages batches' metrics, each weighted by its pair count.
pub fn weighted_mean(parts: &[(usize, BTreeMap<String, f64>)]) -> BTreeMap<String, f64> {
    let total: usize = parts.iter().map(|(n, _)| n).sum();
    let mut out = BTreeMap::new();
    for (n, metrics) in parts {
        for (key, value) in metrics {
            *out.entry(key.clone()).or_insert(0.0) += value * *n as f64 / total.max(1) as f64;
        }
    }
    out
}
