//! GRPO's arithmetic, as TRL's GRPOTrainer does it: group-relative advantages from the
//! rewards of G completions of one prompt, and the clipped policy loss over completion tokens
//! (with the optional KL to a reference).

use super::objective::PendingMetrics;
use crate::config::{LossType, ScaleRewards};
use anyhow::{bail, Result};
use candle_core::{DType, Tensor};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy)]
pub struct GrpoParams {
    pub beta: f64,
    pub epsilon_low: f64,
    pub epsilon_high: f64,
    pub loss_type: LossType,
    pub max_completion_length: usize,
}

/// The rewards of a generation batch and what GRPO makes of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Each completion's weighted reward; NaN where no reward applied.
    pub rewards: Vec<f64>,
    pub advantages: Vec<f64>,
    /// reward, reward_std, rewards/<name>/mean and /std, frac_reward_zero_std (TRL's names).
    pub metrics: BTreeMap<String, f64>,
}

fn nanmean(values: impl IntoIterator<Item = f64>) -> f64 {
    let (sum, n) = values
        .into_iter()
        .filter(|v| !v.is_nan())
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

/// The unbiased standard deviation of the values that are not NaN (NaN for fewer than two).
fn nanstd(values: &[f64]) -> f64 {
    let mean = nanmean(values.iter().copied());
    let kept: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if kept.len() < 2 {
        return f64::NAN;
    }
    let var = kept.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (kept.len() - 1) as f64;
    var.sqrt()
}

/// `per_func[i][f]`: reward f of completion i (NaN where it does not apply); completions
/// come in groups of `g` of one prompt. Rewards are the weighted sum of those present; a
/// completion with none is unscorable: left out of its group's baseline, advantage 0.
pub fn score(
    per_func: &[Vec<f64>],
    names: &[String],
    weights: &[f64],
    g: usize,
    scale: ScaleRewards,
) -> Result<Scored> {
    if g < 2 || per_func.is_empty() || !per_func.len().is_multiple_of(g) {
        bail!(
            "{} completions do not make groups of {g} (at least 2)",
            per_func.len()
        );
    }
    if per_func
        .iter()
        .any(|r| r.len() != names.len() || r.len() != weights.len())
    {
        bail!("every completion needs one value per reward");
    }
    let rewards: Vec<f64> = per_func
        .iter()
        .map(|row| {
            if row.iter().all(|v| v.is_nan()) {
                return f64::NAN;
            }
            let present = row.iter().zip(weights).filter(|(v, _)| !v.is_nan());
            present.map(|(v, w)| v * w).sum()
        })
        .collect();
    let batch_std = nanstd(&rewards);
    let mut advantages = Vec::with_capacity(rewards.len());
    let mut zero_std = 0usize;
    for group in rewards.chunks(g) {
        let mean = nanmean(group.iter().copied());
        let std = match scale {
            ScaleRewards::Batch => batch_std,
            ScaleRewards::Group | ScaleRewards::None => nanstd(group),
        };
        // torch.isclose(std, 0): |std| ≤ 1e-8; a NaN std (one scorable completion) is not.
        if std.abs() <= 1e-8 {
            zero_std += group.len();
        }
        for &r in group {
            let mut a = r - mean;
            if scale != ScaleRewards::None {
                a /= std + 1e-4;
            }
            advantages.push(if a.is_nan() { 0.0 } else { a });
        }
    }
    let mut metrics = BTreeMap::new();
    for (f, name) in names.iter().enumerate() {
        let column: Vec<f64> = per_func.iter().map(|r| r[f]).collect();
        metrics.insert(
            format!("rewards/{name}/mean"),
            nanmean(column.iter().copied()),
        );
        metrics.insert(format!("rewards/{name}/std"), nanstd(&column));
    }
    metrics.insert("reward".into(), nanmean(rewards.iter().copied()));
    metrics.insert("reward_std".into(), batch_std);
    metrics.insert(
        "frac_reward_zero_std".into(),
        zero_std as f64 / rewards.len() as f64,
    );
    Ok(Scored {
        rewards,
        advantages,
        metrics,
    })
}

/// One micro-batch of completions, per completion token (batch, tokens), f32.
pub struct TokenInputs<'a> {
    /// The policy's log-probs, with gradients.
    pub logps: &'a Tensor,
    /// The log-probs at generation time (num_iterations > 1); None: the policy's, detached.
    pub old: Option<&'a Tensor>,
    /// The reference's log-probs; needed when beta ≠ 0.
    pub reference: Option<&'a Tensor>,
    /// 1 on the completion tokens that count, 0 on the prompt and padding.
    pub mask: &'a Tensor,
    /// One per completion, (batch,).
    pub advantages: &'a Tensor,
}

/// TRL's GRPO loss of one micro-batch and its metrics (kl, clip_ratio/*), still on the
/// device. The loss is the micro-batch's own: the trainer weights it into the accumulation
/// window (by completions, or by completion tokens for dapo), which is how TRL divides.
pub fn grpo_loss(params: &GrpoParams, inputs: &TokenInputs) -> Result<(Tensor, PendingMetrics)> {
    let logps = inputs.logps.to_dtype(DType::F32)?;
    let mask = inputs.mask;
    let old = match inputs.old {
        Some(old) => old.clone(),
        None => logps.detach(),
    };
    let coef_1 = (&logps - &old)?.exp()?;
    let coef_2 = coef_1.clamp(1.0 - params.epsilon_low, 1.0 + params.epsilon_high)?;
    let advantages = inputs.advantages.unsqueeze(1)?;
    let loss_1 = coef_1.broadcast_mul(&advantages)?;
    let loss_2 = coef_2.broadcast_mul(&advantages)?;
    let mut per_token = loss_1.minimum(&loss_2)?.neg()?;
    let mut metrics = PendingMetrics::default();
    let tokens = mask.sum_all()?;
    let masked_mean = |x: &Tensor| -> Result<Tensor> {
        Ok(((x * mask)?.sum_all()? / tokens.clamp(1.0, f64::MAX)?)?)
    };
    if params.beta != 0.0 {
        let Some(reference) = inputs.reference else {
            bail!("beta ≠ 0 needs the reference's log-probs");
        };
        let diff = (reference - &logps)?;
        let kl = ((diff.exp()? - &diff)? - 1.0)?;
        per_token = (per_token + (&kl * params.beta)?)?;
        metrics.push("kl", &masked_mean(&kl)?)?;
    }
    let masked = (&per_token * mask)?;
    let rows = logps.dim(0)? as f64;
    let loss = match params.loss_type {
        LossType::Grpo => {
            let per_row = (masked.sum(1)? / mask.sum(1)?.clamp(1.0, f64::MAX)?)?;
            per_row.mean_all()?
        }
        LossType::DrGrpo => (masked.sum_all()? / (rows * params.max_completion_length as f64))?,
        LossType::Bnpo | LossType::Dapo => masked_mean(&per_token)?,
        other => bail!("loss_type {other:?} is not a GRPO loss"),
    };
    let below = coef_1.lt(1.0 - params.epsilon_low)?;
    let above = coef_1.gt(1.0 + params.epsilon_high)?;
    let negative = advantages.lt(0.0)?.broadcast_as(below.shape())?;
    let positive = advantages.gt(0.0)?.broadcast_as(above.shape())?;
    let low = (below * negative)?.to_dtype(DType::F32)?;
    let high = (above * positive)?.to_dtype(DType::F32)?;
    let region = (&low + &high)?;
    metrics.push("clip_ratio/low_mean", &masked_mean(&low)?)?;
    metrics.push("clip_ratio/high_mean", &masked_mean(&high)?)?;
    metrics.push("clip_ratio/region_mean", &masked_mean(&region)?)?;
    Ok((loss, metrics))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("r{i}")).collect()
    }

    #[test]
    fn advantages_are_relative_to_the_group() {
        let per_func = vec![vec![1.0], vec![0.0], vec![0.5], vec![0.5]];
        let s = score(&per_func, &names(1), &[1.0], 2, ScaleRewards::Group).unwrap();
        let std = (0.5f64).sqrt(); // unbiased std of {1, 0}
        assert!((s.advantages[0] - 0.5 / (std + 1e-4)).abs() < 1e-12);
        assert!((s.advantages[1] + 0.5 / (std + 1e-4)).abs() < 1e-12);
        assert_eq!(&s.advantages[2..], &[0.0, 0.0]);
        assert_eq!(s.metrics["frac_reward_zero_std"], 0.5);
        assert_eq!(s.metrics["reward"], 0.5);
        let unscaled = score(&per_func, &names(1), &[1.0], 2, ScaleRewards::None).unwrap();
        assert_eq!(unscaled.advantages[0], 0.5);
    }

    #[test]
    fn a_completion_without_rewards_is_left_out() {
        let nan = f64::NAN;
        let per_func = vec![
            vec![1.0, nan],
            vec![nan, nan],
            vec![0.0, 2.0],
            vec![0.0, 0.0],
        ];
        let s = score(&per_func, &names(2), &[1.0, 0.5], 2, ScaleRewards::Group).unwrap();
        assert!(s.rewards[1].is_nan());
        // Group one has one scorable completion: its std is NaN, so both advantages are 0.
        assert_eq!(&s.advantages[..2], &[0.0, 0.0]);
        assert_eq!(s.rewards[2], 1.0);
        assert!(s.advantages[2] > 0.0 && s.advantages[3] < 0.0);
        assert_eq!(s.metrics["rewards/r0/mean"], 1.0 / 3.0);
        assert_eq!(s.metrics["rewards/r1/mean"], 1.0);
    }

    #[test]
    fn groups_must_fit() {
        let per_func = vec![vec![1.0]; 3];
        assert!(score(&per_func, &names(1), &[1.0], 2, ScaleRewards::Group).is_err());
        assert!(score(&per_func, &names(1), &[1.0], 1, ScaleRewards::Group).is_err());
    }
}
